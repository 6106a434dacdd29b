"""The `transformer` method (StyTr², Deng et al. 2022): content and style cut into 8×8 patches and mixed by
attention, which keeps the content's structure better than AdaIN's global statistics. Alpha mixes the stylized
tokens with the content stylized by itself, blends mix the tokens of several styles, and masks give each style its
region of the token grid. `brushwork train transformer` trains the network on photos and paintings in the shared
loop."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, WeightsError
from ..lazy import lazy
from ..options import option
from . import adain
from .base import Callback, FeedForwardOptions, MethodSpec, Models, Result, Temporal, Training, register_method

if TYPE_CHECKING:
    from torch import nn

    from ..train.loop import TrainConfig, TrainTask

torch = lazy("torch")
F = lazy("torch.nn.functional")
io = lazy("brushwork.io")
loop = lazy("brushwork.train.loop")
model_lib = lazy("brushwork.methods.transformer_model")
resources = lazy("brushwork.resources")
shared = lazy("brushwork.methods.prepare")
weights_io = lazy("brushwork.weights")

PRETRAINED = {"transformer-small": adain.MODELS_DIR / "transformer-small.safetensors"}
DEFAULT_MODEL = "transformer-small"
FORMAT = "brushwork-transformer/1"
MIN_SIZE = 8  # one patch


@dataclass
class TransformerOptions(FeedForwardOptions):
    """Every knob of the transformer method."""

    model: str = option(DEFAULT_MODEL, "a network: a shipped name or a file from `brushwork train transformer`")
    alpha: float = option(1.0, "style strength from 0 (the content stylized by itself) to 1 (full style)")


def shipped_models() -> dict[str, Path]:
    """The networks this version names; a file may be absent when it is not shipped yet."""
    return dict(PRETRAINED)


def resolve_model(model: str) -> Path:
    """A shipped network's file by name, or a path to one trained with `brushwork train transformer`."""
    return adain.resolve_named(model, PRETRAINED, "transformer", "network")


@functools.lru_cache(maxsize=2)
def load_net(path: str) -> tuple[nn.Module, dict[str, str]]:
    """The network a model file describes (its shape in the metadata), with its weights, frozen; and the
    metadata."""
    tensors, meta = weights_io.read_safetensors(path)
    if meta.get("method") != "transformer":
        raise WeightsError(f"{path} is not a transformer model (its metadata says method "
                           f"{meta.get('method')!r})")
    net = model_lib.StyTr2(model_lib.TransformerConfig.from_metadata(meta))
    weights_io.load_strict(net, tensors, f"{path} does not fit the transformer its metadata describes")
    return net.eval().requires_grad_(False), meta


def _network(path: str) -> nn.Module:
    return load_net(path)[0]


