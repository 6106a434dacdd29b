"""What every method shares: the options all of them take, the Result they return, the progress Step, and the
registry entry (MethodSpec) through which the API, the CLI, export and training reach a method without naming it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ConfigError
from ..options import option

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..train.loop import TrainConfig, TrainTask

COLOR_MODES = ("luminance", "histogram")
IMAGE_AXES = {0: "batch", 2: "height", 3: "width"}  # the free axes of an exported graph's N×3×H×W images


@dataclass
class CommonOptions:
    """Options every method has, so that size, colour, blends, seeds and devices mean the same everywhere."""

    size: int = option(512, "long side of the output in pixels")
    style_scale: float = option(1.0, "style image size relative to the output")
    style_blend: list[float] | None = option(None, "blend weights, one per style, e.g. 0.7,0.3")
    preserve_color: str | None = option(None, "luminance | histogram")
    seed: int = option(0, "random seed: the same inputs and seed give the same image")
    device: str = option("auto", "auto | cpu | cuda")
    quiet: bool = option(False, "no progress bar")
    tile: int | None = option(None, "process in overlapping tiles of N px for very large images; 0 = never "
                                    "(default: only when the whole image would not fit in memory)")


@dataclass
class FeedForwardOptions(CommonOptions):
    """Options of the methods that run a trained network once: which runtime runs it, and the thumbnail whose
    normalization statistics stand for the whole image, so that tiles of it are normalized alike."""

    runtime: str = option("torch", "torch | onnx, to run a model exported with `brushwork export` through "
                                   "onnxruntime")
    thumbnail: int = option(1024, "long side of the thumbnail whose feature statistics stand for the whole image "
                                  "(larger images and tiles use them)")


@dataclass
class Result:
    """A stylized image (1×3×H×W in [0,1]) and how it was made. `stats` gives all but the image as one dict: what
    `stylize(..., return_stats=True)` returns and the sidecar records."""

    image: torch.Tensor
    options: CommonOptions
    seconds: dict[str, float] = field(default_factory=dict)  # setup … total; the API adds load (and save)
    losses: dict[str, float] = field(default_factory=dict)  # final losses, for methods that minimize them
    backbone: str | None = None  # the feature network that made the image ('+' joins several); None: unknown
    device: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # what else a method reports: scales, model file, ...
    method: str = ""
    preset: str = ""

    @property
    def stats(self) -> dict[str, Any]:
        return {**self.details, "losses": self.losses, "backbone": self.backbone, "device": self.device,
                "seconds": self.seconds, "options": dataclasses.asdict(self.options), "method": self.method,
                "preset": self.preset}


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


# Called after every iteration; returning True asks the method to stop early: optimize then returns its current
# image at the output size, with details["stopped_at"] (a UI's Stop button). Feed-forward methods make one pass.
Callback = Callable[[Step], "bool | None"]


@dataclass
class Temporal:
    """What a video job hands a method with each frame so that consecutive outputs agree (brushwork.video), with
    the settings of VideoOptions. The job fills in `previous` and `reliable`; a method keeps per-clip work in
    `memo` (networks, style encodings: computed once per clip) and what carries from frame to frame in `state`
    (tensors only: the job saves it with each frame, so a resumed job continues exactly, and clears it at a
    scene cut)."""

    blend: float  # feed-forward methods: weight of `previous` where reliable
    smoothing: float  # feed-forward methods: share of the content statistics carried to the next frame
    temporal_weight: float  # optimize: weight of the temporal loss (Ruder et al. 2016)
    frame_iterations: int  # optimize: iterations for each frame after a shot's first
    previous: torch.Tensor | None = None  # the previous output warped onto this frame; None: a shot's first frame
    reliable: torch.Tensor | None = None  # 1×1×H×W: 1 where `previous` can be trusted, 0 occluded or at an edge
    memo: dict[str, Any] = field(default_factory=dict)
    state: dict[str, torch.Tensor] = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """Per-clip work (networks, style encodings): made for the clip's first frame and kept in `memo`."""
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def smooth(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """An exponential moving average over the frames of a shot, kept under `key`; a kept value of another shape
        (a damaged frame cache's) starts it afresh."""
        if key in self.state and self.state[key].shape == value.shape:
            value = self.smoothing * self.state[key].to(value.device) + (1 - self.smoothing) * value
        self.state[key] = value.detach().cpu()
        return value

    def blend_previous(self, output: torch.Tensor) -> torch.Tensor:
        """The output mixed with the warped previous output where the flow is trusted."""
        if self.previous is None:
            return output
        weight = self.blend * self.reliable.to(output.device)
        return weight * self.previous.to(output.device) + (1 - weight) * output

    def new_shot(self) -> None:
        """A scene cut: nothing carries over but the per-clip work."""
        self.previous, self.reliable = None, None
        self.state.clear()


@dataclass(frozen=True)
class Capabilities:
    """What a method accepts; the shared checks (prepare.py) refuse the rest with one clear message."""

    styles: bool = True  # False: its model carries the style, and style images are refused
    masks: bool = True
    color_modes: tuple[str, ...] = COLOR_MODES


@dataclass(frozen=True)
class ExportSignature:
    """The graph `brushwork export` writes: input names, example inputs to trace with, and the free axes of each
    input and of `output`."""

    names: tuple[str, ...]
    example: Callable[[], tuple[torch.Tensor, ...]]
    dynamic_axes: dict[str, dict[int, str]]


@dataclass(frozen=True)
class Models:
    """A feed-forward method's trained models: which ship, how a name or file resolves, how one loads for export."""

    shipped: Callable[[], dict[str, Path]]  # name → file; a listed file may be absent (not shipped in this version)
    resolve: Callable[[str], Path]  # a shipped name or a model file → the file
    load: Callable[[str], nn.Module]  # a file → the network whose forward pass export writes
    signature: ExportSignature


@dataclass(frozen=True)
class Training:
    """`brushwork train NAME`: the method's own options (a dataclass whose fields become flags) and the task they
    build for the shared loop, with the loop settings this method defaults differently."""

    help: str
    options: type
    task: Callable[[Any, TrainConfig], TrainTask]
    loop_defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    """A method as the rest of the package sees it: its options and presets, how to run it, what it accepts, and
    for feed-forward methods its models and its training."""

    name: str
    description: str
    options: type
    presets: dict[str, dict[str, Any]]
    run: Callable[..., Result]
    capabilities: Capabilities = Capabilities()
    models: Models | None = None
    training: Training | None = None


REGISTRY: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    REGISTRY[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise ConfigError(f"unknown method '{name}'; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def method_names() -> list[str]:
    return list(REGISTRY)


def method_specs() -> list[MethodSpec]:
    return list(REGISTRY.values())
