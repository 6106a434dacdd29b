"""The `adain` method (Huang & Belongie 2017): any style in one forward pass. Encode content and style, give the
content features the style's channel statistics, decode. Alpha trades style for content, blends mix the AdaIN
targets of several styles, and masks apply each style's statistics to its own region. Training the decoder
(`brushwork train adain`) runs the paper's losses on photos and paintings in the shared loop."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import ConfigError, WeightsError
from ..lazy import lazy
from ..options import option
from .base import (IMAGE_AXES, Callback, ExportSignature, FeedForwardOptions, MethodSpec, Models, Result, Temporal,
                   Training, register_method)

if TYPE_CHECKING:
    from ..train.loop import TrainConfig, TrainTask
    from .adain_model import AdaINNet

np = lazy("numpy")
torch = lazy("torch")
F = lazy("torch.nn.functional")
data = lazy("brushwork.train.data")
io = lazy("brushwork.io")
loop = lazy("brushwork.train.loop")
model_lib = lazy("brushwork.methods.adain_model")
resources = lazy("brushwork.resources")
tiling = lazy("brushwork.tiling")
runtime = lazy("brushwork.runtime")
shared = lazy("brushwork.methods.prepare")
weights_io = lazy("brushwork.weights")

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
PRETRAINED = {"adain-vgg16-hed": MODELS_DIR / "adain-vgg16-hed.safetensors"}
DEFAULT_MODEL = "adain-vgg16-hed"
MIN_SIZE = 32  # the VGG encoder's smallest input


@dataclass
class AdaINOptions(FeedForwardOptions):
    """Every knob of the adain method."""

    model: str = option(DEFAULT_MODEL, "a decoder: a shipped name or a file from `brushwork train adain`")
    weights: str | None = option(None, "weights file for the encoder")
    alpha: float = option(1.0, "style strength from 0 (content) to 1 (full style)")


def shipped_models() -> dict[str, Path]:
    """The decoders this version names, by name; a file may be absent when the decoder is not shipped yet."""
    return dict(PRETRAINED)


def resolve_named(model: str, pretrained: dict[str, Path], method: str, what: str) -> Path:
    """A shipped model's file by name (a WeightsError when it does not ship yet), or a path to one trained with
    `brushwork train METHOD`; `what` the model is, in words."""
    if model in pretrained:
        if not pretrained[model].is_file():
            raise WeightsError(f"the {model} {what} is not shipped in this version (it needs GPU training): give "
                               f"the path of a {what} trained with `brushwork train {method}` in its place (to "
                               f"stylize: --model PATH)")
        return pretrained[model]
    path = Path(model)
    if not path.is_file():
        raise WeightsError(f"unknown {method} model '{model}': not a shipped name ({', '.join(pretrained)}) or a "
                           f"file")
    return path


def resolve_model(model: str) -> Path:
    """A shipped decoder's file by name, or a path to one trained with `brushwork train adain`."""
    return resolve_named(model, PRETRAINED, "adain", "decoder")


@functools.lru_cache(maxsize=2)
def load_net(path: str, weights: str | None = None) -> AdaINNet:
    """The encoder named in the decoder file's metadata with the trained decoder loaded, frozen for inference."""
    tensors, meta = weights_io.read_safetensors(path)
    attention = any(k.startswith("attention.") for k in tensors)
    net = model_lib.AdaINNet(meta.get("backbone", "vgg16-hed"), weights, attention=attention)
    model_lib.load_decoder(net.decoder, tensors, str(path))
    return net.for_inference()


