"""Training per-style transformation networks (Johnson et al. 2016): content photos, style images, perceptual losses
on a frozen backbone, the shared loop. Several styles train together in one task: every step sends one batch of
photos through each style's network and all the outputs through the loss network as one large batch, which keeps
a GPU busy where one small network alone would leave it idle. Each network sees only its own loss, so this is the
same as training them one by one."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import io, losses
from ..errors import ConfigError
from ..backbones import Backbone, LossLayers, create_backbone, get_spec
from ..methods.fast_model import build_net
from .data import MIN_SIDE, RandomCrops, scan_images
from .loop import TrainConfig, TrainTask


def loss_layers(backbone: str, model: Backbone) -> LossLayers:
    """The layers fast training reads on a backbone: Johnson et al.'s where the backbone names them, else its
    default content layer and style layers."""
    return get_spec(backbone).johnson_layers or LossLayers(model.content_layers[0], model.style_layers)


@dataclass
class FastStyle:
    """One network to train: its name (the model file's stem), style image and loss weights."""

    name: str
    style: str
    content_weight: float = 1.0
    style_weight: float = 3.0
    tv_weight: float = 1.0
    style_size: int | None = None  # long side of the style image (default: the crop size)


class FastTraining(nn.Module):
    """forward(content) → losses: relative content and Gram losses (so the weights carry across sizes, as in the
    optimize method) and total variation, for every style's network; the total is their sum."""

    def __init__(self, nets: dict[str, nn.Module], styles: dict[str, torch.Tensor], weights: dict[str, tuple],
                 backbone: str, backbone_weights: str | None = None):
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        self.loss_net = create_backbone(backbone, backbone_weights)
        self.content_layer, self.style_layers = loss_layers(backbone, self.loss_net)
        gain = self.loss_net.style_gain
        self.weights = {name: (wc, ws * gain, wt) for name, (wc, ws, wt) in weights.items()}
        for i, name in enumerate(nets):
            with torch.no_grad():
                feats = self.loss_net(styles[name], self.style_layers)
            for j, layer in enumerate(self.style_layers):
                self.register_buffer(f"gram_{i}_{j}", losses.gram(feats[layer]))

    def forward(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
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
                     "style": sum(losses.gram_loss(chunks[layer][i], getattr(self, f"gram_{i}_{j}"))
                                  for j, layer in enumerate(self.style_layers)) / len(self.style_layers),
                     "tv": losses.tv_loss(out)}
            wc, ws, wt = self.weights[name]
            total = total + wc * parts["content"] + ws * parts["style"] + wt * parts["tv"]
            for key, value in parts.items():
                sums[key] = sums[key] + value.detach()
                if len(outs) > 1:
                    result[f"{name}.{key}"] = value.detach()
        result.update({"total": total, **{k: v / len(outs) for k, v in sums.items()}, "output": torch.cat(outs)})
        return result


def fast_task(styles: list[FastStyle], content_dir: str, cfg: TrainConfig, backbone: str = "vgg16-hed",
              arch: str = "classic", weights: str | None = None) -> TrainTask:
    """A TrainTask for one or more style images, one `arch` network each; each style's Gram matrices are computed
    once, at its `style_size` on the long side."""
    names = [s.name for s in styles]
    if not styles or len(set(names)) != len(names):
        raise ConfigError(f"fast training needs styles with distinct names, got {names}")
    images, nets = {}, {}
    for i, s in enumerate(styles):
        image = io.load_image(s.style)
        images[s.name] = io.resize(image, io.fit_long_side(*image.shape[-2:], s.style_size or cfg.size))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + i)  # the initial weights are part of what a training seed reproduces
            nets[s.name] = build_net(arch)
    module = FastTraining(nets, images, {s.name: (s.content_weight, s.style_weight, s.tv_weight) for s in styles},
                          backbone, weights)
    datasets = {"content": RandomCrops(scan_images(content_dir, MIN_SIDE), cfg.size, cfg.short_side, cfg.seed)}
    exports = {}
    for s in styles:
        exports[s.name] = (nets[s.name], {
            "method": "fast", "arch": arch, "backbone": backbone, "style": str(s.style), "width": "32",
            "content_weight": str(s.content_weight), "style_weight": str(s.style_weight),
            "tv_weight": str(s.tv_weight), "style_size": str(s.style_size or cfg.size), "format": "brushwork-fast/1"})
    if len(styles) == 1:  # a single run keeps the historical file name RUN/fast.safetensors
        exports = {"fast": exports[styles[0].name]}
    return TrainTask("fast", module, module.nets, datasets, exports)
