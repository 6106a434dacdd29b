"""A sample clip made from one still: a camera pan across the image (known flow: `step` pixels per frame) with a
disc moving the other way (occlusions, motion boundaries) and a static corner, plus a tone as its audio track.
For demos, benchmarks and tests, where no video may be committed."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .. import io
from ..lazy import lazy

av = lazy("av")


def pan_frames(image: torch.Tensor, frames: int, size: tuple[int, int], step: int = 2, disc: bool = True,
               static: int = 0, disc_speed: float = 3.0) -> Iterator[torch.Tensor]:
    """`frames` crops of `size` (height, width) from `image` (scaled so the pan fits), moving right by `step` px
    per frame (0: a still camera); a disc crossing leftwards at `disc_speed` px per frame and coming back round;
    the top-left static×static corner held still."""
    h, w = size
    need_w = w + step * (frames - 1)
    scale = max(need_w / image.shape[-1], h / image.shape[-2])
    big = io.resize(image, (max(h, round(image.shape[-2] * scale)), max(need_w, round(image.shape[-1] * scale))))
    still = big[..., :static, :static].clone()
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for t in range(frames):
        frame = big[..., :h, t * step:t * step + w].clone()
        if disc:
            radius = min(h, w) * 0.12
            cx, cy = (w * 0.8 - disc_speed * t) % (w + 2 * radius) - radius, h * 0.6
            inside = ((xs - cx) ** 2 + (ys - cy) ** 2) < radius**2
            frame[:, :, inside] = torch.tensor([0.95, 0.75, 0.15]).view(1, 3, 1)
        if static:
            frame[..., :static, :static] = still
        yield frame


def write_clip(path: str | os.PathLike, frames: Iterator[torch.Tensor], rate: int = 24, tone: float | None = 440.0
               ) -> Path:
    """Encode frames as H.264 (lossless-ish, crf 12) with a sine tone as AAC audio as long as the video."""
    path = Path(path)
    count = 0
    with av.open(str(path), "w") as container:
        video = audio = None
        for frame in frames:
            array = frame[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            if video is None:
                video = container.add_stream("libx264", rate=rate)
                video.height, video.width = array.shape[:2]
                # MB-tree off: with it on, this FFmpeg build's x264 encodes the same frames to different bytes after
                # a process's first encode, and a test clip must be the same every time (bench/bench_encode.py)
                video.pix_fmt, video.options = "yuv420p", {"crf": "12", "x264-params": "mbtree=0"}
                if tone is not None:
                    audio = container.add_stream("aac", rate=16000, layout="mono")
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")))
            count += 1
        container.mux(video.encode(None))
        if audio is not None:
            samples = round(16000 * count / rate)
            wave = (0.2 * np.sin(2 * np.pi * tone * np.arange(samples) / 16000)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start:start + 1024]), format="fltp",
                                                   layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 16000, start, Fraction(1, 16000)
                container.mux(audio.encode(chunk))
            container.mux(audio.encode(None))
    return path
