"""The `fast` method (Johnson et al. 2016): one trained transformation network per style, one forward pass per
image. Models are safetensors files with their recipe in the metadata: shipped ones by name, or any trained with
`brushwork train fast`.

Training runs perceptual losses on a frozen backbone in the shared loop. Several styles train together in one task:
every step sends one batch of photos through each style's network and all the outputs through the loss network as
one large batch, which keeps a GPU busy where one small network alone would leave it idle. Each network sees only
its own loss, so this is the same as training them one by one."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, WeightsError
from ..lazy import lazy
from ..options import label, option
from .base import (IMAGE_AXES, Callback, Capabilities, ExportSignature, FeedForwardOptions, MethodSpec, Models,
                   Result, Temporal, Training, register_method)

if TYPE_CHECKING:
    from torch import nn

    from ..train.loop import TrainConfig, TrainTask
    from .gan import CriticSettings

torch = lazy("torch")
data = lazy("brushwork.train.data")
gan = lazy("brushwork.methods.gan")
io = lazy("brushwork.io")
loop = lazy("brushwork.train.loop")
model_lib = lazy("brushwork.methods.fast_model")
resources = lazy("brushwork.resources")
runtime = lazy("brushwork.runtime")
tiling = lazy("brushwork.tiling")
shared = lazy("brushwork.methods.prepare")
weights_io = lazy("brushwork.weights")

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
PREFIX = "fast-"
FORMAT = "brushwork-fast/1"  # a model file's layout; a later one names its own
MAX_WIDTH = 256  # channels of a transform network's first layer; trained ones have 32
MIN_SIZE = 8  # the transform network's smallest input: its reflection pads at full and at quarter resolution


def shipped_models() -> dict[str, Path]:
    """Shipped fast models by style name (brushwork/models/fast-NAME.safetensors)."""
    return {p.stem[len(PREFIX):]: p for p in sorted(MODELS_DIR.glob(f"{PREFIX}*.safetensors"))}


@dataclass
class FastOptions(FeedForwardOptions):
    """Every knob of the fast method; the style lives in the model."""

    model: str | None = option(None, "a style model: a shipped name or a file from `brushwork train fast`")


def resolve_model(model: str | None) -> Path:
    shipped = shipped_models()
    if model is None:
        names = ", ".join(shipped) or "none ship in this version"
        raise ConfigError(f"--method fast needs --model: a shipped style ({names}) or a file from "
                          f"`brushwork train fast`")
    if model in shipped:
        return shipped[model]
    path = Path(model)
    if not path.is_file():
        names = ", ".join(shipped) or "none ship in this version"
        raise WeightsError(f"unknown fast model '{model}': not a shipped style ({names}) or a file")
    return path


@functools.lru_cache(maxsize=4)
def load_net(path: str) -> tuple[torch.nn.Module, dict[str, str]]:
    """The network a model file describes (its `arch` and `width` metadata), with its weights, frozen."""
    tensors, meta = weights_io.read_safetensors(path)
    method, fmt = meta.get("method", "fast"), meta.get("format", FORMAT)
    if method != "fast":
        raise WeightsError(f"{path} holds a model of the {method} method, not of fast")
    if fmt != FORMAT:
        raise WeightsError(f"{path} is in format {fmt}, which this version does not read ({FORMAT})")
    arch = meta.get("arch", "classic")
    if arch not in model_lib.ARCHS:
        raise WeightsError(f"{path} is a '{arch}' fast network, which this version does not know")
    width = meta.get("width", "32")
    if not (width.isdecimal() and 1 <= int(width) <= MAX_WIDTH):  # checked before a network that wide is built
        raise WeightsError(f"{path} says its network is {width!r} channels wide: not a width of 1 to {MAX_WIDTH}")
    net = model_lib.build_net(arch, int(width))
    weights_io.load_strict(net, tensors, path, f"the fast {arch} network")
    return net.eval().requires_grad_(False), meta


@functools.lru_cache(maxsize=4)
def footprint(net: nn.Module) -> tiling.Footprint:
    """What tiling needs: the network's stride, receptive field and activation bytes per pixel."""
    per_pixel = tiling.inference_bytes_per_pixel(net, net)
    return tiling.Footprint(model_lib.STRIDE, tiling.receptive_field(tiling.leaves(net)), per_pixel)


