"""Training a per-style transformation network (Johnson et al. 2016): content photos, one style image, perceptual
losses on a frozen backbone, the shared loop."""

from __future__ import annotations

import torch
from torch import nn

from .. import io, losses
from ..backbones import create_backbone
from ..methods.fast_model import TransformNet
from .data import MIN_SIDE, RandomCrops, scan_images
from .loop import TrainConfig, TrainTask

# Johnson et al.'s layers on VGG16 (content relu2_2; style relu1_2, relu2_2, relu3_3, relu4_3), and the taps at the
# same resolutions on EfficientNet-Lite0. Other backbones use their own defaults.
LAYERS = {"vgg16-hed": ("relu2_2", ("relu1_2", "relu2_2", "relu3_3", "relu4_3")),
          "efficientnet-lite0": ("block2", ("stem", "block2", "block4", "block10"))}


class FastTraining(nn.Module):
    """forward(content) → losses: relative content and Gram losses (so the weights carry across sizes, as in the
    optimize method) and total variation."""

    def __init__(self, net: TransformNet, backbone: str, style: torch.Tensor, content_weight: float,
                 style_weight: float, tv_weight: float, weights: str | None = None):
        super().__init__()
        self.net = net
        self.loss_net = create_backbone(backbone, weights)
        self.content_layer, self.style_layers = LAYERS.get(
            backbone, (self.loss_net.content_layers[0], self.loss_net.style_layers))
        self.weights = (content_weight, style_weight * self.loss_net.style_gain, tv_weight)
        with torch.no_grad():
            feats = self.loss_net(style, self.style_layers)
        for i, name in enumerate(self.style_layers):
            self.register_buffer(f"gram{i}", losses.gram(feats[name]))

    def forward(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(content)
        layers = list(dict.fromkeys([self.content_layer, *self.style_layers]))
        with torch.no_grad():
            target = self.loss_net(content, [self.content_layer])[self.content_layer]
        feats = self.loss_net(out, layers)
        content_loss = losses.content_loss(feats[self.content_layer], target)
        style_loss = sum(losses.gram_loss(feats[name], getattr(self, f"gram{i}"))
                         for i, name in enumerate(self.style_layers)) / len(self.style_layers)
        tv = losses.tv_loss(out)
        wc, ws, wt = self.weights
        total = wc * content_loss + ws * style_loss + wt * tv
        return {"total": total, "content": content_loss.detach(), "style": style_loss.detach(), "tv": tv.detach(),
                "output": out}


def fast_task(style_path: str, content_dir: str, cfg: TrainConfig, backbone: str = "vgg16-hed",
              style_size: int | None = None, content_weight: float = 1.0, style_weight: float = 3.0,
              tv_weight: float = 1.0, weights: str | None = None) -> TrainTask:
    """A TrainTask for one style image: its Gram matrices are computed once, at `style_size` (default: the crop
    size) on the long side."""
    style = io.load_image(style_path)
    style = io.resize(style, io.fit_long_side(*style.shape[-2:], style_size or cfg.size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the initial weights are part of what a training seed reproduces
        net = TransformNet()
    module = FastTraining(net, backbone, style, content_weight, style_weight, tv_weight, weights)
    datasets = {"content": RandomCrops(scan_images(content_dir, MIN_SIDE), cfg.size, cfg.short_side, cfg.seed)}
    metadata = {"method": "fast", "backbone": backbone, "style": str(style_path), "width": "32",
                "content_weight": str(content_weight), "style_weight": str(style_weight), "tv_weight": str(tv_weight),
                "style_size": str(style_size or cfg.size), "format": "brushwork-fast/1"}
    return TrainTask("fast", module, net, datasets, metadata)
