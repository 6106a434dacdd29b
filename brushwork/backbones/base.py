"""The Backbone contract: RGB in [0,1] in, {layer name: activation} out, computing only up to the deepest layer
asked for. Each backbone normalizes its own input and carries its own default layers and weights."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..errors import BackboneError


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

    def check_layers(self, layers: Iterable[str]) -> None:
        unknown = [name for name in layers if name not in self.stages]
        if unknown:
            raise BackboneError(f"backbone {self.name} has no layer {', '.join(unknown)}; "
                                f"its layers are {', '.join(self.layer_names)}")

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
