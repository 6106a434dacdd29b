"""Per-style image transformation networks for the `fast` method, with instance normalization (Ulyanov et al. 2016)
and resize-then-convolve upsampling (no transposed convolutions, hence no checkerboard artifacts):

- `classic`: Johnson et al. 2016's network, as in the paper (1.68 M parameters at width 32);
- `mobile`: a CPU-real-time variant (73 k parameters) that keeps the same plan but spends its work at a quarter of
  the resolution, where it is cheap: a stride-2 first convolution, depthwise-separable convolutions in the residual
  blocks and the upsampling path, and a 3×3 instead of a 9×9 output convolution. bench/RESULTS.md has the timings
  of the variants that led to it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..io import pad_for_stride

STRIDE = 4  # two stride-2 convolutions


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True
          ) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_ch, out_ch, kernel, stride)]
    if norm:
        layers.append(nn.InstanceNorm2d(out_ch, affine=True))
    if relu:
        layers.append(nn.ReLU())
    return layers


def _separable(in_ch: int, out_ch: int, relu: bool = True) -> list[nn.Module]:
    """A 3×3 depthwise convolution then a 1×1 pointwise one (MobileNet's factorization), normalized once."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, in_ch, 3, groups=in_ch),
                               nn.Conv2d(in_ch, out_ch, 1), nn.InstanceNorm2d(out_ch, affine=True)]
    return layers + [nn.ReLU()] if relu else layers


class Residual(nn.Module):
    def __init__(self, ch: int, separable: bool = False):
        super().__init__()
        if separable:
            self.body = nn.Sequential(*_separable(ch, ch), *_separable(ch, ch, relu=False))
        else:
            self.body = nn.Sequential(*_conv(ch, ch, 3), *_conv(ch, ch, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _StrideNet(nn.Module):
    """RGB in [0,1] in, RGB out (clamp for display); any size: padded for the stride, cropped back."""

    body: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self.body(pad_for_stride(x, STRIDE))[..., :h, :w]


class TransformNet(_StrideNet):
    """9×9 conv in, two stride-2 convs, five residual blocks, two ×2 nearest upsamplings each followed by a conv,
    9×9 conv out."""

    def __init__(self, width: int = 32, blocks: int = 5):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_conv(3, w, 9), *_conv(w, 2 * w, 3, 2), *_conv(2 * w, 4 * w, 3, 2),
            *[Residual(4 * w) for _ in range(blocks)],
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(4 * w, 2 * w, 3),
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(2 * w, w, 3),
            *_conv(w, 3, 9, norm=False, relu=False))


class MobileTransformNet(_StrideNet):
    """3×3 stride-2 conv in, one more stride-2 conv, five depthwise-separable residual blocks at 2·width channels,
    two ×2 nearest upsamplings each followed by a separable conv, 3×3 conv out."""

    def __init__(self, width: int = 32, blocks: int = 5):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_conv(3, w, 3, 2), *_conv(w, 2 * w, 3, 2),
            *[Residual(2 * w, separable=True) for _ in range(blocks)],
            nn.Upsample(scale_factor=2, mode="nearest"), *_separable(2 * w, w),
            nn.Upsample(scale_factor=2, mode="nearest"), *_separable(w, w // 2),
            *_conv(w // 2, 3, 3, norm=False, relu=False))


ARCHS: dict[str, type[_StrideNet]] = {"classic": TransformNet, "mobile": MobileTransformNet}


def build_net(arch: str = "classic", width: int = 32) -> _StrideNet:
    """A fresh network of a named architecture (the `arch` entry of a model file's metadata)."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown fast architecture '{arch}'; choose from {', '.join(ARCHS)}")
    return ARCHS[arch](width=width)
