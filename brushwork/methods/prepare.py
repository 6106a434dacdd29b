"""Preparation and finishing that every method shares, written once so that they mean the same in every method:
the checks of shared options, styles and masks, the output size, seeds, blend weights, the style scale, and the
colour pre-pass (before stylizing) and post-pass (after)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import color, resources, runtime
from ..errors import ConfigError, MaskError, SizeError
from ..io import fit_long_side, resize
from ..tiling import Grid
from .base import COLOR_MODES, REGISTRY, CommonOptions, FeedForwardOptions, MethodSpec

ASPECT_TOLERANCE = 0.02  # a mask may differ this much (relative) from the content's aspect ratio: rounding
POSITIVE_SIZE = "--size must be a positive number of pixels"


def check(spec: MethodSpec, opts: CommonOptions, content: torch.Tensor, styles: list[torch.Tensor],
          masks: list[torch.Tensor] | None) -> None:
    """Refuse shared options, styles and masks that make no sense for this method, naming the option."""
    caps = spec.capabilities
    if caps.styles and not styles:
        raise ConfigError("give at least one style image")
    if not caps.styles and styles:
        raise ConfigError(f"--method {spec.name} takes no style images: its model carries its own style")
    checks = [(opts.size >= 1, POSITIVE_SIZE),
              (opts.style_scale > 0, "--style-scale must be positive"),
              (opts.tile is None or opts.tile >= 0, "--tile must be 0 (never tile) or a tile side in pixels"),
              (opts.preserve_color in (None, *COLOR_MODES), "--preserve-color must be luminance or histogram"),
              (opts.preserve_color in (None, *caps.color_modes),
               f"--method {spec.name} does not support --preserve-color {opts.preserve_color}; use "
               f"{' or '.join(caps.color_modes)}")]
    if opts.style_blend is not None:
        checks += [(len(opts.style_blend) == len(styles),
                    f"--style-blend has {len(opts.style_blend)} weights for {len(styles)} style image(s)"),
                   (all(w >= 0 for w in opts.style_blend) and sum(opts.style_blend) > 0,
                    "--style-blend weights must be non-negative and not all zero")]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if masks is not None:
        check_masks(spec, masks, len(styles), content)


def check_masks(spec: MethodSpec, masks: list[torch.Tensor], n_styles: int, content: torch.Tensor) -> None:
    """One mask per style, each with the content's aspect ratio (any resolution) and some pixels selected."""
    if not spec.capabilities.masks:
        takers = ", ".join(name for name, s in REGISTRY.items() if s.capabilities.masks)
        raise MaskError(f"--method {spec.name} applies one style to the whole image; masks need {takers}")
    if len(masks) != n_styles:
        raise MaskError(f"got {len(masks)} mask(s) for {n_styles} style image(s); give one mask per style")
    ch, cw = content.shape[-2:]
    for i, m in enumerate(masks):
        mh, mw = m.shape[-2:]
        if abs(mh / mw - ch / cw) > ASPECT_TOLERANCE * ch / cw:
            raise MaskError(f"mask {i + 1} is {mw}×{mh} but the content is {cw}×{ch}; a mask needs the content's "
                            f"aspect ratio")
        if float(m.max()) <= 0:
            raise MaskError(f"mask {i + 1} selects no pixels (it is all black)")


def output_size(content: torch.Tensor, long_side: int, min_size: int = 1, what: str = "network") -> tuple[int, int]:
    """(height, width) of the output: the content's aspect ratio at `long_side`, refused below `min_size`."""
    height, width = fit_long_side(*content.shape[-2:], long_side)
    if min(height, width) < min_size:
        raise SizeError(f"the output would be {width}×{height} px, below the {what}'s minimum of {min_size} px on "
                        f"the short side; use a larger --size")
    return height, width


def check_feed_forward(opts: FeedForwardOptions, min_size: int) -> None:
    """The options of methods that run a trained network once: a known runtime, a usable thumbnail, and tiling
    only where brushwork runs the network itself (an exported graph normalizes with its own statistics)."""
    runtime.check_runtime(opts.runtime)
    model = getattr(opts, "model", None)
    if opts.runtime == "torch" and isinstance(model, str) and model.lower().endswith(".onnx"):
        raise ConfigError(f"{model} is an exported ONNX graph: run it with --runtime onnx")
    if opts.thumbnail < min_size:
        raise ConfigError(f"--thumbnail must be at least {min_size} px")
    if opts.runtime != "torch" and opts.tile:
        raise ConfigError("--tile needs --runtime torch: an exported graph takes the whole image")


def thumbnail_size(size: tuple[int, int], long_side: int, min_size: int = 1) -> tuple[int, int]:
    """(height, width) of the thumbnail whose statistics stand for an image of `size`: the image itself when its
    long side is within `long_side`, or when the thumbnail of a very thin image would be thinner than the
    network's smallest input."""
    thumb = fit_long_side(*size, long_side)
    return size if max(size) <= long_side or min(thumb) < min_size else thumb