def _stylize_whole_or_tiled(net: nn.Module, prep: shared.Prepared, size: tuple[int, int], opts: FastOptions,
                            device: torch.device, temporal: Temporal | None = None) -> tuple[torch.Tensor, dict]:
    """The whole image in one pass, or tile by tile; either way every instance norm uses the whole image's
    statistics, from a thumbnail when it is larger than --thumbnail, and in a video smoothed over the shot."""
    net = net.to(device)
    thumb_size = shared.thumbnail_size(size, opts.thumbnail, MIN_SIZE)
    fp = footprint(net)
    tile = tiling.decide(opts.tile, *size, fp, device, thumb_size[0] * thumb_size[1])
    work = prep.work_at(size).to(device)
    with torch.no_grad():
        if tile is None and thumb_size == size and temporal is None:  # the whole image is its own thumbnail
            return net(work), {}
        smooth = temporal.smooth if temporal is not None else None
        with model_lib.thumbnail_norm(net, prep.work_at(thumb_size).to(device), smooth) as thumb_output:
            if tile is None and thumb_size == size:
                return thumb_output, {}
            output, grid = tiling.feed_forward(lambda t, crop: net(crop), work, tile, fp)
    return output, shared.large_image_details(size, thumb_size, grid)


def run(content: torch.Tensor, styles: list[torch.Tensor], opts: FastOptions,
        masks: list[torch.Tensor] | None = None, callback: Callback | None = None,
        temporal: Temporal | None = None) -> Result:
    """Stylize `content` (1×3×H×W in [0,1]) with a trained per-style network, tile by tile for large images. In a
    video (`temporal`) the instance-norm statistics are smoothed over the shot and the output leans on the warped
    previous one where the flow holds."""
    shared.check_feed_forward(opts, MIN_SIZE)
    started = time.perf_counter()
    prep = shared.prepare(SPEC, opts, content, styles, masks)
    device = resources.resolve_device(opts.device)
    path = resolve_model(opts.model)
    size = shared.output_size(content, opts.size, MIN_SIZE)
    details: dict = {"model": str(path)}
    if opts.runtime == "onnx":
        tiling.check_full_size(*size, device)
        session = runtime.onnx_session(str(path), opts.device, EXPORT.names)
        output = torch.from_numpy(session.run(None, {"image": prep.work_at(size).numpy()})[0])
        meta = runtime.read_metadata(path)
    else:
        net, meta = load_net(str(path))
        output, large = _stylize_whole_or_tiled(net, prep, size, opts, device, temporal)
        details.update(large)
    output = prep.finish(output)
    if temporal is not None:
        output = temporal.blend_previous(output)
    seconds = {"total": round(time.perf_counter() - started, 3)}
    return Result(output, opts, seconds, backbone=meta.get("backbone"), device=str(device),
                  details={**details, "model_metadata": meta})


@dataclass
class FastStyle:
    """One network to train: its name (the model file's stem), style image and loss weights."""

    name: str
    style: str
    content_weight: float = 1.0
    style_weight: float = 30.0
    tv_weight: float = 1.0
    style_size: int | None = None  # long side of the style image (default: the crop size)


def _style_crops(style: FastStyle, image: torch.Tensor, cfg: TrainConfig) -> data.RandomCrops:
    """Random crops of the style image at the scale its Gram matrices see it: the critic's real samples."""
    h, w = image.shape[-2:]
    if max(h, w) < cfg.size:
        raise ConfigError(f"an adversarial fast run crops {cfg.size} px from the style image, but {style.style} "
                          f"is {w}×{h} at --style-size {style.style_size or cfg.size}")
    return data.RandomCrops([Path(style.style)], cfg.size, max(cfg.size, min(h, w)), cfg.seed + 1)


def fast_task(styles: list[FastStyle], content_dir: str, cfg: TrainConfig, backbone: str = "vgg16-hed",
              arch: str = "classic", weights: str | None = None, adversary: CriticSettings | None = None,
              layers: str = "backbone") -> TrainTask:
    """A TrainTask for one or more style images, one `arch` network each; each style's Gram matrices are computed
    once, at its `style_size` on the long side. With `adversary`, one style's network also trains against a
    critic that has seen crops of its style image."""
    names = [s.name for s in styles]
    if not styles or len(set(names)) != len(names):
        raise ConfigError(f"fast training needs styles with distinct names, got {names}")
    if adversary is not None and len(styles) > 1:
        raise ConfigError("--adv-weight trains one style at a time: its critic learns that one painting")
    for s in styles:
        loop.check_loss_weights(content_weight=s.content_weight, style_weight=s.style_weight, tv_weight=s.tv_weight)
        if s.style_size is not None and s.style_size < 1:
            raise ConfigError(f"--style-size must be a positive number of pixels, not {s.style_size}")
    images, nets = {}, {}
    for i, s in enumerate(styles):
        image = io.load_image(s.style)
        images[s.name] = io.resize(image, io.fit_long_side(*image.shape[-2:], s.style_size or cfg.size))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + i)  # the initial weights are part of what a training seed reproduces
            nets[s.name] = model_lib.build_net(arch)
    weights_by_style = {s.name: (s.content_weight, s.style_weight, s.tv_weight) for s in styles}
    datasets = {"content": data.RandomCrops.of_folder(content_dir, cfg.size, cfg.short_side, cfg.seed)}
    opponent, extra = None, {}
    if adversary is not None:
        adversary.check(cfg.size)
        opponent = adversary.build(cfg.seed)
        datasets["style"] = _style_crops(styles[0], images[styles[0].name], cfg)
        extra = adversary.metadata()
    held = (opponent.critic, adversary.gan_loss, adversary.adv_weight) if opponent is not None else None
    module = model_lib.FastTraining(nets, images, weights_by_style, backbone, weights, held, layers)
    exports = {}
    for s in styles:
        exports[s.name] = (nets[s.name], {
            "method": "fast", "arch": arch, "backbone": backbone, "layers": layers, "style": str(s.style),
            "width": "32", "content_weight": str(s.content_weight), "style_weight": str(s.style_weight),
            "tv_weight": str(s.tv_weight), "style_size": str(s.style_size or cfg.size), **extra,
            "format": FORMAT})
    if len(styles) == 1:  # a single run keeps the historical file name RUN/fast.safetensors
        exports = {"fast": exports[styles[0].name]}
    return loop.TrainTask("fast", module, module.nets, datasets, exports, opponent)


