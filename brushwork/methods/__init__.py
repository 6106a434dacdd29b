"""The method registry: every method takes the same inputs (content, styles, blend weights, masks, options) and
returns the same Result, so the API, the CLI and shared features (colour, masks, sidecars) are written once."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..errors import ConfigError


@dataclass
class Result:
    """A stylized image (1×3×H×W in [0,1]) and what it took to make it: losses, sizes, timings."""

    image: torch.Tensor
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    """What a progress callback receives after every iteration; `image` is the current iterate, do not modify."""

    step: int
    total: int
    scale: int
    scales: int
    size: tuple[int, int]
    losses: dict[str, float]
    image: torch.Tensor


Callback = Callable[[Step], None]
COLOR_MODES = ("luminance", "histogram")


RUNTIMES = ("torch", "onnx")


def check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime must be one of {', '.join(RUNTIMES)}")


@functools.lru_cache(maxsize=4)
def onnx_session(path: str, device: str = "auto"):
    """A cached onnxruntime session for an exported model (see brushwork.export)."""
    from ..export import onnx_session as make

    return make(path, device)


@dataclass
class CommonOptions:
    """Options every method has, so that size, colour, blends, seeds and devices mean the same everywhere."""

    size: int = 512
    style_scale: float = 1.0
    style_blend: list[float] | None = None
    preserve_color: str | None = None
    seed: int = 0
    device: str = "auto"
    quiet: bool = False


def check_common(opts: CommonOptions, n_styles: int, needs_styles: bool = True) -> None:
    """Reject impossible shared option values with a message that names the option."""
    checks = [(n_styles >= 1 or not needs_styles, "give at least one style image"),
              (opts.size >= 1, "--size must be a positive number of pixels"),
              (opts.style_scale > 0, "--style-scale must be positive"),
              (opts.preserve_color in (None, *COLOR_MODES), "--preserve-color must be luminance or histogram")]
    if opts.style_blend is not None:
        checks += [(len(opts.style_blend) == n_styles,
                    f"--style-blend has {len(opts.style_blend)} weights for {n_styles} style image(s)"),
                   (all(w >= 0 for w in opts.style_blend) and sum(opts.style_blend) > 0,
                    "--style-blend weights must be non-negative and not all zero")]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    options: type
    presets: dict[str, dict[str, Any]]
    run: Callable[..., Result]


REGISTRY: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> None:
    REGISTRY[spec.name] = spec


def get_method(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise ConfigError(f"unknown method '{name}'; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def method_names() -> list[str]:
    return list(REGISTRY)


from . import adain, fast, optimize  # noqa: E402,F401  (they register themselves)
