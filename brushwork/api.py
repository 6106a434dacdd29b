"""The Python API: `stylize()` accepts paths, PIL images or tensors and returns a PIL image (and stats on
request); `stylize_file()` also writes the output and its JSON sidecar, as the CLI does."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from . import io
from .errors import ConfigError, DivergenceError, out_of_memory
from .methods import Callback, Result, Temporal, get_method, method_specs
from .options import check_values, label

StyleInput = io.ImageLike | Sequence[io.ImageLike]


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _elsewhere(name: str) -> str:
    """An option this method lacks, as its flag with the methods that take it, or as given when none does."""
    takers = [(spec.name, f) for spec in method_specs() for f in dataclasses.fields(spec.options) if f.name == name]
    if not takers:
        return name
    return f"{label(takers[0][1])} (an option of {', '.join(m for m, _ in takers)})"


def resolve_options(method: str = "optimize", preset: str = "default", **options: Any):
    """The method's options dataclass: preset values first, then the explicit options (None means unset)."""
    spec = get_method(method)
    if preset not in spec.presets:
        raise ConfigError(f"unknown preset '{preset}' for {method}; choose from {', '.join(spec.presets)}")
    fields = {f.name for f in dataclasses.fields(spec.options)}
    unknown = sorted(k for k in options if k not in fields)
    if unknown:
        raise ConfigError(f"unknown option(s) for {method}: {', '.join(_elsewhere(name) for name in unknown)}")
    values = {**spec.presets[preset], **{k: v for k, v in options.items() if v is not None}}
    opts = spec.options(**values)
    check_values(opts)
    return opts


def check_model(method: str, opts: Any) -> None:
    """Resolve the model file of a method that runs one: a missing, unknown or unshipped model is one error before
    any work (a video's first frame, a batch's rows), not one per frame or row."""
    models = get_method(method).models
    if models is not None:
        models.resolve(opts.model)


def run(content: io.ImageLike, style: StyleInput | None = None, method: str = "optimize", preset: str = "default",
        masks: Sequence[io.ImageLike] | None = None, callback: Callback | None = None,
        temporal: Temporal | None = None, **options: Any) -> Result:
    """Stylize and return the full Result (image tensor and stats, including the resolved options). `temporal`
    links a video's consecutive frames (brushwork.video sets it)."""
    opts = resolve_options(method, preset, **options)
    if callback is not None and not callable(callback):
        raise ConfigError(f"callback must be a function of the step, not {type(callback).__name__}")
    started = time.perf_counter()
    content_t = io.load_image(content)
    styles = [io.load_image(s) for s in _as_list(style)] if style is not None else []
    mask_t = [io.load_mask(m) for m in masks] if masks else None
    load_seconds = time.perf_counter() - started
    with out_of_memory("use a smaller --size or --tile"):
        result = get_method(method).run(content_t, styles, opts, masks=mask_t, callback=callback, temporal=temporal)
    if not torch.isfinite(result.image).all():
        raise DivergenceError(f"{method} produced non-finite pixels (inf or NaN); nothing was written")
    result.seconds["load"] = round(load_seconds, 3)
    result.method, result.preset = method, preset
    return result


def stylize(content: io.ImageLike, style: StyleInput | None = None, method: str = "optimize", preset: str = "default",
            masks: Sequence[io.ImageLike] | None = None, callback: Callback | None = None,
            return_stats: bool = False, **options: Any) -> Image.Image | tuple[Image.Image, dict]:
    """Paint `content` in the style of `style` (one image or a list to blend); options as in the CLI, e.g.
    size=512, style_weight=3.0, preserve_color="luminance", style_blend=[0.7, 0.3]."""
    result = run(content, style, method, preset, masks, callback, **options)
    image = io.to_pil(result.image)
    return (image, result.stats) if return_stats else image


def versions() -> dict[str, str]:
    """Versions that matter for reproducing a result."""
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__}
    for package in ("brushwork", "numpy", "pillow", "h5py", "safetensors"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _describe(src: Any) -> str:
    return str(Path(src).resolve()) if isinstance(src, (str, os.PathLike)) else type(src).__name__


def stylize_file(content: io.ImageLike, style: StyleInput | None, output: str | os.PathLike, method: str = "optimize",
                 preset: str = "default", masks: Sequence[io.ImageLike] | None = None,
                 callback: Callback | None = None, **options: Any) -> Result:
    """Stylize, then write the image and `OUTPUT.json` (config, seed, versions, losses, timings) atomically."""
    style_list = _as_list(style) if style is not None else []
    inputs = [content, *style_list, *(masks or []), options.get("init")]  # init: a keyword or an image's path
    out = io.check_output_path(output, tuple(p for p in inputs if isinstance(p, (str, os.PathLike))), sidecar=True)
    result = run(content, style, method, preset, masks, callback, **options)
    save_started = time.perf_counter()
    io.save_image(result.image, out)
    result.seconds["save"] = round(time.perf_counter() - save_started, 3)
    stats = result.stats
    config = stats.pop("options")
    sidecar = {"output": str(out.resolve()), "content": _describe(content),
               "styles": [_describe(s) for s in style_list],
               "masks": [_describe(m) for m in masks] if masks else None,
               "seed": result.options.seed, "config": config, "versions": versions(), **stats}
    io.save_json(sidecar, io.sidecar_path(out))
    return result