class TransformerStylizer:
    """Reusable inference: encode a style once with `encode_style`, then stylize many contents with it."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto"):
        self.device = resources.resolve_device(device)
        net, self.metadata = load_net(str(resolve_model(model)))
        self.net = net.to(self.device)

    def encode_style(self, style: torch.Tensor) -> torch.Tensor:
        """The style encoder's tokens for a style image (1×3×H×W in [0,1]); any size."""
        with torch.no_grad():
            return self.net.encode_style(style.to(self.device))

    def stylize(self, content: torch.Tensor, styles: list[torch.Tensor], weights: list[float] | None = None,
                masks: list[torch.Tensor] | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Decode `content` (1×3×H×W) after its tokens attended to encoded `styles`: a weighted blend of the
        results, or with masks (1×1×H×W, the content's size) each style's result on its own region."""
        with torch.no_grad():
            size = content.shape[-2:]
            padded = io.pad_for_stride(content.to(self.device), model_lib.PATCH)
            tokens, pos, grid = self.net.encode_content(padded)
            mixed = [self.net.mix(tokens, pos, s) for s in styles]
            if masks:
                small = [F.adaptive_avg_pool2d(io.pad_for_stride(m.to(self.device), model_lib.PATCH), grid)
                         .flatten(2).transpose(1, 2) for m in masks]
                total = sum(small).clamp_min(1e-6)
                styled = sum(m / total * t for m, t in zip(small, mixed))
            else:
                weights = weights or [1 / len(styles)] * len(styles)
                styled = sum(w * t for w, t in zip(weights, mixed))
            if alpha < 1:
                own = self.net.mix(tokens, pos, self.net.encode_style(padded))
                styled = alpha * styled + (1 - alpha) * own
            return self.net.render(styled, grid, size).clamp(0, 1)


def validate(opts: TransformerOptions) -> None:
    shared.check_feed_forward(opts, MIN_SIZE)
    if not 0.0 <= opts.alpha <= 1.0:
        raise ConfigError("--alpha must be between 0 and 1")
    if opts.tile:
        raise ConfigError("--method transformer attends across the whole image and does not tile; leave out --tile")


def _encoded_styles(stylizer: TransformerStylizer, prep: shared.Prepared, size: tuple[int, int],
                    opts: TransformerOptions, temporal: Temporal | None) -> list[torch.Tensor]:
    """The styles' tokens, from styles at the thumbnail's scale (so a large output attends to at most a
    thumbnail's worth of style tokens); once per clip in a video."""
    def encode() -> list[torch.Tensor]:
        return [stylizer.encode_style(s) for s in prep.styles_at(shared.thumbnail_size(size, opts.thumbnail))]

    return temporal.once("transformer.codes", encode) if temporal is not None else encode()


def run(content: torch.Tensor, styles: list[torch.Tensor], opts: TransformerOptions,
        masks: list[torch.Tensor] | None = None, callback: Callback | None = None,
        temporal: Temporal | None = None) -> Result:
    """Stylize `content` (1×3×H×W in [0,1]) in one pass; see TransformerOptions. In a video (`temporal`) the
    styles are encoded once per clip and the output leans on the warped previous one where the flow holds."""
    validate(opts)
    started = time.perf_counter()
    prep = shared.prepare(SPEC, opts, content, styles, masks)
    size = shared.output_size(content, opts.size, MIN_SIZE, "patch grid")
    model = str(resolve_model(opts.model))
    setup = time.perf_counter()
    if opts.runtime == "onnx":
        encoded = time.perf_counter()
        output, device, backbone = adain.run_onnx(model, prep.work_at(size), prep.styles_at(size), prep.masks_at(size),
                                           opts)
    else:
        stylizer = TransformerStylizer(model, opts.device)
        codes = _encoded_styles(stylizer, prep, size, opts, temporal)
        encoded = time.perf_counter()
        output = stylizer.stylize(prep.work_at(size), codes, prep.blend, prep.masks_at(size), opts.alpha)
        device, backbone = str(stylizer.device), stylizer.metadata.get("backbone")
    output = prep.finish(output)
    if temporal is not None:
        output = temporal.blend_previous(output)
    seconds = shared.phase_seconds(started, setup, encoded, time.perf_counter())
    return Result(output, opts, seconds, backbone=backbone, device=device, details={"model": model})


@dataclass
class TransformerTrainOptions:
    """`brushwork train transformer`'s own options (the loop's are TrainConfig)."""

    content_dir: str = option(help="photos, read recursively")
    style_dir: str = option(help="paintings, read recursively")
    config: str = option("small", "small (d 256, 2+2+2 layers, 6 M parameters) | paper (d 512, 3+3+3, 35 M)")
    backbone: str = option("vgg16-hed", "the frozen loss network")
    weights: str | None = option(None, "weights file for the loss network")
    content_weight: float = option(7.0, "content loss weight (paper: 7)")
    style_weight: float = option(10.0, "style loss weight (paper: 10)")
    identity_pixels: float = option(70.0, "pixel identity loss weight (paper: 70)")
    identity_features: float = option(1.0, "feature identity loss weight (paper: 1)")


def transformer_task(opts: TransformerTrainOptions, cfg: TrainConfig) -> TrainTask:
    """A TrainTask for a StyTr² network of `opts.config`'s shape, with random crops of both image folders."""
    shape = model_lib.config(opts.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the initial weights are part of what a training seed reproduces
        net = model_lib.StyTr2(shape)
    weights = model_lib.LossWeights(opts.content_weight, opts.style_weight, opts.identity_pixels,
                                    opts.identity_features)
    module = model_lib.TransformerTraining(net, opts.backbone, opts.weights, weights)
    metadata = {"method": "transformer", "backbone": opts.backbone, "config": opts.config, **shape.to_metadata(),
                "content_weight": str(opts.content_weight), "style_weight": str(opts.style_weight),
                "identity_pixels": str(opts.identity_pixels), "identity_features": str(opts.identity_features),
                "format": FORMAT}
    return loop.TrainTask("transformer", module, net,
                          adain.photo_and_painting_crops(opts.content_dir, opts.style_dir, cfg),
                          {"transformer": (net, metadata)})


SPEC = register_method(MethodSpec(
    "transformer", "Deng et al. 2022 (StyTr²): content and style patches mixed by attention, in one pass",
    TransformerOptions, {"default": {}}, run,
    models=Models(shipped=shipped_models, resolve=resolve_model, load=_network, signature=adain.EXPORT),
    training=Training("train a StyTr² transformer on folders of photos and paintings", TransformerTrainOptions,
                      transformer_task, loop_defaults={"steps": 10000, "lr": 5e-4, "warmup": 1000, "clip": 1.0})))
