"""StyTr² (Deng et al., CVPR 2022) building blocks: images cut into 8×8 patches, a content-aware positional encoding,
a content encoder and a style encoder, a decoder whose layers attend from content tokens to style tokens, and a CNN
decoder that upsamples ×8; with the paper's losses on a frozen backbone. Shared by the `transformer` method and
`brushwork train transformer`.

Attention goes through F.scaled_dot_product_attention (flash attention on a GPU, a memory-efficient kernel on the
CPU), pre-norm. Nothing assumes a square: an image is padded to the patch stride and the output cropped back."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from ..backbones import create_backbone, get_spec
from ..errors import ConfigError
from ..io import pad_for_stride
from .adain_model import feature_stats, vgg_decoder

PATCH = 8
CAPE_GRID = 18  # the paper's pooled grid for the positional encoding


@dataclass(frozen=True)
class TransformerConfig:
    """A network's shape; a model file's metadata holds it, so a file says how to build its network."""

    dim: int = 256
    heads: int = 8
    content_layers: int = 2
    style_layers: int = 2
    decoder_layers: int = 2
    ffn: int = 1024
    cnn: str = "light"  # light (a small upsampler) | vgg (the paper's: the AdaIN decoder's plan from `dim` channels)

    def to_metadata(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> "TransformerConfig":
        types = {"cnn": str}
        return cls(**{k: types.get(k, int)(meta[k]) for k in asdict(cls()) if k in meta})


CONFIGS = {"small": TransformerConfig(),
           "paper": TransformerConfig(512, 8, 3, 3, 3, 2048, "vgg")}


def config(name: str) -> TransformerConfig:
    if name not in CONFIGS:
        raise ConfigError(f"unknown transformer config '{name}'; choose from {', '.join(CONFIGS)}")
    return CONFIGS[name]


def adaptive_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Adaptive average pooling to size×size written as two small matrix products (bin i of n input positions
    averages positions ⌊i·n/size⌋ … ⌈(i+1)·n/size⌉ − 1, as nn.AdaptiveAvgPool2d does), so that an exported graph
    keeps dynamic input sizes."""
    def bins(n: int) -> torch.Tensor:
        i = torch.arange(size, device=x.device, dtype=x.dtype)[:, None]
        j = torch.arange(n, device=x.device, dtype=x.dtype)[None, :]
        start, end = torch.floor(i * n / size), torch.ceil((i + 1) * n / size)
        member = ((j >= start) & (j < end)).to(x.dtype)
        return member / member.sum(1, keepdim=True)
    return torch.einsum("ih,nchw,jw->ncij", bins(x.shape[-2]), x, bins(x.shape[-1]))


class PositionalEncoding(nn.Module):
    """Content-aware positional encoding (CAPE): the content's patch features pooled to a fixed 18×18 map, a 1×1
    convolution, and that map resized (bilinear) to the token grid. The encoding scales with the image: at any size
    it is a resize of the same map."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 1)

    def map(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(adaptive_mean(tokens, CAPE_GRID))

    @staticmethod
    def at(grid_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(grid_map, size=size, mode="bilinear", align_corners=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.at(self.map(tokens), tokens.shape[-2:])


class Attention(nn.Module):
    """Multi-head attention through scaled_dot_product_attention."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        n, _, dim = query.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(n, -1, self.heads, dim // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(split(self.q(query)), split(self.k(key)), split(self.v(value)))
        return self.out(attended.transpose(1, 2).reshape(n, -1, dim))