class AdaINStylizer:
    """Reusable inference: encode a style once with `encode_style`, then stylize many contents with it."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", weights: str | None = None):
        self.device = resources.resolve_device(device)
        # channels-last convolutions measured 20% faster for this network on CPU (bench/RESULTS.md)
        self.net = load_net(str(resolve_model(model)), weights).to(self.device, memory_format=torch.channels_last)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad for the encoder's stride so the decoder returns at least the input's size."""
        return io.pad_for_stride(x, self.net.stride)

    def encode_style(self, style: torch.Tensor) -> torch.Tensor:
        """AdaIN-layer features of a style image (1×3×H×W in [0,1]); any size."""
        with torch.no_grad():
            return self.net.encode(style.to(self.device, memory_format=torch.channels_last))[self.net.layer]

    def _small_masks(self, masks: list[torch.Tensor], fc: torch.Tensor) -> list[torch.Tensor]:
        return [F.interpolate(self._pad(m.to(self.device)), size=fc.shape[-2:], mode="area") for m in masks]

    def _encode_content(self, content: torch.Tensor) -> torch.Tensor:
        padded = self._pad(content.to(self.device)).contiguous(memory_format=torch.channels_last)
        return self.net.encode(padded)[self.net.layer]

    @staticmethod
    def _stats(fc: torch.Tensor, small_masks: list[torch.Tensor] | None) -> list[tuple]:
        return [model_lib.feature_stats(fc, m) for m in small_masks or [None]]

    def content_stats(self, content: torch.Tensor, masks: list[torch.Tensor] | None = None) -> list[tuple]:
        """The content's AdaIN statistics (mean, std): one pair per mask, or one for the whole image."""
        with torch.no_grad():
            fc = self._encode_content(content)
            return self._stats(fc, self._small_masks(masks, fc) if masks else None)

    def stylize(self, content: torch.Tensor, styles: list[torch.Tensor], weights: list[float] | None = None,
                masks: list[torch.Tensor] | None = None, alpha: float = 1.0, stats: list[tuple] | None = None,
                smooth: Callable[[list[tuple]], list[tuple]] | None = None) -> torch.Tensor:
        """Decode the AdaIN target of `content` for encoded `styles` (from encode_style): a weighted blend, or
        with masks (1×1×H×W, the content's size) each style on its own region. `stats` (from content_stats)
        replaces the content's own statistics: those of the whole image when `content` is one tile of it;
        `smooth` transforms the content's own (a video smooths them over a shot)."""
        with torch.no_grad():
            h, w = content.shape[-2:]
            fc = self._encode_content(content)
            small = self._small_masks(masks, fc) if masks else None
            if stats is None:
                stats = self._stats(fc, small)
                stats = smooth(stats) if smooth is not None else stats
            if small:
                total = sum(small).clamp_min(1e-6)
                target = sum(m / total * model_lib.adain(fc, fs, content_stats=st)
                             for m, fs, st in zip(small, styles, stats))
            else:
                weights = weights or [1 / len(styles)] * len(styles)
                target = sum(wt * model_lib.adain(fc, fs, content_stats=stats[0]) for wt, fs in zip(weights, styles))
            out = self.net.decoder(alpha * target + (1 - alpha) * fc)
            return out[..., :h, :w].clamp(0, 1).contiguous()

    def footprint(self) -> tiling.Footprint:
        """What tiling needs: the encoder–decoder's stride, receptive field and activation bytes per pixel."""
        return _footprint(self.net)


@functools.lru_cache(maxsize=2)
def _footprint(net: AdaINNet) -> tiling.Footprint:
    """Measured once per network (by probe passes): a video asks for it with every frame."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        return net.decoder(net.encode(io.pad_for_stride(x, net.stride))[net.layer])
    modules = tiling.leaves(net.encoder) + tiling.leaves(net.decoder)
    return tiling.Footprint(net.stride, tiling.receptive_field(modules), tiling.inference_bytes_per_pixel(net, forward))


def validate(opts: AdaINOptions) -> None:
    shared.check_feed_forward(opts, MIN_SIZE)
    if not 0.0 <= opts.alpha <= 1.0:
        raise ConfigError("--alpha must be between 0 and 1")


def run_onnx(model: str, prep: shared.Prepared, size: tuple[int, int], opts: AdaINOptions
             ) -> tuple[torch.Tensor, str, str | None]:
    """An exported (content, style, alpha) graph through onnxruntime at `size`: adain's, gan's or the
    transformer's. The graph's own activations are not counted, so the memory check is only a floor."""
    if len(prep.styles) > 1 or prep.masks:
        raise ConfigError("an exported model takes one style image: blends and masks need --runtime torch")
    tiling.check_full_size(*size, torch.device("cpu"), held=tiling.IMAGE_BYTES_PER_PIXEL * prep.style_pixels(size))
    session = runtime.onnx_session(model, opts.device, EXPORT.names)
    output = session.run(None, {"content": prep.work_at(size).numpy(), "style": prep.styles_at(size)[0].numpy(),
                                "alpha": np.array(opts.alpha, dtype=np.float32)})[0]
    return torch.from_numpy(output), "onnxruntime", runtime.read_metadata(model).get("backbone")


def _smoother(temporal: Temporal | None) -> Callable[[list[tuple]], list[tuple]] | None:
    """A video's smoothing of the content statistics over a shot, one moving average per statistic."""
    if temporal is None:
        return None
    return lambda stats: [(temporal.smooth(f"adain.mean{i}", mean), temporal.smooth(f"adain.std{i}", std))
                          for i, (mean, std) in enumerate(stats)]


