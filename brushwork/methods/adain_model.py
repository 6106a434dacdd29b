"""AdaIN (Huang & Belongie 2017) building blocks: the AdaIN operation, the decoder that mirrors an encoder, and the
encoder–decoder network with its training losses. Shared by the `adain` method and `brushwork train adain`."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from .. import losses
from ..backbones import Backbone, backbone_names, create_backbone, get_spec
from ..errors import WeightsError
from ..io import pad_for_stride
from ..weights import load_strict


def adain(content: torch.Tensor, style: torch.Tensor, content_mask: torch.Tensor | None = None,
          content_stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Give content features (N×C×H×W) the per-channel mean and std of the style features. The std carries a
    small epsilon, so flat regions (zero variance) stay finite. With a soft mask (N×1×h×w, any size), the content
    statistics are taken over the masked region only: the paper's spatial control. `content_stats` (mean, std)
    replaces the content's own: a thumbnail's, when `content` is one tile of a larger image."""
    c_mean, c_std = content_stats if content_stats is not None else feature_stats(content, content_mask)
    s_mean, s_std = feature_stats(style)
    return (content - c_mean[..., None, None]) / c_std[..., None, None] * s_std[..., None, None] \
        + s_mean[..., None, None]


def feature_stats(feat: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of features (over a soft mask's region when given), as adain() takes them."""
    return losses.mean_std(feat, losses.position_weights(mask, feat))


def _conv(in_ch: int, out_ch: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3)]
    return layers + [nn.ReLU()] if relu else layers


def vgg_decoder(depth: int = 16, in_channels: int = 512) -> nn.Sequential:
    """The mirror of VGG up to relu4_1: nearest-neighbour upsampling, reflection padding, no normalization."""
    block3 = 3 if depth == 16 else 4
    layers = [*_conv(in_channels, 256), nn.Upsample(scale_factor=2, mode="nearest")]
    for _ in range(block3 - 1):
        layers += _conv(256, 256)
    layers += [*_conv(256, 128), nn.Upsample(scale_factor=2, mode="nearest"), *_conv(128, 128), *_conv(128, 64),
               nn.Upsample(scale_factor=2, mode="nearest"), *_conv(64, 64), *_conv(64, 3, relu=False)]
    return nn.Sequential(*layers)


class GlobalAttention(nn.Module):
    """Self-attention over the decoder's input features (SAGAN, Zhang et al. 2019) as a residual gated by γ, which
    starts at 0: a decoder with it begins exactly as the AdaIN decoder it was initialized from. Keys and values are
    average-pooled by 4, and a large image holds them fixed to its thumbnail's (`memory`, see attention_memory),
    so the cost grows linearly with the image and every tile attends to the same summary of the whole."""

    POOL = 4

    def __init__(self, channels: int = 512):
        super().__init__()
        self.query, self.key = nn.Conv2d(channels, channels // 8, 1), nn.Conv2d(channels, channels // 8, 1)
        self.value, self.out = nn.Conv2d(channels, channels // 2, 1), nn.Conv2d(channels // 2, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.memory: tuple[torch.Tensor, torch.Tensor] | None = None
        self.recording = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory is None or self.recording:
            pooled = F.avg_pool2d(x, self.POOL, ceil_mode=True)
            keys, values = self.key(pooled).flatten(2), self.value(pooled).flatten(2)  # N×C'×M
            if self.recording:
                self.memory = (keys, values)
        else:
            keys, values = self.memory
        n, _, h, w = x.shape
        query = self.query(x).flatten(2)  # N×C'×P
        weights = torch.softmax(query.transpose(1, 2) @ keys / keys.shape[1] ** 0.5, dim=-1)  # N×P×M
        attended = (values @ weights.transpose(1, 2)).reshape(n, -1, h, w)
        return x + self.gamma * self.out(attended)


class AttentiveDecoder(nn.Module):
    """The AdaIN decoder (`body`, the same tensors as vgg_decoder's) after a GlobalAttention block."""

    def __init__(self, depth: int = 16):
        super().__init__()
        self.attention, self.body = GlobalAttention(512), vgg_decoder(depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.attention(x))


@contextmanager
def attention_memory(decoder: nn.Module, thumbnail_pass: Callable[[], object]) -> Iterator[None]:
    """Within the block, a decoder's attention reads the keys and values it saw in `thumbnail_pass` (a decode of
    the thumbnail), whatever the tile it decodes; a decoder without attention needs no pass."""
    blocks = [m for m in decoder.modules() if isinstance(m, GlobalAttention)]
    try:
        if blocks:
            for m in blocks:
                m.recording = True
            thumbnail_pass()
            for m in blocks:
                m.recording = False
        yield
    finally:
        for m in blocks:
            m.recording, m.memory = False, None


def load_decoder(decoder: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load decoder weights (from weights.read_safetensors: fp32): a plain AdaIN decoder's tensors also start an
    attentive decoder (its attention then begins as the identity)."""
    if isinstance(decoder, AttentiveDecoder) and not any(k.startswith("attention.") for k in tensors):
        decoder = decoder.body
    load_strict(decoder, tensors, source, "this decoder")


class AdaINNet(nn.Module):
    """A frozen encoder (a registered backbone up to its AdaIN layer) and a trainable decoder."""

    def __init__(self, backbone: str = "vgg16-hed", weights: str | None = None, seed: int = 0,
                 attention: bool = False):
        super().__init__()
        layers = get_spec(backbone).adain_layers  # the AdaIN layer and the style-loss layers
        if layers is None:
            designed = ", ".join(n for n in backbone_names() if get_spec(n).adain_layers)
            raise WeightsError(f"adain has no decoder design for backbone '{backbone}'; use {designed}")
        self.backbone_name = backbone
        self.layer, self.style_layers = layers.content, layers.style
        self.encoder: Backbone = create_backbone(backbone, weights)
        self.stride = self.encoder.stride(self.layer)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the decoder's initial weights are part of what a training seed reproduces
            self.decoder = AttentiveDecoder(16) if attention else vgg_decoder(16)

    def for_inference(self) -> "AdaINNet":
        """Frozen, with a private copy of the encoder cut at the AdaIN layer (smaller, and free to change memory
        format without touching the backbone that other methods share)."""
        self.encoder = copy.deepcopy(self.encoder).truncate(self.layer)
        return self.eval().requires_grad_(False)

    def encode(self, x: torch.Tensor, layers: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        return self.encoder(x, layers or (self.layer,))

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float | torch.Tensor = 1.0
                ) -> torch.Tensor:
        """One style at strength alpha (1 = full style, 0 = the content decoded), at the content's size: padded
        for the stride and cropped back. This is the graph `brushwork export` writes."""
        h, w = content.shape[-2], content.shape[-1]
        fc = self.encode(pad_for_stride(content, self.stride))[self.layer]
        fs = self.encode(style)[self.layer]
        return self.decoder(alpha * adain(fc, fs) + (1 - alpha) * fc)[..., :h, :w]

    def objective(self, content: torch.Tensor, style: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The paper's objective: (output, content loss, style loss). Content = MSE between the output's features
        and the AdaIN target; style = sum over relu1_1 … relu4_1 of the MSE between channel means plus the MSE
        between channel stds."""
        with torch.no_grad():
            fc = self.encode(content)[self.layer]
            fs = self.encode(style, self.style_layers)
            target = adain(fc, fs[self.layer])
        out = self.decoder(target)
        return (out, *self.output_losses(out, target, fs))

    def output_losses(self, out: torch.Tensor, target: torch.Tensor, style_feats: dict[str, torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(content loss, style loss) of any output image against the AdaIN target and the style's features: the
        decoder's objective, and what bench/loss_optimum.py optimizes an image for directly."""
        fo = self.encode(out, self.style_layers)
        content_loss = F.mse_loss(fo[self.layer], target)
        style_loss = sum(F.mse_loss(a, b) for k in self.style_layers
                         for a, b in zip(feature_stats(fo[k]), feature_stats(style_feats[k])))
        return content_loss, style_loss

    def training_losses(self, content: torch.Tensor, style: torch.Tensor, style_weight: float
                        ) -> dict[str, torch.Tensor]:
        """The objective as the training loop reads it: the weighted total, its parts, and the output."""
        out, content_loss, style_loss = self.objective(content, style)
        total = content_loss + style_weight * style_loss
        return {"total": total, "content": content_loss.detach(), "style": style_loss.detach(), "output": out}


def save_decoder(decoder: nn.Module, path: str | Path, metadata: dict[str, str], half: bool = False) -> None:
    """Decoder weights in safetensors (optionally fp16), with the encoder and recipe as string metadata."""
    tensors = {k: (v.half() if half else v).contiguous().cpu() for k, v in decoder.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)


class AdaINTraining(nn.Module):
    """forward(content, style) → the paper's losses; a module so that Fabric's precision and DDP wrap it."""

    def __init__(self, net: AdaINNet, style_weight: float):
        super().__init__()
        self.net, self.style_weight = net, style_weight

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net.training_losses(content, style, self.style_weight)