def _ffn(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and feed-forward; the positional encoding joins the queries and keys."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm, self.attn, self.ffn = nn.LayerNorm(dim), Attention(dim, heads), _ffn(dim, hidden)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(x)
        qk = h + pos if pos is not None else h
        x = x + self.attn(qk, qk, h)
        return x + self.ffn(x)


class DecoderLayer(nn.Module):
    """Pre-norm self-attention over the content tokens, cross-attention from them to the style tokens, and
    feed-forward."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.cross_attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.ffn = _ffn(dim, hidden)

    def forward(self, x: torch.Tensor, style: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        qk = h + pos if pos is not None else h
        x = x + self.self_attn(qk, qk, h)
        h = self.norm2(x)
        x = x + self.cross_attn(h + pos if pos is not None else h, style, style)
        return x + self.ffn(x)


def _light_cnn(dim: int) -> nn.Sequential:
    """Three ×2 nearest upsamplings, each followed by reflection-padded 3×3 convolutions."""
    def conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
        return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), *([nn.ReLU()] if relu else [])]
    def up() -> nn.Module:  # one module per use, so that the layer list reads in execution order
        return nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(*conv(dim, 128), up(), *conv(128, 128), *conv(128, 64), up(), *conv(64, 64), *conv(64, 32),
                         up(), *conv(32, 32), *conv(32, 3, relu=False))


class StyTr2(nn.Module):
    """RGB in [0,1] in (content, style: any sizes), RGB out at the content's size (clamp for display)."""

    def __init__(self, cfg: TransformerConfig = TransformerConfig()):
        super().__init__()
        d = cfg.dim
        if d % cfg.heads:
            raise ConfigError(f"the transformer's width {d} must be a multiple of its {cfg.heads} heads")
        self.cfg = cfg
        self.content_embed, self.style_embed = nn.Conv2d(3, d, PATCH, PATCH), nn.Conv2d(3, d, PATCH, PATCH)
        self.cape = PositionalEncoding(d)
        self.content_encoder = nn.ModuleList(EncoderLayer(d, cfg.heads, cfg.ffn) for _ in range(cfg.content_layers))
        self.style_encoder = nn.ModuleList(EncoderLayer(d, cfg.heads, cfg.ffn) for _ in range(cfg.style_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d, cfg.heads, cfg.ffn) for _ in range(cfg.decoder_layers))
        self.norm = nn.LayerNorm(d)
        self.cnn = vgg_decoder(16, in_channels=d) if cfg.cnn == "vgg" else _light_cnn(d)

    @staticmethod
    def _sequence(grid: torch.Tensor) -> torch.Tensor:
        return grid.flatten(2).transpose(1, 2)

    def encode_style(self, style: torch.Tensor) -> torch.Tensor:
        """The style encoder's tokens (N×T×d) for style images of any size: what every content attends to."""
        x = self._sequence(self.style_embed(pad_for_stride(style * 2 - 1, PATCH)))
        for layer in self.style_encoder:
            x = layer(x, None)
        return x

    def encode_content(self, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(content encoder tokens, their positional encoding, token grid size) for padded content images."""
        grid = self.content_embed(content * 2 - 1)
        pos = self._sequence(self.cape(grid))
        x = self._sequence(grid)
        for layer in self.content_encoder:
            x = layer(x, pos)
        return x, pos, grid.shape[-2:]

    def mix(self, content: torch.Tensor, pos: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The decoder's tokens: content tokens that have attended to `style` tokens."""
        x = content
        for layer in self.decoder:
            x = layer(x, style, pos)
        return self.norm(x)

    @staticmethod
    def planes(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Tokens (N×T×d) as the CNN decoder's input (N×d×grid)."""
        return tokens.transpose(1, 2).reshape(len(tokens), -1, *grid)

    def render(self, tokens: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
        """Tokens back to an image ×8 by the CNN decoder, cropped to `size`."""
        return self.cnn(self.planes(tokens, grid))[..., :size[0], :size[1]]

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float | torch.Tensor = 1.0
                ) -> torch.Tensor:
        """One style at strength alpha (1 = full style, 0 = the content stylized with itself). This is the graph
        `brushwork export` writes."""
        size = content.shape[-2:]
        padded = pad_for_stride(content, PATCH)
        tokens, pos, grid = self.encode_content(padded)
        styled = self.mix(tokens, pos, self.encode_style(style))
        own = self.mix(tokens, pos, self.encode_style(padded))
        return self.render(alpha * styled + (1 - alpha) * own, grid, size)

    def stylize_batch(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Content i with style i at full strength (training: same-size crops)."""
        tokens, pos, grid = self.encode_content(pad_for_stride(content, PATCH))
        return self.render(self.mix(tokens, pos, self.encode_style(style)), grid, content.shape[-2:])


@dataclass(frozen=True)
class LossWeights:
    """The paper's λc = 7, λs = 10, λid1 = 70, λid2 = 1. Our style and feature-identity terms are relative (the
    error over the target's energy, as every loss in losses.py), so the weights mean the same on any backbone."""

    content: float = 7.0
    style: float = 10.0
    identity_pixels: float = 70.0
    identity_features: float = 1.0


def _normalized(feat: torch.Tensor) -> torch.Tensor:
    mean, std = feature_stats(feat)
    return (feat - mean[..., None, None]) / std[..., None, None]


class TransformerTraining(nn.Module):
    """forward(content, style) → the paper's losses: content (MSE of mean–variance normalized features at relu3_1
    and relu4_1), style (channel means and stds, relu1_1 … relu4_1), and the identity losses: the content
    stylized with itself, and the style with itself, against themselves in pixels and in features. Style and
    feature identity are relative errors (losses.mean_std_loss, losses.content_loss): in vgg16-hed's Caffe units
    the paper's absolute ones outweigh the content term a thousandfold. One generator pass for all three pairs
    (content×style, content×content, style×style), one backbone pass for all outputs."""

    def __init__(self, net: StyTr2, backbone: str = "vgg16-hed", weights: str | None = None,
                 loss_weights: LossWeights = LossWeights()):
        super().__init__()
        layers = get_spec(backbone).adain_layers
        if layers is None:
            raise ConfigError(f"transformer training has no loss layers for backbone '{backbone}'; use vgg16-hed")
        self.net, self.w = net, loss_weights
        self.loss_net = create_backbone(backbone, weights)
        self.style_layers = layers.style
        self.content_layers = self.style_layers[-2:]

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        n = len(content)
        outputs = self.net.stylize_batch(torch.cat([content, content, style]), torch.cat([style, content, style]))
        out, cc, ss = outputs.split(n)
        with torch.no_grad():
            targets = self.loss_net(torch.cat([content, style]), self.style_layers)
        feats = self.loss_net(outputs, self.style_layers)
        fo = {k: v[:n] for k, v in feats.items()}
        fid = {k: v[n:] for k, v in feats.items()}
        fc = {k: v[:n] for k, v in targets.items()}
        fs = {k: v[n:] for k, v in targets.items()}
        content_loss = sum(F.mse_loss(_normalized(fo[k]), _normalized(fc[k])) for k in self.content_layers)
        style_loss = sum(losses.mean_std_loss(fo[k], feature_stats(fs[k])) for k in self.style_layers)
        id_pixels = F.mse_loss(cc, content) + F.mse_loss(ss, style)
        id_features = sum(losses.content_loss(fid[k], targets[k]) for k in self.style_layers)
        w = self.w
        total = (w.content * content_loss + w.style * style_loss + w.identity_pixels * id_pixels
                 + w.identity_features * id_features)
        return {"total": total, "content": content_loss.detach(), "style": style_loss.detach(),
                "identity_pixels": id_pixels.detach(), "identity_features": id_features.detach(), "output": out}
