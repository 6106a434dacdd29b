"""Johnson et al. 2016's image transformation network, with instance normalization (Ulyanov et al. 2016) and
resize-then-convolve upsampling (no transposed convolutions, hence no checkerboard artifacts)."""

from __future__ import annotations

import torch
from torch import nn

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


class Residual(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(*_conv(ch, ch, 3), *_conv(ch, ch, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformNet(nn.Module):
    """9×9 conv in, two stride-2 convs, five residual blocks, two ×2 nearest upsamplings each followed by a conv,
    9×9 conv out. RGB in [0,1] in, RGB out (clamp for display); any size, output the size of the input."""

    def __init__(self, width: int = 32, blocks: int = 5):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_conv(3, w, 9), *_conv(w, 2 * w, 3, 2), *_conv(2 * w, 4 * w, 3, 2),
            *[Residual(4 * w) for _ in range(blocks)],
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(4 * w, 2 * w, 3),
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(2 * w, w, 3),
            *_conv(w, 3, 9, norm=False, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self.body(pad_for_stride(x, STRIDE))[..., :h, :w]
