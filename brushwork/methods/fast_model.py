"""Per-style image transformation networks for the `fast` method, with instance normalization (Ulyanov et al. 2016)
and resize-then-convolve upsampling (no transposed convolutions, hence no checkerboard artifacts):

- `classic`: Johnson et al. 2016's network, as in the paper (1.68 M parameters at width 32);
- `mobile`: a CPU-real-time variant (73 k parameters) that keeps the same plan but spends its work at a quarter of
  the resolution, where it is cheap: a stride-2 first convolution, depthwise-separable convolutions in the residual
  blocks and the upsampling path, and a 3×3 instead of a 9×9 output convolution. bench/RESULTS.md has the timings
  of the variants that led to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .. import losses
from ..backbones import Backbone, LossLayers, create_backbone, get_spec
from ..errors import ConfigError, SizeError
from ..io import pad_for_stride
from .gan_model import adversarial_term

STRIDE = 4  # two stride-2 convolutions


class InstanceNorm(nn.InstanceNorm2d):
    """Instance normalization that can hold its statistics fixed: those of a thumbnail of the whole image, so that
    every tile of it is normalized alike (thumbnail instance normalization: URST, Chen et al. 2022). Same weights
    as nn.InstanceNorm2d; with nothing fixed it is one."""

    fixed: tuple[torch.Tensor, torch.Tensor] | None = None
    recording: bool = False
    smooth: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recording:
            var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
            self.fixed = self.smooth(mean, var) if self.smooth is not None else (mean, var)
        if self.fixed is None:
            return super().forward(x)
        mean, var = self.fixed
        scale = self.weight[:, None, None] * torch.rsqrt(var + self.eps)  # one pass over x, not four
        return torch.addcmul(self.bias[:, None, None] - mean * scale, x, scale)


@contextmanager
def thumbnail_norm(net: nn.Module, thumbnail: torch.Tensor,
                   smooth: Callable[[str, torch.Tensor], torch.Tensor] | None = None) -> Iterator[torch.Tensor]:
    """Within the block, every InstanceNorm of `net` normalizes with the statistics it saw on `thumbnail`, each
    passed through `smooth(key, stats)` as it is taken when given (a video smooths them over the frames of a
    shot, and deeper layers then see the smoothed shallower ones). Yields the network's output for the thumbnail
    itself, which is the whole result when the thumbnail is the whole image."""
    norms = [m for m in net.modules() if isinstance(m, InstanceNorm)]

    def smoother(i: int) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        return lambda mean, var: (smooth(f"fast.mean{i}", mean), smooth(f"fast.var{i}", var))

    try:
        for i, m in enumerate(norms):
            m.recording, m.smooth = True, smoother(i) if smooth is not None else None
        with torch.no_grad():
            output = net(thumbnail)
        for m in norms:
            m.recording = False
        yield output
    finally:
        for m in norms:
            m.recording, m.fixed, m.smooth = False, None, None


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True
          ) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_ch, out_ch, kernel, stride)]
    if norm:
        layers.append(InstanceNorm(out_ch, affine=True))
    if relu:
        layers.append(nn.ReLU())
    return layers


def _separable(in_ch: int, out_ch: int, relu: bool = True) -> list[nn.Module]:
    """A 3×3 depthwise convolution then a 1×1 pointwise one (MobileNet's factorization), normalized once."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, in_ch, 3, groups=in_ch),
                               nn.Conv2d(in_ch, out_ch, 1), InstanceNorm(out_ch, affine=True)]
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


LAYER_SETS = ("backbone", "johnson")


