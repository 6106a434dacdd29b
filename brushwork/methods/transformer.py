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
tiling = lazy("brushwork.tiling")
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
    weights_io.load_strict(net, tensors, path, "the transformer its metadata describes")
    net.cnn.to(memory_format=torch.channels_last)  # oneDNN skips two copies a layer: -40% memory, -15% time
    return net.eval().requires_grad_(False), meta


def _network(path: str) -> nn.Module:
    return load_net(path)[0]


class TransformerStylizer:
    """Reusable inference: encode a style once with `encode_style`, then stylize many contents with it.

    A large image is stylized in two stages. The token stage (the encoders and the attention) runs over the whole
    image, so every token attends to every other as in a small one; scaled_dot_product_attention never holds the
    token-by-token matrix, so its memory grows with the token count, its time with its square. The CNN decoder
    that turns tokens into pixels then runs tile by tile (`render`), so no full-size activation exists; tiles
    overlap by its receptive field, and the result equals the untiled one."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto"):
        self.device = resources.resolve_device(device)
        net, self.metadata = load_net(str(resolve_model(model)))
        self.net = net.to(self.device)

    def encode_style(self, style: torch.Tensor) -> torch.Tensor:
        """The style encoder's tokens for a style image (1×3×H×W in [0,1]); any size."""
        with torch.no_grad():
            return self.net.encode_style(style.to(self.device))

    def footprint(self) -> tiling.Footprint:
        return footprint(self.net)

    def token_bytes(self, size: tuple[int, int], styles: int) -> int:
        """Peak bytes of the token stage for an image of `size`: per token, the widest moment of a layer (about
        16 token-wide and 2 feed-forward-wide vectors, measured 23 kB a token at d 256), plus one mixed result per
        style and the content's own."""
        cfg = self.net.cfg
        tokens = -(-size[0] // model_lib.PATCH) * -(-size[1] // model_lib.PATCH)
        return 4 * tokens * (16 * cfg.dim + 2 * cfg.ffn + (styles + 1) * cfg.dim)

    def mixed_tokens(self, content: torch.Tensor, styles: list[torch.Tensor], weights: list[float] | None = None,
                     masks: list[torch.Tensor] | None = None, alpha: float = 1.0, own: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, tuple[int, int]]:
        """The decoder's tokens for `content` (1×3×H×W) after they attended to encoded `styles`: a weighted blend,
        or with masks (1×1×H×W, the content's size) each style's tokens on its own region; and the token grid.
        Below alpha 1 they are mixed with the content attending to itself, `own` (the content, or a thumbnail of
        it for a large image, as styles are encoded from thumbnails)."""
        with torch.no_grad():
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
                own_style = self.net.encode_style(own.to(self.device) if own is not None else padded)
                styled = alpha * styled + (1 - alpha) * self.net.mix(tokens, pos, own_style)
            return styled, tuple(grid)

    def render(self, tokens: torch.Tensor, grid: tuple[int, int], size: tuple[int, int], tile: int | None = None
               ) -> tuple[torch.Tensor, tiling.Grid | None]:
        """Tokens to an image of `size` by the CNN decoder, whole (tile None) or in tiles of `tile` px; and the
        tiles' grid."""
        patch = model_lib.PATCH
        with torch.no_grad():
            planes = self.net.planes(tokens, grid).contiguous(memory_format=torch.channels_last)
            canvas = planes.new_empty(1, 3, grid[0] * patch, grid[1] * patch)

            def process(t: tiling.Tile | None, crop: torch.Tensor) -> torch.Tensor:
                if t is None:
                    return self.net.cnn(planes)
                part = planes[..., t.y0 // patch:-(-t.y1 // patch), t.x0 // patch:-(-t.x1 // patch)]
                return self.net.cnn(part)[..., :t.y1 - t.y0, :t.x1 - t.x0]

            output, layout = tiling.feed_forward(process, canvas, tile, self.footprint())
            return output[..., :size[0], :size[1]].clamp(0, 1).contiguous(), layout

    def stylize(self, content: torch.Tensor, styles: list[torch.Tensor], weights: list[float] | None = None,
                masks: list[torch.Tensor] | None = None, alpha: float = 1.0) -> torch.Tensor:
        """`mixed_tokens` rendered whole: the stylized content (1×3×H×W)."""
        tokens, grid = self.mixed_tokens(content, styles, weights, masks, alpha)
        return self.render(tokens, grid, content.shape[-2:])[0]


@functools.lru_cache(maxsize=2)
def footprint(net: nn.Module) -> tiling.Footprint:
    """The CNN decoder's, which is what tiles: stride one patch, its receptive field in tokens times the patch,
    and its activation bytes per output pixel (measured on a probe)."""
    patch = model_lib.PATCH

    def probe(x: torch.Tensor) -> torch.Tensor:
        planes = x.new_zeros(1, net.cfg.dim, x.shape[-2] // patch, x.shape[-1] // patch)
        return net.cnn(planes.contiguous(memory_format=torch.channels_last))

    field = tiling.receptive_field(tiling.leaves(net.cnn)) * patch
    return tiling.Footprint(patch, field, tiling.inference_bytes_per_pixel(net.cnn, probe))


def validate(opts: TransformerOptions) -> None:
    shared.check_feed_forward(opts, MIN_SIZE)
    if not 0.0 <= opts.alpha <= 1.0:
        raise ConfigError("--alpha must be between 0 and 1")


def _encoded_styles(stylizer: TransformerStylizer, prep: shared.Prepared, size: tuple[int, int],
                    opts: TransformerOptions, temporal: Temporal | None) -> list[torch.Tensor]:
    """The styles' tokens, from styles at the thumbnail's scale (so a large output attends to at most a
    thumbnail's worth of style tokens); once per clip in a video."""
    def encode() -> list[torch.Tensor]:
        thumb_size = shared.thumbnail_size(size, opts.thumbnail, MIN_SIZE)
        prep.check_style_pass(thumb_size, lambda s: stylizer.token_bytes(s, 0), stylizer.device)
        return [stylizer.encode_style(s) for s in prep.styles_at(thumb_size)]

    return temporal.once("transformer.codes", encode) if temporal is not None else encode()


def _stylize_large(stylizer: TransformerStylizer, codes: list[torch.Tensor], prep: shared.Prepared,
                   size: tuple[int, int], opts: TransformerOptions) -> tuple[torch.Tensor, dict]:
    """The token stage over the whole image, then the CNN decoder whole or in tiles (--tile, or the memory
    guard's choice); below alpha 1 the content's own style tokens come from the thumbnail, as the styles' do."""
    thumb_size = shared.thumbnail_size(size, opts.thumbnail, MIN_SIZE)
    held = stylizer.token_bytes(size, len(codes))
    tile = tiling.decide(opts.tile, *size, stylizer.footprint(), stylizer.device, held=held)
    own = prep.work_at(thumb_size) if thumb_size != size else None  # encode_style pads it to the patch stride
    tokens, grid = stylizer.mixed_tokens(prep.work_at(size), codes, prep.blend, prep.masks_at(size), opts.alpha,
                                         own)
    resources.release_freed_memory()  # the token stage's buffers, before the full-size decoder runs
    output, layout = stylizer.render(tokens, grid, size, tile)
    return output, shared.large_image_details(size, thumb_size, layout)


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
    details: dict = {"model": model}
    if opts.runtime == "onnx":
        encoded = time.perf_counter()
        output, device, backbone = adain.run_onnx(model, prep, size, opts)
    else:
        stylizer = TransformerStylizer(model, opts.device)
        codes = _encoded_styles(stylizer, prep, size, opts, temporal)
        encoded = time.perf_counter()
        output, large = _stylize_large(stylizer, codes, prep, size, opts)
        details.update(large)
        device, backbone = str(stylizer.device), stylizer.metadata.get("backbone")
    output = prep.finish(output)
    if temporal is not None:
        output = temporal.blend_previous(output)
    seconds = shared.phase_seconds(started, setup, encoded, time.perf_counter())
    return Result(output, opts, seconds, backbone=backbone, device=device, details=details)


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
    loop.check_loss_weights(content_weight=opts.content_weight, style_weight=opts.style_weight,
                            identity_pixels=opts.identity_pixels, identity_features=opts.identity_features)
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
