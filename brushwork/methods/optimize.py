"""Optimization-based style transfer (Gatys, Ecker & Bethge 2016): optimize the pixels of an image so its deep
features match the content image's and its feature statistics match the style's, coarse to fine."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from typing import TYPE_CHECKING, Callable

from .. import signals
from ..errors import ConfigError, DivergenceError, Interrupted, SizeError
from ..lazy import lazy
from ..options import option
from .base import Callback, CommonOptions, MethodSpec, Result, Step, Temporal, register_method

if TYPE_CHECKING:
    from ..backbones import Backbone

torch = lazy("torch")
F = lazy("torch.nn.functional")
backbones = lazy("brushwork.backbones")
color = lazy("brushwork.color")
io = lazy("brushwork.io")
losses = lazy("brushwork.losses")
picture = lazy("brushwork.methods.picture")
resources = lazy("brushwork.resources")
resume = lazy("brushwork.methods.resume")
shared = lazy("brushwork.methods.prepare")
tiling = lazy("brushwork.tiling")

INITS = ("content", "recolored", "noise", "style")
MAX_SCALES = 1000  # more is a typo: at --scale-factor 1.01, 1,000 scales already span 20,000 times the size
LBFGS_HISTORY = 50
# Resident bytes per byte of L-BFGS history: each step frees image-sized temporaries between the history vectors it
# keeps, and glibc's heap keeps those holes resident. At 1024×768 a full history cost 1.7× its vectors, and 1.0×
# with every large block mmapped (too slow to run that way: bench/RESULTS.md, 2026-11-27).
LBFGS_RESIDENCY = 1.5
# A loss this many times the best of the scale so far restarts L-BFGS from the best point. An uphill step of more
# than 1% is the first sign of curvature pairs gone stale (see descend): on saturated stripes at 64 px the next step
# jumped to 3× the loss, and restarting at once ended lower after 40 iterations (1.92 against 1.95). Photos at
# 160 px never rose by 1% in 60 iterations, so they run as before.
LBFGS_RESTART = 1.01
# Convolutions run 10-20% faster on CPU with channels-last activations (oneDNN's native layout: no reorders around
# each call; bench/RESULTS.md), and the Gram products read that layout without a copy. A torch memory format's name.
LAYOUT = "channels_last"
TILE_PASSES = 2  # a tiled scale runs twice over the image, the second time with its cuts moved
# A tile changes only the pixels it owns, its share ramping over 2 · OWN_FEATHER + 1 px across a cut: a blend over
# the whole overlap averaged two tiles' different strokes and left pale, smooth bands (bench/RESULTS.md); a hard
# cut left a step.
OWN_FEATHER = 2
TILE_HELD_BYTES_PER_PIXEL = 16  # a tile's crop as it was before the tile repaints it (3 floats) and its share (1)
IMAGE_BYTES_PER_PIXEL = 48  # full-size buffers besides a tile's: the image, the content, the masks and a copy


def _layout():
    return getattr(torch, LAYOUT)


@dataclass
class OptimizeOptions(CommonOptions):
    """Every knob of the optimize method; presets fill these in, explicit options override them."""

    backbone: str = option("vgg16-hed", "feature network, e.g. vgg16-hed; join several with +")
    weights: str | None = option(None, "weights file for the backbone (vgg19, vgg19-normalised)")
    content_weight: float = option(1.0, "content loss weight")
    style_weight: float = option(100.0, "style loss weight at the output size (coarser scales: see --style-ramp)")
    style_ramp: float = option(2.8, "the output scale's style weight divided by the coarsest scale's; the scales "
                                    "between step geometrically (1 = one weight for all)")
    tv_weight: float = option(1.0, "total variation loss weight")
    content_layers: list[str] | None = option(None, "comma-separated layer names (default: the backbone's)")
    style_layers: list[str] | None = option(None, "comma-separated layer names (default: the backbone's)")
    style_loss: str = option("wasserstein", "wasserstein | gram | mean_std")
    iterations: int = option(125, "iterations at the coarsest scale; each finer scale runs fewer")
    scales: int | None = option(None, "number of coarse-to-fine scales (1 = single scale; default: 2, and more "
                                      "above 1,350 px so the coarsest stays near 480 px: 3 at 2048, 4 at 3840; "
                                      "quality: at least 3, 1.41x apart)")
    scale_factor: float = option(2.0, "size ratio between scales")
    iteration_decay: float = 0.4
    min_scales: int = 2  # without --scales, at least this many (a preset's floor, not a flag)
    optimizer: str = option("lbfgs", "lbfgs | adam")
    lr: float | None = option(None, "step size (lbfgs default 1, adam default 0.02)")
    pyramid_levels: int | None = option(None, "optimize a Laplacian pyramid of N levels; 1 = raw pixels "
                                              "(default: the backbone's choice)")
    init: str = option("content", "content | recolored (the content in the style's colours) | noise | style | "
                                  "PATH")
    pooling: str = option("max", "max | avg, for VGG backbones")
    checkpoint_dir: str | None = option(None, "save progress in this folder at most once a minute (in tiles: as "
                                              "a tile ends); the same command run again continues from it")
    style_weights: dict[str, float] = field(default_factory=dict)


# The defaults come from bench/TUNING.md (findings 14, 16, 18, 20 to 22, 24 and 25): a Gaussian (W2) style loss on
# two scales gives the painting's palette and keeps straight lines straight; most iterations run at the coarse scale,
# where they are cheap. The style weight spends the structure vgg16-hed's four content layers keep on style, until
# the content distance is the classic results'; the coarse scale gets a lighter weight (the ramp), because there a
# heavy one copies line drawings' eyes into skies.
PRESETS: dict[str, dict] = {
    "default": {},
    "fast": {"backbone": "efficientnet-lite0", "optimizer": "adam", "lr": 0.01, "iterations": 200, "scales": 3,
             "style_loss": "gram", "style_weight": 3.0, "style_ramp": 1.0},
    "quality": {"iterations": 200, "min_scales": 3, "scale_factor": math.sqrt(2), "iteration_decay": 0.5},
}


COARSEST = 480  # px, the long side of the coarsest scale when --scales is not given (scale_count)


def validate(opts: OptimizeOptions) -> None:
    """Reject impossible values of optimize's own options with a message that names the option."""
    checks = [
        (opts.iterations >= 1, "--iterations must be at least 1"),
        (opts.scales is None or 1 <= opts.scales <= MAX_SCALES, f"--scales must be 1 to {MAX_SCALES}"),
        (opts.content_layers is None or opts.content_layers or opts.content_weight == 0,
         "--content-layers names no layer; leave it out for the backbone's, or set --content-weight 0 for none"),
        (opts.style_layers is None or opts.style_layers, "--style-layers names no layer; leave it out for the "
                                                         "backbone's"),
        (opts.scale_factor > 1, "--scale-factor must be greater than 1"),
        (0 < opts.iteration_decay <= 1, "iteration_decay must be in (0, 1]"),
        (opts.min_scales >= 1, "min_scales must be at least 1"),
        (opts.content_weight >= 0 and opts.style_weight >= 0 and opts.tv_weight >= 0, "loss weights must be >= 0"),
        (all(w >= 0 for w in opts.style_weights.values()), "style layer weights must be >= 0"),
        (opts.style_ramp > 0, "--style-ramp must be positive"),
        (opts.style_loss in losses.STYLE_LOSSES, f"--style-loss must be one of {', '.join(losses.STYLE_LOSSES)}"),
        (opts.optimizer in ("lbfgs", "adam"), "--optimizer must be lbfgs or adam"),
        (opts.lr is None or opts.lr > 0, "--lr must be positive"),
        (opts.pyramid_levels is None or 1 <= opts.pyramid_levels <= 12, "--pyramid-levels must be 1 to 12"),
        (opts.pooling in ("max", "avg"), "--pooling must be max or avg"),
        (opts.init in INITS or Path(opts.init).is_file(), f"--init must be {', '.join(INITS)} or an image path"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if "+" in opts.backbone and opts.weights is not None:
        raise ConfigError("--weights applies to a single backbone, not to " + opts.backbone)


def scale_count(height: int, width: int, opts: OptimizeOptions) -> int:
    """--scales, or by default enough that the coarsest scale's long side is near COARSEST px, and at least
    min_scales (2; `quality`: 3). The network sees about 76 px around each pixel at any size, so a painting's large
    forms (the starry sky's swirls) are laid out only at a scale near the preview's; finer scales add detail to that
    layout (bench/RESULTS.md, 2026-11-28: at 4K, four scales from 480 px against two from 1920 px)."""
    if opts.scales is not None:
        return opts.scales
    return max(opts.min_scales, 1 + round(math.log(max(height, width) / COARSEST, opts.scale_factor)))


def scale_schedule(height: int, width: int, opts: OptimizeOptions, min_size: int) -> list[tuple[int, int, int]]:
    """(height, width, iterations) from coarse to fine: sizes grow by scale_factor up to the target, and each finer
    (costlier) scale runs iteration_decay times the iterations of the one before."""
    sizes: list[tuple[int, int]] = []
    for i in reversed(range(scale_count(height, width, opts))):
        shrink = math.exp(-i * math.log(opts.scale_factor))  # underflows to 0 where scale_factor ** i overflows
        h, w = max(1, round(height * shrink)), max(1, round(width * shrink))
        if min(h, w) >= min_size and (h, w) not in sizes:
            sizes.append((h, w))
    if not sizes:
        raise SizeError(f"the output would be {height}×{width} px, below the backbone's minimum of {min_size} px "
                        f"on the short side; use a larger --size")
    return [(h, w, max(1, round(opts.iterations * opts.iteration_decay ** i))) for i, (h, w) in enumerate(sizes)]


def scale_style_weights(opts: OptimizeOptions, scales: int) -> list[float]:
    """The style weight of each scale, coarse to fine: --style-weight at the output size, divided by --style-ramp
    at the coarsest scale. The coarse scale lays out the picture, and a heavy style term there copies whole motifs
    of the painting (a drawing's eyes) into flat regions; at the finest scale the same weight only paints
    (bench/TUNING.md, finding 25)."""
    if scales == 1:
        return [opts.style_weight]
    return [opts.style_weight / opts.style_ramp ** ((scales - 1 - i) / (scales - 1)) for i in range(scales)]


@dataclass
class Net:
    """A backbone with the layers this run uses and their weights."""

    model: Backbone
    content_layers: list[str]
    style_layers: list[str]
    layer_weights: dict[str, float]

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(self.content_layers + self.style_layers))


def build_nets(opts: OptimizeOptions, device: torch.device) -> list[Net]:
    nets = []
    for name in opts.backbone.split("+"):
        model = backbones.create_backbone(name, opts.weights, opts.pooling).to(device, memory_format=_layout())
        content = list(opts.content_layers or model.content_layers)
        style = list(opts.style_layers or model.style_layers)
        model.check_layers(content + style)
        if opts.content_weight == 0:  # their features would cost a pass and weigh nothing
            content = []
        strays = sorted(set(opts.style_weights) - set(style)) if "+" not in opts.backbone else []
        if strays:
            raise ConfigError(f"style_weights names {', '.join(strays)}, which {'is' if len(strays) == 1 else 'are'} "
                              f"not among {name}'s style layers ({', '.join(style)})")
        weights = {n: opts.style_weights.get(n, model.style_weight(n)) for n in style}
        unweighed = [n for n in opts.style_layers or [] if weights[n] == 0 and n not in opts.style_weights]
        if unweighed:
            raise ConfigError(f"{name} weighs {', '.join(unweighed)} 0 in its default style loss (bench/TUNING.md, "
                              f"finding 22): leave it out of --style-layers, or weigh it with style_weights in the API")
        style = [n for n in style if weights[n] > 0]  # a layer that weighs nothing would cost time for no gradient
        if not style:
            raise ConfigError("at least one style layer with a weight above 0 is needed")
        nets.append(Net(model, content, style, {n: weights[n] for n in style}))
    return nets


def _working_bytes(nets: list[Net], opts: OptimizeOptions, targets: list[list[dict]], size: int, tiled: bool) -> int:
    """Memory one evaluation of the objective at size×size needs: what autograd saves for backward (the network's
    and the losses', each storage counted once), the network's share once more for the gradients in flight during
    the backward pass, and the content targets the objective holds (relu1_1's are 64 channels at full size).
    `tiled`: a tile's objective, whose style losses save the features' products over its region (picture.py)."""
    device = next(nets[0].model.parameters()).device
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    probe = torch.rand(1, 3, size, size, device=device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        for net in nets:
            net.model(probe.clone().requires_grad_(True), net.layers)
    network = sum(storages.values())
    storages.clear()
    inset = max(net.model.stride(n) for net in nets for n in net.style_layers)  # a region less than the tile:
    terms = picture.TileTerms(1.0, tiling.Tile(inset, size - inset, inset, size - inset), None, None) if tiled \
        else None  # its features are copied, as a real tile's are
    objective = Objective(nets, opts, probe, targets, [1.0], None, None, terms)
    held = sum(t.untyped_storage().nbytes() for layers in objective.content_targets for t in layers.values())
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        objective(probe.requires_grad_(True))
    return sum(storages.values()) + network + held


_PER_PIXEL: dict[tuple, float] = {}


def working_bytes_per_pixel(nets: list[Net], opts: OptimizeOptions, tiled: bool = False) -> float:
    """The slope between two small probes, so that weights and style targets, which do not grow with the image,
    do not count; of a whole scale's objective or (`tiled`) a tile's. Kept per network shape and loss: probing
    takes half a second."""
    device = next(nets[0].model.parameters()).device
    key = (device.type, opts.backbone, opts.pooling, opts.style_loss,
           tuple((tuple(net.content_layers), tuple(net.style_layers)) for net in nets), tiled)
    if key not in _PER_PIXEL:
        targets = style_targets(nets, opts, [torch.rand(1, 3, 64, 64, device=device)], [1.0], False)
        _PER_PIXEL[key] = (_working_bytes(nets, opts, targets, 128, tiled) -
                           _working_bytes(nets, opts, targets, 64, tiled)) / (128**2 - 64**2)
    return _PER_PIXEL[key]


def estimate_bytes(nets: list[Net], height: int, width: int, opts: OptimizeOptions, levels: int,
                   per_pixel: float | None = None, iterations: int | None = None) -> int:
    """Peak memory of optimizing a height × width image (a scale, or a tile of it) for `iterations` (None: enough
    to fill L-BFGS's history): the objective's working memory per pixel plus the image-sized copies: the
    optimizer's (L-BFGS: its history's two vectors per iteration up to 50, each resident LBFGS_RESIDENCY times over,
    its direction and previous gradient, the gradient it gathers and the vector it turns into the next direction;
    Adam: two moments and two temporaries) and the descent's own six (the parameter, its gradient, the best point,
    the point before the step, the clamped image and its pyramid). A tile starts a new optimizer, so its history
    never holds more than its own iterations: 25 of 50 per tile and pass in the default's tiled scales."""
    per_pixel = working_bytes_per_pixel(nets, opts) if per_pixel is None else per_pixel
    pixels = height * width
    image_bytes = 3 * 4 * pixels * (4 / 3 if levels > 1 else 1)
    history = LBFGS_HISTORY if iterations is None else min(LBFGS_HISTORY, iterations)
    copies = (2 * history * LBFGS_RESIDENCY + 4 if opts.optimizer == "lbfgs" else 4) + 6
    return int(per_pixel * pixels + copies * image_bytes)


def tile_iterations(iterations: int) -> int:
    """A tiled scale's iterations for each tile in each of its passes."""
    return max(1, round(iterations / min(TILE_PASSES, iterations)))


@dataclass
class ScalePlan:
    """One scale of the coarse-to-fine schedule: its size, its iterations, and the tile grids of its passes
    (none: the whole image at once)."""

    height: int
    width: int
    iterations: int
    grids: list[tiling.Grid] = field(default_factory=list)
    bytes: int = 0  # the memory guard's estimate of its peak

    @property
    def per_pass(self) -> int:
        """Iterations for each tile in each pass."""
        return tile_iterations(self.iterations) if self.grids else self.iterations

    @property
    def steps(self) -> int:
        return self.units * self.per_pass if self.grids else self.iterations

    @property
    def units(self) -> int:
        """What progress counts in: iterations of a whole scale, tiles (over every pass) of a tiled one."""
        return sum(len(g.tiles) for g in self.grids) if self.grids else self.iterations

    def describe(self) -> dict:
        """What the sidecar records of a tiled scale: every pass's seams, for `brushwork eval`."""
        rows = sorted({r for g in self.grids for r in g.cuts()["rows"]})
        cols = sorted({c for g in self.grids for c in g.cuts()["cols"]})
        return {**self.grids[0].layout(), "passes": len(self.grids), "tiles": [len(g.tiles) for g in self.grids],
                "iterations_per_tile": self.per_pass, "rows": rows, "cols": cols}


def plan_scales(nets: list[Net], opts: OptimizeOptions, schedule: list[tuple[int, int, int]], levels: int,
                device: torch.device, tiles: list[int] | None = None, styles: int = 1,
                prep: shared.Prepared | None = None) -> list[ScalePlan]:
    """Decide for each scale whether it runs whole or in tiles (tiling.choose), and refuse what fits neither way.
    Tiles overlap by the receptive field of the deepest layer used, and a tile writes back only what it owns, up
    to the middle of each overlap: its pixels there see what the whole image's do, not the zero padding beyond
    the cut (Grid.ownership).
    Tiles start on multiples of the deepest layer's stride, so their features lie on the whole image's pooling grid
    and the picture's statistics summed over tiles are the untiled ones (picture.py). A tiled scale runs in
    TILE_PASSES passes, each later pass with its cuts moved along by a share of the spacing between tiles.
    `tiles` fixes each scale's tile side (0: whole), as a resumed run must; `styles` counts masked styles, each
    with its own moments; `prep`, when given, has its styles checked for their targets' pass at the largest scale."""
    largest = max(schedule, key=lambda s: s[0] * s[1])
    tiling.check_full_size(largest[0], largest[1], device, IMAGE_BYTES_PER_PIXEL)  # before any tiles are planned
    field_px = max(net.model.receptive_field(n) for net in nets for n in net.layers)
    stride = max(net.model.stride(n) for net in nets for n in net.layers)
    margin = field_px // 4
    band = field_px - 2 * margin
    smallest = tiling.min_tile(margin, band, stride)
    free = resources.available_memory(device)
    per_pixel, tile_per_pixel = working_bytes_per_pixel(nets, opts), working_bytes_per_pixel(nets, opts, True)
    pass_per_pixel, moment_bytes = picture.pass_bytes_per_pixel(nets), picture.moments_bytes(nets, opts.style_loss)
    if prep is not None:
        prep.check_style_pass(largest[:2], lambda s: int(pass_per_pixel * s[0] * s[1]), device)
    plans = []
    for index, (h, w, iterations) in enumerate(schedule):
        passes = min(TILE_PASSES, iterations)

        def grids(side: int) -> list[tiling.Grid]:
            return [tiling.plan(h, w, side, margin, band, stride, (p / passes,) * 2) for p in range(passes)]

        def need(side: int | None) -> int:
            """Bytes for the whole scale (None) or its largest tile at that side, which is often smaller than
            side × side (tiling._starts), with the whole picture's moments a pass holds and the tile's crop and share
            (TILE_HELD_BYTES_PER_PIXEL)."""
            if side is None:
                return estimate_bytes(nets, h, w, opts, levels, per_pixel, iterations) + IMAGE_BYTES_PER_PIXEL * h * w
            passes = grids(side)
            th, tw = max((g.largest for g in passes), key=lambda d: d[0] * d[1])
            held = (max(len(g.tiles) for g in passes) + 2) * styles * moment_bytes + int(pass_per_pixel * th * tw)
            return (estimate_bytes(nets, th, tw, opts, levels, tile_per_pixel, tile_iterations(iterations)) + held
                    + TILE_HELD_BYTES_PER_PIXEL * th * tw + IMAGE_BYTES_PER_PIXEL * h * w)

        requested = opts.tile if tiles is None else tiles[index]
        tile = tiling.choose(requested, h, w, lambda side: need(side) <= free, smallest)
        plan = ScalePlan(h, w, iterations, bytes=need(tile))
        resources.check_fits(plan.bytes, device, f"stylizing at {w}×{h}" + (f" in {tile} px tiles" if tile else ""))
        if tile is not None:
            plan.grids = grids(tile)
        plans.append(plan)
    return plans


def _init_image(opts: OptimizeOptions, content: torch.Tensor, styles: list[torch.Tensor], blend: list[float],
                size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    if opts.init == "content":
        return io.resize(content, size)
    if opts.init == "recolored":
        return io.resize(color.match_color(content, color.color_stats(styles, blend)), size)
    if opts.init == "noise":
        return torch.rand(1, 3, *size, generator=generator).to(content.device)
    if opts.init == "style":
        return io.resize(styles[0], size)
    return io.resize(io.load_image(opts.init).to(content.device), size)


def style_targets(nets: list[Net], opts: OptimizeOptions, styles: list[torch.Tensor], blend: list[float],
                  masked: bool) -> list[list[dict]]:
    """Per backbone, the style targets of each layer: one dict per style with masks, else one blended dict.
    Computed once per scale from the whole style images, whatever part of the picture is being optimized."""
    targets = []
    with torch.no_grad():  # not inference_mode: targets such as sqrtm(cov) are saved for backward
        styles = [s.contiguous(memory_format=_layout()) for s in styles]
        for net in nets:
            per_style = []
            for style in styles:
                sf = net.model(style, net.style_layers)
                per_style.append({n: losses.style_target(sf[n], opts.style_loss) for n in net.style_layers})
            if not masked:
                per_style = [{n: losses.blend_targets([t[n] for t in per_style], blend, opts.style_loss)
                              for n in net.style_layers}]
            targets.append(per_style)
    return targets


@dataclass
class TemporalTarget:
    """A video frame's temporal term: the previous output warped onto this frame, where to trust it, its weight."""

    warped: torch.Tensor
    reliable: torch.Tensor
    weight: float

    def crop(self, tile: tiling.Tile) -> TemporalTarget:
        return TemporalTarget(tile.crop(self.warped), tile.crop(self.reliable), self.weight)


class Objective:
    """The weighted sum of content, style and TV losses at one scale, every target computed once. Given a tile's
    `terms`, it is the untiled objective seen from that tile (picture.py): style statistics of the whole picture
    with the rest held fixed, content errors against the whole picture's energy, all scaled to untiled gradients."""

    def __init__(self, nets: list[Net], opts: OptimizeOptions, content: torch.Tensor, targets: list[list[dict]],
                 blend: list[float], masks: list[torch.Tensor] | None, temporal: TemporalTarget | None = None,
                 terms: picture.TileTerms | None = None):
        self.nets, self.opts, self.masks, self.blend = nets, opts, masks, blend
        self.style_targets = targets
        self.temporal = temporal
        self.terms = terms
        self.content_targets = []
        with torch.no_grad():
            content = content.contiguous(memory_format=_layout())
            for net in nets:
                feats = net.model(content, net.content_layers)
                self.content_targets.append({n: feats[n].clone() for n in net.content_layers})
        norms = picture.content_norms(terms, self.content_targets) if terms is not None else None
        self.content_norms = norms or [{} for _ in nets]

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        opts = self.opts
        content_total = image.new_zeros(())
        style_total = image.new_zeros(())
        image = image.contiguous(memory_format=_layout())
        for i, (net, c_targets, s_targets) in enumerate(zip(self.nets, self.content_targets, self.style_targets)):
            feats = net.model(image, net.layers)
            if net.content_layers:
                content_total = content_total + sum(
                    losses.content_loss(feats[n], c_targets[n], self.content_norms[i].get(n))
                    for n in net.content_layers) / len(net.content_layers)
            norm = sum(net.layer_weights.values())
            for n in net.style_layers:
                targets = [t[n] for t in s_targets]
                if self.terms is None:
                    layer = self._style_layer(feats[n], targets)
                else:
                    layer = self._picture_style_layer(feats[n], targets, image.shape[-2:], i, n)
                style_total = style_total + net.model.style_gain * net.layer_weights[n] / norm * layer
        content_total = content_total / len(self.nets)
        style_total = style_total / len(self.nets)
        tv = losses.tv_loss(image)
        ratio = 1.0 if self.terms is None else self.terms.ratio
        total = (opts.content_weight * content_total + ratio * opts.style_weight * style_total
                 + opts.tv_weight * tv)
        parts = {"content": content_total.item(), "style": style_total.item(), "tv": tv.item()}
        if self.temporal is not None:
            temporal = losses.temporal_loss(image, self.temporal.warped, self.temporal.reliable)
            total = total + self.temporal.weight * temporal
            parts["temporal"] = temporal.item()
        return total, {"total": total.item(), **parts}

    def _style_layer(self, feat: torch.Tensor, targets: list) -> torch.Tensor:
        if self.masks is None:
            return losses.style_loss(feat, targets[0], self.opts.style_loss)
        return sum(b * losses.style_loss(feat, t, self.opts.style_loss, losses.position_weights(m, feat))
                   for b, t, m in zip(self.blend, targets, self.masks))

    def _picture_style_layer(self, feat: torch.Tensor, targets: list, size: tuple[int, int], net: int,
                             layer: str) -> torch.Tensor:
        """The style loss of the whole picture: this tile's moments over the region it owns plus the rest's."""
        kind, box = self.opts.style_loss, picture.feature_box(self.terms.box, size, feat)
        blend = self.blend if self.masks is not None else [1.0]
        total = feat.new_zeros(())
        for k, (b, t) in enumerate(zip(blend, targets)):
            own = picture.region_moments(feat, box, kind, self.terms.weight(net, k, layer, feat))
            whole = own if self.terms.rest is None else self.terms.rest[net][k][layer] + own
            total = total + b * losses.moments_style_loss(whole, t, kind)
        return total


def to_pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian-pyramid parameters (finest residual first, coarse image last) with from_pyramid(p) == image.
    Optimizing these instead of pixels gives low frequencies large steps and pixel noise small ones, which is
    what makes backbones with fragile, adversarially sensitive features (EfficientNet) usable here."""
    sizes = [tuple(image.shape[-2:])]
    while len(sizes) < levels and min(sizes[-1]) >= 8:
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    gaussian = [image]
    for size in sizes[1:]:
        gaussian.append(F.interpolate(gaussian[-1], size=size, mode="area"))
    residuals = [fine - _upsample(coarse, fine) for fine, coarse in zip(gaussian, gaussian[1:])]
    return [t.detach().clone() for t in residuals + gaussian[-1:]]


def _upsample(coarse: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(coarse, size=like.shape[-2:], mode="bilinear", align_corners=False)


def from_pyramid(params: list[torch.Tensor]) -> torch.Tensor:
    """The image that pyramid parameters stand for."""
    image = params[-1]
    for residual in reversed(params[:-1]):
        image = _upsample(image, residual) + residual
    return image


def _optimizer(opts: OptimizeOptions, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    if opts.optimizer == "adam":
        return torch.optim.Adam(params, lr=opts.lr or 0.02)
    # Tolerances off: losses are relative, so per-pixel gradients are tiny, and we count iterations ourselves.
    return torch.optim.LBFGS(params, lr=opts.lr or 1.0, max_iter=1, history_size=LBFGS_HISTORY,
                             tolerance_grad=0.0, tolerance_change=0.0)


def descend(objective: Objective, image: torch.Tensor, iterations: int, levels: int, opts: OptimizeOptions):
    """Optimize one scale; yields (image, losses) after every iteration. The image is parameterized by a
    Laplacian pyramid of `levels` levels (1 = raw pixels) and projected back onto [0, 1] after each step."""
    params = [p.requires_grad_(True) for p in to_pyramid(image, levels)]
    optimizer = _optimizer(opts, params)
    last: dict[str, float] = {}

    def closure():
        nonlocal last
        optimizer.zero_grad()
        loss, last = objective(from_pyramid(params))
        loss.backward()
        for p in params:
            p.grad = p.grad.contiguous()  # L-BFGS flattens gradients with view()
        return loss

    best, best_params = math.inf, params
    for _ in range(iterations):
        before = [p.detach().clone() for p in params]
        optimizer.step(closure)  # `last` is now the loss at `before`
        with torch.no_grad():
            if last["total"] <= best:
                best, best_params = last["total"], before
            elif opts.optimizer == "lbfgs" and last["total"] > LBFGS_RESTART * best:
                # The projection onto [0, 1] after each step is invisible to L-BFGS's curvature pairs; on images
                # that pin many pixels at 0 or 1 they can turn a step uphill. Go back to the best point, forget them.
                for p, q in zip(params, best_params):
                    p.copy_(q)
                optimizer = _optimizer(opts, params)
            image = from_pyramid(params).clamp(0, 1)
            for p, q in zip(params, to_pyramid(image, levels)):
                p.copy_(q)
        yield image, last


def _descend_tiled(plan: ScalePlan, objective_for: Callable[[tiling.Tile, picture.TileTerms], Objective],
                   picture_for: Callable[[tiling.Grid], picture.Picture], image: torch.Tensor, levels: int,
                   opts: OptimizeOptions, start: int = 0):
    """Optimize one scale tile by tile, pass by pass, from its `start`-th tile; yields (whole image, losses, tiles
    done) after every tile iteration, tiles done being None until a tile's result is in the image. A tile changes
    only the pixels it owns (Grid.ownership): the rest of its crop is context held where it is, as its features'
    statistics already are (picture.py), so every pixel is one tile's strokes, not an average of two, and the next
    tile starts from its neighbours' results.
    `objective_for(tile, terms)` builds a tile's objective, `picture_for(grid)` a pass's whole-picture terms. The
    image changes only between tiles, so a tile boundary is a point a stopped run resumes from exactly: each tile
    starts a new optimizer, and the picture's terms are a function of the image."""
    tiles = [(grid, i, t) for grid in plan.grids for i, t in enumerate(grid.tiles)]
    whole = None
    for k, (grid, i, t) in enumerate(tiles[start:], start):
        if whole is None or whole.grid is not grid:
            whole = picture_for(grid)
        share = grid.ownership(t, OWN_FEATHER, image.device)
        before = t.crop(image).clone()
        objective = objective_for(t, whole.terms(i, image))
        steps = descend(lambda x: objective(torch.lerp(before, x, share)), before.clone(), plan.per_pass, levels,
                        opts)
        for j, (result, last) in enumerate(steps, 1):
            if j < plan.per_pass:
                yield image, last, None
        t.crop(image).copy_(torch.lerp(before, result, share))
        whole.changed(i)
        yield image, last, k + 1


def _descend_scale(plan: ScalePlan, nets: list[Net], opts: OptimizeOptions, prep: shared.Prepared,
                   image: torch.Tensor, levels: int, temporal: Temporal | None = None, start: int = 0):
    """Optimize one scale (opts carries its style weight), whole or in tiles, from `start` units of it done, with
    the style targets of the whole picture computed once (once per clip in a video); yields (image, losses, units
    done or None) after every iteration, as _descend_tiled does. A video frame that continues a shot adds the
    temporal term."""
    size = (plan.height, plan.width)
    image = io.resize(image, size).clamp(0, 1)
    content, masks = prep.work_at(size), prep.masks_at(size)
    key = f"optimize.targets.{size[0]}x{size[1]}"
    targets = temporal.memo.get(key) if temporal is not None else None
    if targets is None:
        targets = style_targets(nets, opts, prep.styles_at(size), prep.blend, masks is not None)
        if temporal is not None:
            temporal.memo[key] = targets
    follow = None
    if temporal is not None and temporal.previous is not None:
        follow = TemporalTarget(temporal.previous.to(image.device), temporal.reliable.to(image.device),
                                temporal.temporal_weight)
    if not plan.grids:
        steps = descend(Objective(nets, opts, content, targets, prep.blend, masks, follow), image,
                        plan.iterations - start, levels, opts)
        for i, (image, last) in enumerate(steps, start + 1):
            yield image, last, i
        return

    def objective_for(t: tiling.Tile, terms: picture.TileTerms) -> Objective:
        crop_masks = [t.crop(m) for m in masks] if masks is not None else None
        return Objective(nets, opts, t.crop(content), targets, prep.blend, crop_masks,
                         follow.crop(t) if follow is not None else None, terms)

    def picture_for(grid: tiling.Grid) -> picture.Picture:
        return picture.Picture(nets, opts.style_loss, grid, content, masks, _layout())

    yield from _descend_tiled(plan, objective_for, picture_for, image, levels, opts, start)


def _video_frame_start(opts: OptimizeOptions, prep: shared.Prepared, temporal: Temporal, size: tuple[int, int]
                       ) -> torch.Tensor:
    """A frame that continues a shot starts from the previous output warped onto it, and from the usual
    initialisation where the flow is not trusted (newly visible content)."""
    fresh = _init_image(opts, prep.work, prep.styles, prep.blend, size, prep.generator)
    if opts.preserve_color == "luminance":
        fresh = color.gray(fresh)
    reliable = temporal.reliable.to(fresh.device)
    return reliable * temporal.previous.to(fresh.device) + (1 - reliable) * fresh


def _resumed(saved: tuple[resume.Progress, torch.Tensor], plans: list[ScalePlan], where: Path,
             device: torch.device) -> tuple[resume.Progress, torch.Tensor]:
    """Where a saved run begins again, and its image; a run saved as a scale ended begins the next one."""
    progress, image = saved
    if not 0 <= progress.scale < len(plans) or tuple(image.shape[-2:]) != (plans[progress.scale].height,
                                                                           plans[progress.scale].width):
        raise ConfigError(f"cannot resume from {where}: its image does not fit this run's scales; delete it to "
                          f"start afresh")
    if progress.done >= plans[progress.scale].units:
        progress = replace(progress, scale=progress.scale + 1, done=0, scale_seconds=0.0)
    return progress, image.to(device)


def _scale_record(plan: ScalePlan, style_weight: float, losses: dict[str, float], seconds: float) -> dict:
    """What the sidecar records of a finished scale."""
    return {"size": [plan.width, plan.height], "iterations": plan.iterations, "style_weight": round(style_weight, 4),
            "losses": dict(losses), "seconds": round(seconds, 3),
            **({"tiling": plan.describe()} if plan.grids else {})}


def run(content: torch.Tensor, styles: list[torch.Tensor], opts: OptimizeOptions,
        masks: list[torch.Tensor] | None = None, callback: Callback | None = None,
        temporal: Temporal | None = None) -> Result:
    """Stylize `content` (1×3×H×W in [0,1]) with `styles`; see OptimizeOptions for every option. Scales too large
    for memory (or larger than --tile) are optimized in tiles. In a video (`temporal`), a frame that continues a
    shot is optimized at the output size only, for the frame's iterations, from the warped previous output and with
    the temporal loss (Ruder et al. 2016); networks and style targets are built once per clip. With
    --checkpoint-dir the run saves its progress and continues from it: exactly at a tile boundary, and with a fresh
    L-BFGS history (a little off an unbroken run) within a whole scale."""
    validate(opts)
    if temporal is not None and opts.checkpoint_dir is not None:
        raise ConfigError("--checkpoint-dir applies to single images, not to video frames")
    started = time.perf_counter()
    device = resources.resolve_device(opts.device)
    prep = shared.prepare(SPEC, opts, content, styles, masks, device)
    checkpoint = None if opts.checkpoint_dir is None else resume.Checkpoint(
        opts.checkpoint_dir, resume.fingerprint(content, styles, masks, opts))
    saved = checkpoint.load() if checkpoint is not None else None
    nets = temporal.once("optimize.nets", lambda: build_nets(opts, device)) if temporal is not None else \
        build_nets(opts, device)
    min_size = max(net.model.min_size for net in nets)
    height, width = shared.output_size(content, opts.size, min_size, "backbone")
    levels = opts.pyramid_levels or max(net.model.pyramid_levels for net in nets)
    follows = temporal is not None and temporal.previous is not None
    schedule = [(height, width, temporal.frame_iterations)] if follows else scale_schedule(height, width, opts,
                                                                                           min_size)
    # the sidecar records the scales that ran: none below the backbone's minimum side (--scales 9 at 64 px runs 1)
    opts = replace(opts, scales=scale_count(height, width, opts) if follows else len(schedule))
    if saved is not None and len(saved[0].tiles) != len(schedule):
        raise ConfigError(f"cannot resume from {checkpoint.path}: it has {len(saved[0].tiles)} scales where this run "
                          f"has {len(schedule)}; delete it to start afresh")
    plans = plan_scales(nets, opts, schedule, levels, device, saved[0].tiles if saved is not None else None,
                        len(styles) if masks is not None else 1, prep)
    setup_seconds = time.perf_counter() - started

    tile_sides = [p.grids[0].tile if p.grids else 0 for p in plans]
    if saved is not None:
        begin, image = _resumed(saved, plans, checkpoint.path, device)
    else:
        begin = resume.Progress(scale=0, done=0, step=0, seconds=0.0, tiles=tile_sides)
        if follows:
            image = _video_frame_start(opts, prep, temporal, (height, width))
        else:
            image = _init_image(opts, prep.work, prep.styles, prep.blend, (plans[0].height, plans[0].width),
                                prep.generator)
            image = color.gray(image) if opts.preserve_color == "luminance" else image
    total_steps = sum(p.steps for p in plans)
    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=begin.step, disable=opts.quiet, unit="it", dynamic_ncols=True)
    step, scale_stats, last, stopped = begin.step, list(begin.scales), {}, False
    weights = scale_style_weights(opts, len(plans))
    safe: resume.Progress | None = None  # the latest point a stopped run can resume from, until it is saved
    safe_image = image
    last_save = time.perf_counter()

    def save() -> None:
        nonlocal safe, last_save
        checkpoint.save(safe, safe_image)
        safe, last_save = None, time.perf_counter()

    stops = signals.stop_requests() if checkpoint is not None else contextlib.nullcontext([])
    with stops as signalled, contextlib.closing(bar):
        for index, (plan, style_weight) in enumerate(zip(plans, weights)):
            if index < begin.scale:
                continue
            if stopped or signalled:
                break
            first = index == begin.scale
            scale_start = time.perf_counter() - (begin.scale_seconds if first else 0.0)
            h, w = plan.height, plan.width
            tiles = f" in {plan.grids[0].tile} px tiles" if plan.grids else ""
            bar.set_description(f"scale {index + 1}/{len(plans)} {w}×{h}{tiles}")
            scale_opts = replace(opts, style_weight=style_weight)
            for image, last, done in _descend_scale(plan, nets, scale_opts, prep, image, levels, temporal,
                                                    begin.done if first else 0):
                step += 1
                if not math.isfinite(last["total"]):
                    raise DivergenceError(f"the loss became non-finite at iteration {step} (scale {index + 1}, "
                                          f"{w}×{h}); nothing was written: lower the weights or --lr")
                bar.update(1)
                bar.set_postfix(loss=f"{last['total']:.4g}", refresh=False)
                if done is not None and checkpoint is not None:
                    now = time.perf_counter()
                    finished = scale_stats + ([_scale_record(plan, style_weight, last, now - scale_start)]
                                              if done == plan.units else [])
                    safe = resume.Progress(index, done, step, begin.seconds + now - started, tile_sides,
                                           now - scale_start, finished)
                    safe_image = image
                if callback is not None and callback(Step(step, total_steps, index + 1, len(plans), (h, w),
                                                          dict(last), image)):
                    stopped = True
                if safe is not None and (stopped or signalled or
                                         time.perf_counter() - last_save >= resume.SAVE_SECONDS):
                    save()
                if stopped or signalled:
                    break
            if not signalled:
                scale_stats.append(_scale_record(plan, style_weight, last, time.perf_counter() - scale_start))
    if signalled:
        kept = (f"run the same command again to continue from {checkpoint.path}" if checkpoint.path.exists() else
                "it had reached no point to resume from, so nothing was saved")
        raise Interrupted(signalled[0], f"stopped by {signals.name(signalled[0])} at iteration {step} of "
                                        f"{total_steps}; {kept}")
    if checkpoint is not None and not stopped:
        checkpoint.remove()
    if stopped and tuple(image.shape[-2:]) != (height, width):
        image = io.resize(image, (height, width))
    output = prep.finish(image)
    seconds = {"setup": round(setup_seconds, 3), "total": round(time.perf_counter() - started, 3)}
    details = {"scales": scale_stats, "iterations": step, "pyramid_levels": levels,
               **({"stopped_at": step} if stopped else {}), **resume.describe(saved[0] if saved else None)}
    if plans[-1].grids:
        details["tiling"] = plans[-1].describe()
    return Result(output, opts, seconds, last, opts.backbone, str(device), details)


SPEC = register_method(MethodSpec("optimize", "Gatys et al. 2016: optimize the pixels, coarse to fine",
                                  OptimizeOptions, PRESETS, run))