@dataclass
class FastTrainOptions:
    """`brushwork train fast`'s own options (the loop's are TrainConfig)."""

    style: list[str] = option(help="the style image; several train together, one network each, in "
                                   "RUN/NAME.safetensors", nargs="+")
    content_dir: str = option(help="photos, read recursively")
    arch: str = option("classic", "classic (Johnson et al.) | mobile (CPU real time)")
    backbone: str = option("vgg16-hed", "the frozen loss network")
    layers: str = option("backbone", "the loss network's layers: backbone (the style layers and weights of the "
                                     "optimize method's default) | johnson (the paper's, weighted equally)")
    weights: str | None = option(None, "weights file for the loss network")
    style_size: int | None = option(None, "long side of the style image (default: --size)")
    content_weight: float = option(1.0, "content loss weight")
    style_weight: float = option(30.0, "style loss weight, relative to content (bench/TUNING.md, findings 27 "
                                       "and 30)")
    tv_weight: float = option(1.0, "total variation loss weight")
    adv_weight: float = option(0.0, "train against the gan method's critic, which sees crops of the style image: "
                                    "the adversarial gradient relative to the style term's (0 = no critic)")
    gan_loss: str = option("wgan-gp", "with --adv-weight: wgan-gp | hinge | lsgan")
    critic_lr: float = option(4e-4, "with --adv-weight: the critic's Adam learning rate")
    critic_steps: int = option(1, "with --adv-weight: critic updates per network step")
    critic_width: int = option(64, "with --adv-weight: channels of the critic's first layer")
    scales: int = option(3, "with --adv-weight: image-pyramid scales the critic judges")
    gp_weight: float | None = option(None, "with --adv-weight: gradient penalty weight (default: 10 with wgan-gp)")


def _train_task(opts: FastTrainOptions, cfg: TrainConfig) -> TrainTask:
    styles = [FastStyle(Path(p).stem, p, opts.content_weight, opts.style_weight, opts.tv_weight, opts.style_size)
              for p in opts.style]
    if not opts.adv_weight:  # the critic's settings with no critic: a forgotten --adv-weight
        own = {f.name: f for f in dataclasses.fields(opts)}
        given = [own[f.name] for f in dataclasses.fields(gan.CriticSettings)
                 if f.name != "adv_weight" and getattr(opts, f.name) != own[f.name].default]
        if given:
            raise ConfigError(f"{label(given[0])} sets up the critic, which trains only with --adv-weight above 0")
    adversary = gan.CriticSettings.of(opts) if opts.adv_weight else None
    return fast_task(styles, opts.content_dir, cfg, opts.backbone, opts.arch, opts.weights, adversary,
                     opts.layers)


def _network(path: str) -> nn.Module:
    return load_net(path)[0]


def _export_example() -> tuple[torch.Tensor, ...]:
    return (torch.rand(1, 3, 64, 64),)


EXPORT = ExportSignature(("image",), _export_example, {"image": IMAGE_AXES, "output": IMAGE_AXES})
SPEC = register_method(MethodSpec(
    "fast", "Johnson et al. 2016: one trained network per style, one pass", FastOptions, {"default": {}}, run,
    Capabilities(styles=False, masks=False, color_modes=("luminance",)),
    models=Models(shipped=shipped_models, resolve=resolve_model, load=_network, signature=EXPORT),
    training=Training("train per-style networks (Johnson et al.), one per style image", FastTrainOptions,
                      _train_task, loop_defaults={"batch_size": 4})))
