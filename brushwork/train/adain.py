"""Training the AdaIN decoder: content photos and style paintings, the paper's losses, the shared loop."""

from __future__ import annotations

import torch
from torch import nn

from ..methods.adain_model import AdaINNet
from .data import MIN_SIDE, RandomCrops, scan_images
from .loop import TrainConfig, TrainTask


class AdaINTraining(nn.Module):
    """forward(content, style) → the paper's losses; a module so that Fabric's precision and DDP wrap it."""

    def __init__(self, net: AdaINNet, style_weight: float):
        super().__init__()
        self.net, self.style_weight = net, style_weight

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net.training_losses(content, style, self.style_weight)


def adain_task(content_dir: str, style_dir: str, cfg: TrainConfig, backbone: str = "vgg16-hed",
               style_weight: float = 10.0, weights: str | None = None) -> TrainTask:
    """A TrainTask for the AdaIN decoder of `backbone`, with random crops of both image folders."""
    net = AdaINNet(backbone, weights, seed=cfg.seed)
    datasets = {"content": RandomCrops(scan_images(content_dir, MIN_SIDE), cfg.size, cfg.short_side, cfg.seed),
                "style": RandomCrops(scan_images(style_dir, MIN_SIDE), cfg.size, cfg.short_side, cfg.seed + 1)}
    metadata = {"method": "adain", "backbone": backbone, "layer": net.layer, "style_weight": str(style_weight),
                "format": "brushwork-adain-decoder/1"}
    return TrainTask("adain", AdaINTraining(net, style_weight), net.decoder, datasets,
                     {"adain": (net.decoder, metadata)})
