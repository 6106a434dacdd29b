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
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from .. import io
from ..errors import BrushworkError, ConfigError, VideoError
from ..methods import Temporal
from ..methods.prepare import POSITIVE_SIZE
from ..version import __version__
from . import flow, media
from .options import VideoOptions

STATE_FILE = "state.safetensors"
REFERENCE = "video.reference"  # carried state: the source each output pixel was made from, for still regions
JOB_FILE = "job.json"
# What a frame cache holds: frames, state, record, and io.atomic_write's temporary files of them.
CACHE_FILE = re.compile(r"\.?(\d{6,}\.png|state\.safetensors|job\.json)(\.\w{8}\.tmp)?")


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


def _input_id(src: Any) -> Any:
    """A file by path, size and modification time, so that an edited input starts a new job; an image given as
    an object (a tensor, PIL image or array) by its pixels."""
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        st = p.stat() if p.is_file() else None
        return [str(p.resolve()), st.st_size, st.st_mtime_ns] if st else str(src)
    pixels = io.load_image(src).contiguous().numpy().tobytes()
    return hashlib.sha256(pixels).hexdigest()[:16]


def _as_list(x: Any) -> list:
    return [] if x is None else list(x) if isinstance(x, (list, tuple)) else [x]


class FrameCache:
    """The finished frames of one job and the state after the last of them. A frame's PNG is written before the
    state that counts it, each atomically, so the cache always describes a prefix of the video."""

    def __init__(self, folder: Path, fingerprint: str):
        self.folder, self.fingerprint = folder, fingerprint
        if folder.exists() and not folder.is_dir():
            raise VideoError(f"{folder} is a file where this job keeps its frames: move it away")
        if folder.is_dir() and self._job().get("fingerprint") != fingerprint:
            strays = sorted(p.name for p in folder.iterdir() if not CACHE_FILE.fullmatch(p.name))
            if strays:  # removed only when all of it is a cache's
                raise VideoError(f"{folder}, where this job keeps its frames, holds other files ({strays[0]}): "
                                 f"move it away")
            shutil.rmtree(folder)  # another job's frames, or a damaged record: start over
        self._start()

    def _job(self) -> dict[str, Any]:
        try:
            job = json.loads((self.folder / JOB_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return job if isinstance(job, dict) else {}

    def _start(self) -> None:
        self.folder.mkdir(exist_ok=True)
        if not (self.folder / JOB_FILE).is_file():
            io.save_json({"fingerprint": self.fingerprint, "brushwork": __version__}, self.folder / JOB_FILE)

    def frame_path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.png"

    def load(self, size: tuple[int, int]) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
        """(frames done, the carried state after the last, the job's log) from the cache; zeros when new. `size`
        (height, width) is the frames': a carried reference of another size is a damaged record."""
        path = self.folder / STATE_FILE
        if not path.is_file():
            return 0, {}, {"cuts": [], "seconds": [], "reliable": []}
        from safetensors import SafetensorError
        from safetensors.torch import load_file, safe_open

        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata()
            log, done = json.loads(meta["log"]), int(meta["done"])
            if not (done >= 1 and all(isinstance(log.get(k), list) for k in ("cuts", "seconds", "reliable"))
                    and all(self.frame_path(i).is_file() for i in range(done))):
                raise ValueError("an impossible record")
            state = load_file(str(path))
            reference = state.get(REFERENCE)
            if not (all(t.is_floating_point() and bool(t.isfinite().all()) for t in state.values())
                    and (reference is None or tuple(reference.shape) == (1, 3, *size))):
                raise ValueError("an impossible state")
            return done, state, log
        except (SafetensorError, OSError, ValueError, KeyError, TypeError, AttributeError):
            self.remove()  # a damaged cache (a frame deleted, a file cut short): the frames are made again
            self._start()
            return 0, {}, {"cuts": [], "seconds": [], "reliable": []}

    def save(self, index: int, image: torch.Tensor, state: dict[str, torch.Tensor], log: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        io.save_image(image, self.frame_path(index))
        tensors = {k: v.contiguous() for k, v in state.items()}
        meta = {"done": str(index + 1), "log": json.dumps(log)}
        io.atomic_write(self.folder / STATE_FILE, lambda tmp: save_file(tensors, tmp, metadata=meta))

    def frames(self, count: int) -> Iterator[torch.Tensor]:
        for index in range(count):
            yield io.load_image(self.frame_path(index))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_8bit(image: torch.Tensor) -> torch.Tensor:
    """An output as its cached PNG holds it: what the next frame warps, resumed or not."""
    return image.clamp(0, 1).mul(255).round().div(255)


@dataclass
class _Job:
    """One clip's settings after every check, what the loop over its frames needs."""

    info: media.VideoInfo
    size: tuple[int, int]  # (height, width)
    method: str
    preset: str
    styles: list[torch.Tensor]
    masks: list[torch.Tensor] | None
    video: VideoOptions
    options: dict[str, Any]


def _run_frames(job: _Job, cache: FrameCache, progress: Progress | None) -> tuple[int, int, dict[str, Any]]:
    """Stylize the frames the cache does not hold yet, each saved as it is done; (frames, frames resumed, log)."""
    from tqdm.auto import tqdm

    from .. import api

    video, (height, width) = job.video, job.size
    done, state, log = cache.load(job.size)
    temporal = None if video.per_frame else Temporal(
        blend=video.blend, smoothing=video.smoothing, temporal_weight=video.temporal_weight,
        frame_iterations=video.frame_iterations, state=state)
    limit = video.frames or job.info.frames
    bar = tqdm(total=min(limit, job.info.frames or limit) or None, initial=done, unit="frame", dynamic_ncols=True,
               disable=job.options.get("quiet", False), desc=f"{job.method} {width}×{height}")
    previous_frame = previous_output = None
    count = 0
    for index, frame in enumerate(media.read_frames(job.info, job.size)):
        if video.frames is not None and index >= video.frames:
            break
        count = index + 1
        if index < done:  # finished in an earlier run: only the last one's output is needed
            previous_frame = frame
            if index == done - 1:
                previous_output = io.load_image(cache.frame_path(index))
            continue
        started = time.perf_counter()
        still = reference = None
        if temporal is not None and previous_frame is not None:
            pair = flow.relate(previous_frame, frame)
            log["reliable"].append(round(pair.reliable_share, 4))
            if pair.cut:
                log["cuts"].append(index)
                temporal.new_shot()
            else:
                temporal.previous = flow.warp(previous_output, pair.back)
                temporal.reliable = pair.reliable
                reference = flow.warp(temporal.state.get(REFERENCE, previous_frame), pair.back, "nearest")
                still = flow.still(reference, frame, pair.reliable, video.still_threshold)
        output = api.run(frame, job.styles, job.method, job.preset, job.masks, temporal=temporal,
                         **{**job.options, "size": max(height, width), "quiet": True}).image
        if temporal is not None:  # a pixel changes only where its source does; remember what it was made from
            if still is None:
                temporal.state[REFERENCE] = frame
            else:
                output = still * flow.warp(previous_output, pair.back, "nearest") + (1 - still) * output
                temporal.state[REFERENCE] = still * reference + (1 - still) * frame
        previous_frame, previous_output = frame, _as_8bit(output)
        log["seconds"].append(round(time.perf_counter() - started, 3))
        cache.save(index, previous_output, temporal.state if temporal is not None else {}, log)
        bar.update(1)
        if progress is not None:
            progress(index + 1, job.info.frames)
    bar.close()
    if count == 0:
        raise VideoError(f"{job.info.path}: no frames could be decoded")
    return count, done, log


def _seconds(log: dict[str, Any]) -> dict[str, float | None]:
    """The sidecar's timings: all frames, the first (optimize: the full schedule), and the rate after it."""
    seconds = log["seconds"]
    return {"frames": round(sum(seconds), 3), "first_frame": seconds[0] if seconds else None,
            "next_frames_per_s": round((len(seconds) - 1) / sum(seconds[1:]), 4) if len(seconds) > 1 else None}


def stylize_video(source: str | os.PathLike, style: Any = None, output: str | os.PathLike = "out.mp4",
                  method: str = "optimize", preset: str = "default", masks: Sequence[Any] | None = None,
                  video: VideoOptions | None = None, progress: Progress | None = None, **options: Any
                  ) -> VideoResult:
    """Stylize every frame of `source` into `output` (same frame rate, aspect ratio and audio), consistently from
    frame to frame unless `video.per_frame`; options are the method's, as for `stylize` (`size`: the output's
    long side, by default the source's). Resumes a job killed with the same arguments."""
    from .. import api

    started = time.perf_counter()
    video = video or VideoOptions()
    video.validate()
    inputs = [source, *_as_list(style), *(masks or [])]
    out = io.check_output_path(output, tuple(p for p in inputs if isinstance(p, (str, os.PathLike))),
                               media.VIDEO_SUFFIXES, sidecar=True)
    info = media.probe(source)
    long_side = options.pop("size", None)
    if long_side is not None and long_side < 1:  # 0 would otherwise pass for "the source's size"
        raise ConfigError(POSITIVE_SIZE)
    long_side = long_side or max(info.display_size)
    size = media.even_size(*io.fit_long_side(*info.display_size, long_side))
    opts = api.resolve_options(method, preset, **options)  # refuse bad options and models before the first frame
    video.check_method(method)
    media.try_encoder(video.codec, out, size, info.rate, video.crf)
    api.check_model(method, opts)
    job = _Job(info, size, method, preset, [io.load_image(s) for s in _as_list(style)],
               [io.load_mask(m) for m in masks] if masks else None, video, options)
    settings = {k: v for k, v in dataclasses.asdict(video).items() if k not in ("frames", "keep_frames")}
    cache = FrameCache(cache_dir(out), _fingerprint({
        "source": _input_id(source), "styles": [_input_id(s) for s in _as_list(style)],
        "masks": [_input_id(m) for m in masks or []], "method": method, "preset": preset, "video": settings,
        "options": {k: v for k, v in options.items() if k != "quiet"}, "size": list(size), "brushwork": __version__}))
    try:
        count, resumed, log = _run_frames(job, cache, progress)
    except BrushworkError:
        if not cache.frame_path(0).is_file():
            cache.remove()  # refused before its first frame (a size too large): it leaves nothing behind
        raise
    encode_started = time.perf_counter()
    media.write_video(cache.frames(count), out, info.rate, info, video.codec, video.crf)
    stats = {"output": str(out.resolve()), "source": str(Path(source).resolve()),
             "styles": [str(s) for s in _as_list(style)], "method": method, "preset": preset,
             "options": {**options, "size": max(size)}, "video": dataclasses.asdict(video), "frames": count,
             "size": [size[1], size[0]], "rate": str(info.rate), "audio": info.audio, "cuts": log["cuts"],
             "reliable_mean": round(sum(log["reliable"]) / max(1, len(log["reliable"])), 4),
             "seconds": {**_seconds(log), "this_run": round(time.perf_counter() - started, 3),
                         "encode": round(time.perf_counter() - encode_started, 3)},
             "resumed_at": resumed or None, "versions": api.versions()}
    io.save_json(stats, io.sidecar_path(out))
    if not video.keep_frames and not (video.frames and count == video.frames and count < info.frames):
        cache.remove()  # a preview (--frames) keeps its frames, so that the full job goes on from them
    return VideoResult(out, count, size, stats)
