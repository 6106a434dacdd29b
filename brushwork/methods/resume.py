"""Progress files for long optimize runs: a print-size image takes hours on a CPU, and a crash, a reboot or Ctrl-C
should cost minutes of that, not all of it. A run with --checkpoint-dir saves its image and where it stands there,
and the same command continues from it. One file per run, named by a fingerprint of its inputs and options, so a
batch can share one folder and a changed option starts afresh instead of mixing two runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, OutputError
from ..options import check_values
from ..lazy import lazy
from ..version import __version__

if TYPE_CHECKING:
    from .base import CommonOptions

torch = lazy("torch")
io = lazy("brushwork.io")

SAVE_SECONDS = 60.0  # save at the first safe point this long after the last save (a 4K image: 133 MB, under 1 s)
UNKEYED = ("checkpoint_dir", "quiet", "device")  # options that do not change the image
FORMAT = 1


@dataclass
class Progress:
    """Where a run stands: `done` iterations (a whole scale) or tiles (a tiled scale, counted across its passes)
    of scale `scale` are finished, `step` steps in all. `tiles` is each scale's tile side (0: whole), so a resumed
    run cuts its tiles where the first one did even if free memory has changed since."""

    scale: int
    done: int
    step: int
    seconds: float  # what the saved image cost: this run's time up to it, over every process
    tiles: list[int]
    scale_seconds: float = 0.0  # of that, on the scale in progress
    scales: list[dict] = field(default_factory=list)  # the finished scales' records, for the sidecar


def fingerprint(content: torch.Tensor, styles: list[torch.Tensor], masks: list[torch.Tensor] | None,
                opts: CommonOptions) -> str:
    """What makes two runs the same run: the version, every option that changes the image, and the input pixels."""
    digest = hashlib.sha256()
    config = {k: v for k, v in dataclasses.asdict(opts).items() if k not in UNKEYED}
    digest.update(json.dumps({"version": __version__, "config": config}, sort_keys=True, default=str).encode())
    for t in [content, *styles, *(masks or [])]:
        t = t.detach().float().cpu().contiguous()
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:24]


class Checkpoint:
    """The progress file of one run in `folder`, created if missing."""

    def __init__(self, folder: str | Path, key: str):
        if not str(folder).strip():  # Path("") is the current folder: an empty flag is a mistake, not a choice
            raise ConfigError("--checkpoint-dir names no folder")
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--checkpoint-dir {folder} is a file, not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create --checkpoint-dir {folder}: {e.strerror or e}") from None
        self.path = folder / f"optimize-{key}.safetensors"

    def load(self) -> tuple[Progress, torch.Tensor] | None:
        """The saved progress and image, or None when this run has none. A file that cannot be read is an error,
        not a fresh start: it may hold hours of work."""
        if not self.path.exists():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["brushwork.progress"])
                image = f.get_tensor("image")
            if meta.pop("format") != FORMAT:
                raise ValueError("written by another version of brushwork")
            progress = Progress(**meta)
            check_values(progress)  # each field of its type: a damaged file's "abc" seconds or 0.5 scale
            if min(progress.scale, progress.done, progress.step, progress.seconds, *progress.tiles) < 0:
                raise ValueError("negative counts")
            if not image.is_floating_point():
                raise ValueError(f"a {image.dtype} image")
        except Exception as e:  # safetensors, json and the dataclass raise their own types for a damaged file
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"cannot resume from {self.path}: {why}; delete it to start this run afresh") from None
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ConfigError(f"cannot resume from {self.path}: it holds no 1×3×H×W image; delete it to start "
                              f"afresh")
        return progress, image

    def save(self, progress: Progress, image: torch.Tensor) -> None:
        """Write atomically: a crash while saving leaves the previous save."""
        from safetensors.torch import save_file

        meta = {"brushwork.progress": json.dumps({"format": FORMAT, **dataclasses.asdict(progress)})}
        tensor = image.detach().float().cpu().contiguous()
        io.atomic_write(self.path, lambda tmp: save_file({"image": tensor}, tmp, metadata=meta))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def describe(progress: Progress | None) -> dict[str, Any]:
    """What the sidecar records of a resumed run."""
    if progress is None:
        return {}
    return {"resumed": {"step": progress.step, "seconds_before": round(progress.seconds, 3)}}
