"""A video job: decode, stylize frame by frame with any method, keep consecutive frames consistent, encode.

Consistency is the methods' own (methods/base.py `Temporal`): the job estimates the flow between source frames,
warps the previous output onto the current frame, marks where that can be trusted, and resets at scene cuts.
Every finished frame is cached (PNG, with the method's carried state) beside the output, so a killed job
restarts where it stopped and continues exactly as it would have; the video is encoded from the cache at the end
and renamed into place."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from .. import io
from ..methods import Temporal, get_method
from ..version import __version__
from . import flow, media
from .options import VideoOptions

STATE_FILE = "state.safetensors"
REFERENCE = "video.reference"  # carried state: the source each output pixel was made from, for still regions
JOB_FILE = "job.json"


@dataclass
class VideoResult:
    """A finished video job: where it went and what the sidecar records."""

    output: Path
    frames: int
    size: tuple[int, int]  # (height, width)
    stats: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[int, int], None]  # (frames done, frames in the source; 0 when the container does not say)


def cache_dir(output: Path) -> Path:
    """Where a job keeps its finished frames: a hidden folder beside the output."""
    return output.resolve().parent / f".{output.name}.frames"


def _fingerprint(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_id(path: Any) -> Any:
    """A file by path, size and modification time, so an edited input starts a new job; tensors by content."""
    if isinstance(path, torch.Tensor):
        return hashlib.sha256(path.contiguous().numpy().tobytes()).hexdigest()[:16]
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return [str(p.resolve()), st.st_size, st.st_mtime_ns]
    return str(path)


class FrameCache:
    """The finished frames of one job and the state after the last of them. A frame's PNG is written before the
    state that counts it, each atomically, so the cache always describes a prefix of the video."""

    def __init__(self, folder: Path, fingerprint: str):
        self.folder = folder
        job = folder / JOB_FILE
        if folder.is_dir() and (not job.is_file() or json.loads(job.read_text()).get("fingerprint") != fingerprint):
            shutil.rmtree(folder)  # another job's frames: start over
        folder.mkdir(exist_ok=True)
        if not job.is_file():
            io.save_json({"fingerprint": fingerprint, "brushwork": __version__}, job)

    def frame_path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.png"

    def load(self) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
        """(frames done, the carried state after the last, the job's log) from the cache; zeros when new."""
        path = self.folder / STATE_FILE
        if not path.is_file():
            return 0, {}, {"cuts": [], "seconds": [], "reliable": []}
        from safetensors.torch import load_file, safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        log = json.loads(meta["log"])
        return int(meta["done"]), load_file(str(path)), log

    def save(self, index: int, image: torch.Tensor, state: dict[str, torch.Tensor], log: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        io.save_image(image, self.frame_path(index))
        tensors = {k: v.contiguous() for k, v in state.items()}
        meta = {"done": str(index + 1), "log": json.dumps(log)}
        io._atomic_write(self.folder / STATE_FILE, lambda tmp: save_file(tensors, tmp, metadata=meta))

    def frames(self, count: int) -> Iterator[torch.Tensor]:
        for index in range(count):
            yield io.load_image(self.frame_path(index))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_8bit(image: torch.Tensor) -> torch.Tensor:
    """An output as its cached PNG holds it: what the next frame warps, resumed or not."""
    return image.clamp(0, 1).mul(255).round().div(255)


def stylize_video(source: str | os.PathLike, style: Any = None, output: str | os.PathLike = "out.mp4",
                  method: str = "optimize", preset: str = "default", masks: Sequence[Any] | None = None,
                  video: VideoOptions | None = None, progress: Progress | None = None, **options: Any
                  ) -> VideoResult:
    """Stylize every frame of `source` into `output` (same frame rate, aspect ratio and audio), consistently from
    frame to frame unless `video.per_frame`; options are the method's, as for `stylize` (`size`: the output's
    long side, by default the source's). Resumes a job killed with the same arguments."""
    from tqdm.auto import tqdm

    from .. import api

    video = video or VideoOptions()
    video.validate()
    out = media.check_output(output, source)
    info = media.probe(source)
    long_side = options.pop("size", None) or max(info.display_size)
    height, width = media.even_size(*io.fit_long_side(*info.display_size, long_side))
    opts = api.resolve_options(method, preset, **options)  # refuse bad options and models before the first frame
    models = get_method(method).models
    if models is not None and getattr(opts, "model", None):
        models.resolve(opts.model)
    styles = [io.load_image(s) for s in api._as_list(style)] if style is not None else []
    mask_t = [io.load_mask(m) for m in masks] if masks else None
    settings = {k: v for k, v in dataclasses.asdict(video).items() if k not in ("frames", "keep_frames")}
    fingerprint = _fingerprint({"source": _file_id(source), "styles": [_file_id(s) for s in api._as_list(style)]
                                if style is not None else [], "masks": [_file_id(m) for m in masks or []],
                                "method": method, "preset": preset, "video": settings,
                                "options": {k: v for k, v in options.items() if k != "quiet"},
                                "size": [height, width], "brushwork": __version__})
    cache = FrameCache(cache_dir(out), fingerprint)
    done, state, log = cache.load()
    temporal = None if video.per_frame else Temporal(
        blend=video.blend, smoothing=video.smoothing, temporal_weight=video.temporal_weight,
        frame_iterations=video.frame_iterations, state=state)
    total = min(info.frames, video.frames) if info.frames and video.frames else (video.frames or info.frames)
    bar = tqdm(total=total or None, initial=done, disable=options.get("quiet", False), unit="frame",
               dynamic_ncols=True, desc=f"{method} {width}×{height}")
    previous_frame = previous_output = None
    index = -1
    started = time.perf_counter()
    for index, frame in enumerate(media.read_frames(info, (height, width))):
        if video.frames is not None and index >= video.frames:
            index -= 1
            break
        if index < done:
            previous_frame = frame
            if index == done - 1:
                previous_output = io.load_image(cache.frame_path(index))
            continue
        frame_started = time.perf_counter()
        if temporal is not None and previous_frame is not None:
            pair = flow.relate(previous_frame, frame)
            log["reliable"].append(round(pair.reliable_share, 4))
            if pair.cut:
                log["cuts"].append(index)
                temporal.new_shot()
            else:
                temporal.previous = flow.warp(previous_output, pair.back)
                temporal.reliable = pair.reliable
                held = flow.warp(previous_output, pair.back, "nearest")
                reference = flow.warp(temporal.state.get(REFERENCE, previous_frame), pair.back, "nearest")
                still = flow.still(reference, frame, pair.reliable, video.still_threshold)
        result = api.run(frame, styles, method, preset, mask_t, temporal=temporal,
                         **{**options, "size": max(height, width), "quiet": True})
        output = result.image
        if temporal is not None:  # a pixel changes only where its source does; remember what it was made from
            if temporal.previous is None:
                temporal.state[REFERENCE] = frame
            else:
                output = still * held + (1 - still) * output
                temporal.state[REFERENCE] = still * reference + (1 - still) * frame
        previous_frame, previous_output = frame, _as_8bit(output)
        log["seconds"].append(round(time.perf_counter() - frame_started, 3))
        cache.save(index, previous_output, temporal.state if temporal is not None else {}, log)
        bar.update(1)
        if progress is not None:
            progress(index + 1, info.frames)
    bar.close()
    count = index + 1
    if count == 0:
        raise media.VideoError(f"{source}: no frames could be decoded")
    encode_started = time.perf_counter()
    media.write_video(cache.frames(count), out, info.rate, info, video.codec, video.crf)
    seconds = log["seconds"]
    stats = {"output": str(out.resolve()), "source": str(Path(source).resolve()),
             "styles": [str(s) for s in api._as_list(style)] if style is not None else [], "method": method,
             "preset": preset, "options": {**options, "size": max(height, width)}, "video": dataclasses.asdict(video),
             "frames": count, "size": [width, height], "rate": str(info.rate), "audio": info.audio,
             "cuts": log["cuts"], "reliable_mean": round(sum(log["reliable"]) / max(1, len(log["reliable"])), 4),
             "seconds": {"frames": round(sum(seconds), 3), "first_frame": seconds[0] if seconds else None,
                         "next_frames_per_s": round((len(seconds) - 1) / sum(seconds[1:]), 4)
                         if len(seconds) > 1 else None, "this_run": round(time.perf_counter() - started, 3),
                         "encode": round(time.perf_counter() - encode_started, 3)},
             "resumed_at": done or None, "versions": api.versions()}
    io.save_json(stats, io.sidecar_path(out))
    if not video.keep_frames and not (video.frames and count == video.frames and count < info.frames):
        cache.remove()  # a preview (--frames) keeps its frames, so that the full job goes on from them
    return VideoResult(out, count, (height, width), stats)