def _stylize_whole_or_tiled(stylizer: AdaINStylizer, codes: list[torch.Tensor], style_pixels: int,
                            prep: shared.Prepared, size: tuple[int, int], opts: AdaINOptions,
                            temporal: Temporal | None = None) -> tuple[torch.Tensor, dict]:
    """The whole image in one pass, or tile by tile; either way the content statistics are the whole image's,
    from a thumbnail when the image is larger than --thumbnail (URST's thumbnail normalization), and in a video
    smoothed over the frames of a shot. `style_pixels`: the largest style image encoded, a pass the memory
    estimate counts."""
    thumb_size = shared.thumbnail_size(size, opts.thumbnail, MIN_SIZE)
    fp = stylizer.footprint()
    tile = tiling.decide(opts.tile, *size, fp, stylizer.device, max(thumb_size[0] * thumb_size[1], style_pixels))
    work, masks = prep.work_at(size), prep.masks_at(size)
    smooth = _smoother(temporal)
    if tile is None and thumb_size == size:  # the whole image is its own thumbnail
        return stylizer.stylize(work, codes, prep.blend, masks, opts.alpha, smooth=smooth), {}
    thumb, thumb_masks = prep.work_at(thumb_size), prep.masks_at(thumb_size)
    stats = stylizer.content_stats(thumb, thumb_masks)
    stats = smooth(stats) if smooth is not None else stats

    def process(tile: tiling.Tile | None, crop: torch.Tensor) -> torch.Tensor:
        crop_masks = [tile.crop(m) for m in masks] if tile is not None and masks is not None else masks
        return stylizer.stylize(crop, codes, prep.blend, crop_masks, opts.alpha, stats)

    def thumbnail_pass() -> torch.Tensor:
        return stylizer.stylize(thumb, codes, prep.blend, thumb_masks, opts.alpha, stats)

    with model_lib.attention_memory(stylizer.net.decoder, thumbnail_pass):
        output, grid = tiling.feed_forward(process, work, tile, fp)
    return output, shared.large_image_details(size, thumb_size, grid)


def _encoded_styles(stylizer: AdaINStylizer, prep: shared.Prepared, size: tuple[int, int], opts: AdaINOptions,
                    temporal: Temporal | None) -> tuple[list[torch.Tensor], int]:
    """The styles' AdaIN-layer features at the thumbnail's scale, like the content's (a 4K style needs no 4K
    pass), and the largest style's pixel count; once per clip in a video."""
    def encode() -> tuple[list[torch.Tensor], int]:
        thumb_size = shared.thumbnail_size(size, opts.thumbnail, MIN_SIZE)
        per_pixel = stylizer.footprint().bytes_per_pixel
        prep.check_style_pass(thumb_size, lambda s: int(per_pixel * s[0] * s[1]), stylizer.device)
        styles = prep.styles_at(thumb_size)
        return [stylizer.encode_style(s) for s in styles], max(s.shape[-2] * s.shape[-1] for s in styles)

    return temporal.once("adain.codes", encode) if temporal is not None else encode()


def run(content: torch.Tensor, styles: list[torch.Tensor], opts: AdaINOptions,
        masks: list[torch.Tensor] | None = None, callback: Callback | None = None,
        temporal: Temporal | None = None) -> Result:
    """Stylize `content` (1×3×H×W in [0,1]) in one pass, or tile by tile for large images; see AdaINOptions. In a
    video (`temporal`), the styles are encoded once per clip, the content statistics are smoothed over the shot,
    and the output leans on the warped previous one where the flow holds."""
    validate(opts)
    return stylize_with(SPEC, resolve_model(opts.model), content, styles, opts, masks, temporal)


