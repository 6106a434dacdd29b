"""One registry of feature backbones: `create_backbone(name, weights=None, pooling="max")`, like timm's
create_model. Each backbone file defines its network and registers its BackboneSpec (weights, layer facts), so a
new backbone is one file imported here."""

from __future__ import annotations

import functools

from ..errors import BackboneError
from . import vgg, efficientnet_lite  # noqa: F401  (each registers its backbones; vgg16-hed, the default, first)
from .base import Backbone, BackboneSpec, LossLayers, backbone_names, get_spec, register


@functools.lru_cache(maxsize=4)
def _cached_build(name: str, weights: str | None, pooling: str) -> Backbone:
    return get_spec(name).build(weights, pooling).freeze()


def create_backbone(name: str, weights: str | None = None, pooling: str = "max") -> Backbone:
    """A frozen backbone with its pretrained weights (built once per process and reused)."""
    if pooling not in ("max", "avg"):
        raise BackboneError(f"unknown pooling '{pooling}'; use max or avg")
    get_spec(name)
    return _cached_build(name, None if weights is None else str(weights), pooling)


def describe_backbones() -> list[dict]:
    """Name, description, layers, defaults and whether the weights are present, for every backbone."""
    rows = []
    for name in backbone_names():
        spec = get_spec(name)
        model = spec.architecture()
        rows.append({"name": spec.name, "description": spec.description, "weights": spec.source,
                     "weights_present": spec.default_weights() is not None, "layers": model.layer_names,
                     "content_layers": list(model.content_layers), "style_layers": list(model.style_layers),
                     "style_weights": {n: model.style_weight(n) for n in model.style_layers}})
    return rows


def eval_preference() -> list[str]:
    """The backbones that may grade results unasked, in order of preference."""
    ranked = [get_spec(n) for n in backbone_names() if get_spec(n).eval_rank is not None]
    return [s.name for s in sorted(ranked, key=lambda s: s.eval_rank)]


__all__ = ["Backbone", "BackboneSpec", "LossLayers", "backbone_names", "create_backbone", "describe_backbones",
           "eval_preference", "get_spec", "register"]
