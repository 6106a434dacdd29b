"""The Backbone contract: RGB in [0,1] in, {layer name: activation} out, computing only up to the deepest layer
asked for. Each backbone normalizes its own input and carries its own default layers and weights; its registry
entry (BackboneSpec, in the backbone's own file) says where the weights come from and which layers each use of
it reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from torch import nn

from ..errors import BackboneError, WeightsError
from ..weights import not_found


class Backbone(nn.Module):
    """A frozen feature extractor made of named stages run in order; every stage name is a tap."""

    name: str = ""
    content_layers: tuple[str, ...] = ()
    style_layers: tuple[str, ...] = ()
    style_weights: dict[str, float] = {}  # per style layer; a layer not named here weighs 1
    style_gain: float = 1.0  # scales this backbone's style loss so one --style-weight gives a similar balance
    min_size: int = 32
    pyramid_levels: int = 1  # how the optimize method should parameterize images for it (1 = raw pixels)
    perceptual_layers: tuple[str, ...] = ()  # the last tap at each resolution: what perceptual metrics compare
    pooled_layer: str = ""  # the deepest tap, globally pooled into one vector per image for set-level metrics

    def __init__(self, stages: list[tuple[str, nn.Module]]):
        super().__init__()
        self.stages = nn.ModuleDict(stages)

    @property
    def layer_names(self) -> list[str]:
        return list(self.stages.keys())

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map RGB in [0,1] to what the network was trained on."""
        return x

    def style_weight(self, layer: str) -> float:
        """The layer's weight in the optimize method's default style loss."""
        return self.style_weights.get(layer, 1.0)

    def check_layers(self, layers: Iterable[str]) -> None:
        unknown = [name for name in layers if name not in self.stages]
        if unknown:
            raise BackboneError(f"backbone {self.name} has no layer {', '.join(unknown)}; "
                                f"its layers are {', '.join(self.layer_names)}")

    def stride(self, layer: str) -> int:
        """Input pixels per position of `layer`, measured with a 64 px probe (a layer's stride follows from the
        strides before it, which each network spells differently)."""
        param = next(self.parameters())
        with torch.no_grad():
            probe = self(torch.zeros(1, 3, 64, 64, device=param.device, dtype=param.dtype), [layer])[layer]
        return 64 // probe.shape[-1]

    def receptive_field(self, layer: str) -> int:
        """Input pixels that can affect one position of `layer`: how far apart tiles must overlap."""
        from ..tiling import leaves, receptive_field

        self.check_layers([layer])
        names = self.layer_names
        return receptive_field(m for n in names[:names.index(layer) + 1] for m in leaves(self.stages[n]))

    def truncate(self, layer: str) -> "Backbone":
        """Drop every stage after `layer`, in place: a smaller network for callers that never go deeper."""
        self.check_layers([layer])
        names = self.layer_names
        self.stages = nn.ModuleDict([(n, self.stages[n]) for n in names[:names.index(layer) + 1]])
        return self

    def freeze(self) -> "Backbone":
        self.eval()
        self.requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        self.check_layers(wanted)
        out: dict[str, torch.Tensor] = {}
        x = self.normalize(x)
        for name, stage in self.stages.items():
            if len(out) == len(wanted):
                break
            x = stage(x)
            if name in wanted:
                out[name] = x
        return out


class LossLayers(NamedTuple):
    """The layers a training objective reads on one backbone: one content layer and the style layers, with the
    style layers' relative weights (None: equal)."""

    content: str
    style: tuple[str, ...]
    weights: tuple[float, ...] | None = None

    def shares(self) -> list[float]:
        """The style layers' weights scaled to sum to 1, so a style weight means the same for any set of layers."""
        weights = self.weights or (1.0,) * len(self.style)
        return [w / sum(weights) for w in weights]


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone's registry entry: how to build it, where its weights come from, and which of its layers each
    use reads, so that a new backbone is one file that registers one of these."""

    name: str
    description: str
    source: str  # where the weights come from, in words
    build: Callable[[str | None, str], Backbone]  # (weights file or None for the default, pooling) → network
    default_weights: Callable[[], Path | None]  # the weights file found without being told, if any
    architecture: Callable[[], Backbone]  # the network without weights: its layer names and default layers
    eval_rank: int | None = None  # grading preference, lowest first, among backbones that made none of the outputs
    adain_layers: LossLayers | None = None  # AdaIN encoder: AdaIN acts on `content`; None: no decoder design
    johnson_layers: LossLayers | None = None  # fast training's losses (Johnson et al.); None: the default layers


REGISTRY: dict[str, BackboneSpec] = {}


def register(spec: BackboneSpec) -> BackboneSpec:
    REGISTRY[spec.name] = spec
    return spec


def backbone_names() -> list[str]:
    return list(REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    if name not in REGISTRY:
        raise BackboneError(f"unknown backbone '{name}'; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def require_weights(path: str | None, default: Callable[[], Path | None], missing: str) -> Path:
    """The weights file given, or the default one; a WeightsError that says how to get it when there is none."""
    if path is not None:
        if not Path(path).is_file():
            raise not_found(Path(path))
        return Path(path)
    found = default()
    if found is None:
        raise WeightsError(missing)
    return found