def stylize_with(spec: MethodSpec, model_file: Path, content: torch.Tensor, styles: list[torch.Tensor],
                 opts: AdaINOptions, masks: list[torch.Tensor] | None = None, temporal: Temporal | None = None
                 ) -> Result:
    """What `run` does, for any method whose model is an encoder–decoder of this design (adain, and gan's
    generator): `spec` checks the inputs, `model_file` holds the decoder."""
    started = time.perf_counter()
    prep = shared.prepare(spec, opts, content, styles, masks)
    size = shared.output_size(content, opts.size, MIN_SIZE, "encoder")
    model = str(model_file)
    setup = time.perf_counter()
    details: dict = {"model": model}
    if opts.runtime == "onnx":
        encoded = time.perf_counter()
        output, device, backbone = run_onnx(model, prep, size, opts)
    else:
        stylizer = AdaINStylizer(model, opts.device, opts.weights)
        codes, style_pixels = _encoded_styles(stylizer, prep, size, opts, temporal)
        encoded = time.perf_counter()
        output, large = _stylize_whole_or_tiled(stylizer, codes, style_pixels, prep, size, opts, temporal)
        details.update(large)
        device, backbone = str(stylizer.device), stylizer.net.backbone_name
    output = prep.finish(output)
    if temporal is not None:
        output = temporal.blend_previous(output)
    seconds = shared.phase_seconds(started, setup, encoded, time.perf_counter())
    return Result(output, opts, seconds, backbone=backbone, device=device, details=details)


def photo_and_painting_crops(content_dir: str, style_dir: str, cfg: TrainConfig) -> dict[str, data.RandomCrops]:
    """The batch entries "content" and "style": random crops of the photos and of the paintings."""
    crops = [data.RandomCrops.of_folder(folder, cfg.size, cfg.short_side, cfg.seed + i)
             for i, folder in enumerate((content_dir, style_dir))]
    return dict(zip(("content", "style"), crops))


def adain_task(content_dir: str, style_dir: str, cfg: TrainConfig, backbone: str = "vgg16-hed",
               style_weight: float = 10.0, weights: str | None = None) -> TrainTask:
    """A TrainTask for the AdaIN decoder of `backbone`, with random crops of both image folders."""
    loop.check_loss_weights(style_weight=style_weight)
    net = model_lib.AdaINNet(backbone, weights, seed=cfg.seed)
    datasets = photo_and_painting_crops(content_dir, style_dir, cfg)
    metadata = {"method": "adain", "backbone": backbone, "layer": net.layer, "style_weight": str(style_weight),
                "format": "brushwork-adain-decoder/1"}
    return loop.TrainTask("adain", model_lib.AdaINTraining(net, style_weight), net.decoder, datasets,
                     {"adain": (net.decoder, metadata)})


@dataclass
class AdaINTrainOptions:
    """`brushwork train adain`'s own options (the loop's are TrainConfig)."""

    content_dir: str = option(help="photos, read recursively")
    style_dir: str = option(help="paintings, read recursively")
    backbone: str = option("vgg16-hed", "the frozen encoder")
    weights: str | None = option(None, "weights file for the encoder")
    style_weight: float = option(10.0, "style loss weight (paper: 10)")


def _train_task(opts: AdaINTrainOptions, cfg: TrainConfig) -> TrainTask:
    return adain_task(opts.content_dir, opts.style_dir, cfg, opts.backbone, opts.style_weight, opts.weights)


def _export_example() -> tuple[torch.Tensor, ...]:
    return torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.tensor(1.0)


EXPORT = ExportSignature(("content", "style", "alpha"), _export_example,
                         {"content": IMAGE_AXES, "style": {0: "style_batch", 2: "style_height", 3: "style_width"},
                          "output": IMAGE_AXES})
SPEC = register_method(MethodSpec(
    "adain", "Huang & Belongie 2017: any style in one pass (AdaIN + trained decoder)", AdaINOptions,
    {"default": {}}, run,
    models=Models(shipped=shipped_models, resolve=resolve_model, load=load_net, signature=EXPORT),
    training=Training("train an AdaIN decoder on folders of photos and paintings", AdaINTrainOptions, _train_task)))
