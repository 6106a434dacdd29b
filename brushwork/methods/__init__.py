"""The method registry: every method takes the same inputs (content, styles, blend weights, masks, options) and
returns the same Result, so the API, the CLI and shared features (colour, masks, sidecars) are written once."""

from __future__ import annotations

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


from . import adain, optimize  # noqa: E402,F401  (they register themselves)