def large_image_details(size: tuple[int, int], thumb_size: tuple[int, int], grid: Grid | None) -> dict:
    """What a feed-forward result records about how a large image was processed."""
    details: dict = {"thumbnail": [thumb_size[1], thumb_size[0]]} if thumb_size != size else {}
    return {**details, "tiling": grid.describe()} if grid is not None else details


def phase_seconds(started: float, setup: float, encoded: float, done: float) -> dict[str, float]:
    """A feed-forward run's timings from perf_counter marks: setup, encoding the styles, stylizing, total."""
    return {"setup": round(setup - started, 3), "encode_styles": round(encoded - setup, 3),
            "stylize": round(done - encoded, 3), "total": round(done - started, 3)}


def style_side(size: tuple[int, int], style_scale: float) -> int:
    """The long side of the style images for an output of `size`: --style-scale times the output's long side."""
    return max(8, round(max(size) * style_scale))


@dataclass
class Prepared:
    """The inputs after the shared steps, on the method's device. `work` is what to stylize (the content, grey
    when only luminance is transferred), `styles` are recoloured as --preserve-color asks, `blend` sums to 1."""

    content: torch.Tensor
    work: torch.Tensor
    styles: list[torch.Tensor]
    masks: list[torch.Tensor] | None
    blend: list[float]
    generator: torch.Generator
    preserve_color: str | None
    style_scale: float

    def work_at(self, size: tuple[int, int]) -> torch.Tensor:
        return resize(self.work, size)

    def styles_at(self, size: tuple[int, int]) -> list[torch.Tensor]:
        """The styles scaled for an output (or a scale of it) of `size`, each keeping its aspect ratio."""
        side = style_side(size, self.style_scale)
        return [resize(s, fit_long_side(*s.shape[-2:], side)) for s in self.styles]

    def style_sizes(self, size: tuple[int, int]) -> list[tuple[int, int]]:
        """The (height, width) of each of `styles_at(size)`, without resizing anything."""
        side = style_side(size, self.style_scale)
        return [fit_long_side(*s.shape[-2:], side) for s in self.styles]

    def style_pixels(self, size: tuple[int, int]) -> int:
        return sum(math.prod(s) for s in self.style_sizes(size))

    def check_style_pass(self, size: tuple[int, int], pass_bytes: Callable[[tuple[int, int]], int],
                         device: torch.device) -> None:
        """Refuse, before they are resized, styles whose pass through the network (`pass_bytes` of one style's
        size) would not fit beside the resized styles themselves, naming --style-scale: a style is an output-sized
        image times that scale."""
        sizes = self.style_sizes(size)
        largest = max(sizes, key=math.prod)
        needed = pass_bytes(largest) + 3 * 4 * sum(math.prod(s) for s in sizes)
        resources.check_fits(needed, device, f"the style image at {largest[1]}×{largest[0]} px (--style-scale "
                             f"{self.style_scale:g})", advice="use a smaller --style-scale or --size")

    def masks_at(self, size: tuple[int, int]) -> list[torch.Tensor] | None:
        return [resize(m, size) for m in self.masks] if self.masks is not None else None

    def finish(self, output: torch.Tensor) -> torch.Tensor:
        """The colour post-pass (luminance: the content's chroma comes back), clamped to [0, 1], on the CPU."""
        output = output.detach().clamp(0, 1).to(self.content.device)
        if self.preserve_color == "luminance":
            output = color.keep_chroma(output, resize(self.content, tuple(output.shape[-2:])))
        return output.cpu()


def prepare(spec: MethodSpec, opts: CommonOptions, content: torch.Tensor, styles: list[torch.Tensor],
            masks: list[torch.Tensor] | None = None, device: torch.device | str = "cpu") -> Prepared:
    """Check the inputs, seed the random generators, normalize the blend weights and run the colour pre-pass.
    `histogram` gives the styles the content's colour mean and covariance; `luminance` matches the styles'
    luminance to the content's and stylizes grey images. A method whose model carries its style was trained on
    colour photos, so it gets the colour content, and only the post-pass (Prepared.finish) applies."""
    check(spec, opts, content, styles, masks)
    torch.manual_seed(opts.seed)
    generator = torch.Generator().manual_seed(opts.seed)
    blend = opts.style_blend or [1.0] * len(styles)
    blend = [w / sum(blend) for w in blend]
    content, styles = content.to(device), [s.to(device) for s in styles]
    masks = [m.to(device) for m in masks] if masks is not None else None
    work = content
    if opts.preserve_color == "histogram":
        styles = [color.match_color(s, content) for s in styles]
    elif opts.preserve_color == "luminance":
        styles = [color.match_luminance(s, content) for s in styles]
        work = color.gray(content) if spec.capabilities.styles else content
    return Prepared(content, work, styles, masks, blend, generator, opts.preserve_color, opts.style_scale)