def loss_layers(backbone: str, model: Backbone, layers: str = "backbone") -> LossLayers:
    """The layers fast training reads on a backbone. `backbone`: the style layers the optimize method's default
    weighs above zero (their weights are `model.style_weight`), which ask for the painting's palette and strokes
    where Johnson et al.'s equal-weight layers ask for a light texture over the photo (bench/TUNING.md, finding
    30); `johnson`: the paper's layers where the backbone names them. The content layer is Johnson et al.'s in
    both (else the backbone's first)."""
    if layers not in LAYER_SETS:
        raise ConfigError(f"unknown fast loss layers '{layers}'; choose from {', '.join(LAYER_SETS)}")
    johnson = get_spec(backbone).johnson_layers
    content = johnson.content if johnson else model.content_layers[0]
    if layers == "johnson":
        return johnson or LossLayers(content, model.style_layers)
    style = tuple(layer for layer in model.style_layers if model.style_weight(layer) > 0)
    return LossLayers(content, style, tuple(model.style_weight(layer) for layer in style))


class FastTraining(nn.Module):
    """forward(content) → losses: relative content and Gram losses (so the weights carry across sizes, as in the
    optimize method; the style layers weighted as `loss_layers` says) and total variation, for every style's
    network; the total is their sum."""

    def __init__(self, nets: dict[str, nn.Module], styles: dict[str, torch.Tensor], weights: dict[str, tuple],
                 backbone: str, backbone_weights: str | None = None, adversary: tuple | None = None,
                 layers: str = "backbone"):
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        # (critic, GAN loss, weight) when one style trains against a critic; a tuple, so the critic is not a
        # submodule: it has its own optimizer and checkpoint (loop.Adversary)
        self.adversary = adversary
        self.loss_net = create_backbone(backbone, backbone_weights)
        read = loss_layers(backbone, self.loss_net, layers)
        self.content_layer, self.style_layers, self.layer_shares = read.content, read.style, read.shares()
        gain = self.loss_net.style_gain
        self.weights = {name: (wc, ws * gain, wt) for name, (wc, ws, wt) in weights.items()}
        # the backbone is the process's cached one, which an earlier training in this process may have moved
        where = next(self.loss_net.parameters())
        for i, name in enumerate(nets):
            h, w = styles[name].shape[-2:]
            if min(h, w) < self.loss_net.min_size:
                raise SizeError(f"the style image {name} is {w}×{h} px here, below {backbone}'s minimum of "
                                f"{self.loss_net.min_size} px on the short side; use a larger --style-size")
            with torch.no_grad():
                feats = self.loss_net(styles[name].to(where), self.style_layers)
            for j, layer in enumerate(self.style_layers):
                self.register_buffer(f"gram_{i}_{j}", losses.gram(feats[layer]))

    def forward(self, content: torch.Tensor, style: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """`style`: the critic's real samples, which the networks' step does not read."""
        outs = [net(content) for net in self.nets.values()]
        layers = list(dict.fromkeys([self.content_layer, *self.style_layers]))
        with torch.no_grad():
            target = self.loss_net(content, [self.content_layer])[self.content_layer]
        feats = self.loss_net(torch.cat(outs), layers)
        chunks = {layer: f.chunk(len(outs)) for layer, f in feats.items()}
        result: dict[str, torch.Tensor] = {}
        total, sums = 0.0, {"content": 0.0, "style": 0.0, "tv": 0.0}
        for i, (name, out) in enumerate(zip(self.nets, outs)):
            parts = {"content": losses.content_loss(chunks[self.content_layer][i], target),
                     "style": sum(share * losses.gram_loss(chunks[layer][i], getattr(self, f"gram_{i}_{j}"))
                                  for j, (layer, share) in enumerate(zip(self.style_layers, self.layer_shares))),
                     "tv": losses.tv_loss(out)}
            wc, ws, wt = self.weights[name]
            total = total + wc * parts["content"] + ws * parts["style"] + wt * parts["tv"]
            if self.adversary is not None:
                critic, kind, weight = self.adversary
                adv, logged = adversarial_term(out, ws * parts["style"], critic, kind, weight)
                total = total + adv
                result.update(logged)
            for key, value in parts.items():
                sums[key] = sums[key] + value.detach()
                if len(outs) > 1:
                    result[f"{name}.{key}"] = value.detach()
        result.update({"total": total, **{k: v / len(outs) for k, v in sums.items()}, "output": torch.cat(outs)})
        return result
