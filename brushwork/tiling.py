"""Tiling for images too large to process whole: cut the image into overlapping tiles, process each, and blend them
with smooth windows so no seam shows. Written once for every method (DESIGN.md: "one seam for every method").

How much overlap: a tile's output is only trusted where the network saw all the context it would have seen in the
whole image, that is at least half the receptive field (`receptive_field`) from a cut edge. So each cut edge gets a
`margin` of that width where the tile's weight is zero, then a `band` over which the weight rises smoothly from 0
to 1. Neighbouring tiles overlap by at least 2 · margin + band, and tiles start on multiples of the network's
stride so that pooling and upsampling grids line up with the whole image's: where a method's statistics are global
(the thumbnail's), a tiled result then equals the untiled one."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from . import resources
from .errors import ConfigError

TILE_CHOICES = (2048, 1536, 1024, 768, 512, 384, 256)  # what the automatic choice tries, largest first


def receptive_field(modules: Iterable[nn.Module]) -> int:
    """The receptive field in input pixels of leaf modules applied in order (convolutions, pools, upsamplings; a
    residual block's branch counts, its skip adds nothing). Computed from kernel sizes and strides, so it is the
    theoretical field, the safe bound for where a tile edge can be felt."""
    field_px, jump = 1.0, 1.0
    for m in modules:
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, d = _pair(m.kernel_size), _pair(m.stride), _pair(getattr(m, "dilation", 1))
            field_px += (d * (k - 1)) * jump
            jump *= s
        elif isinstance(m, nn.Upsample):
            jump /= float(m.scale_factor) if m.scale_factor is not None else 1.0
    return math.ceil(field_px)


def _pair(v: int | tuple[int, ...]) -> int:
    return v[0] if isinstance(v, tuple) else v


def leaves(module: nn.Module) -> list[nn.Module]:
    """A module's leaf modules in registration order, which is execution order for the sequential networks here."""
    return [m for m in module.modules() if not list(m.children())]


def inference_bytes_per_pixel(module: nn.Module, run: Callable[[torch.Tensor], Any], size: int = 128) -> float:
    """Peak activation bytes per input pixel of a pass without gradients: the largest input plus output of any
    leaf module of `module` while `run` processes a size×size probe. A sequential network holds little else at
    that moment; its weights are already resident, so they do not count."""
    peak = 0

    def hook(m: nn.Module, inputs: tuple, output: Any) -> None:
        nonlocal peak
        tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
        peak = max(peak, sum(t.untyped_storage().nbytes() for t in tensors))

    handles = [m.register_forward_hook(hook) for m in leaves(module)]
    param = next(module.parameters())
    try:
        with torch.no_grad():
            run(torch.rand(1, 3, size, size, device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
    return peak / size**2


@dataclass(frozen=True)
class Tile:
    """One tile: rows y0:y1 and columns x0:x1 of the image."""

    y0: int
    y1: int
    x0: int
    x1: int

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        return image[..., self.y0:self.y1, self.x0:self.x1]

    def overlaps(self, other: Tile) -> bool:
        return self.y0 < other.y1 and other.y0 < self.y1 and self.x0 < other.x1 and other.x0 < self.x1

    def within(self, outer: Tile) -> Tile:
        """This region in the coordinates of `outer`, a tile that contains it."""
        return Tile(self.y0 - outer.y0, self.y1 - outer.y0, self.x0 - outer.x0, self.x1 - outer.x0)


def _starts(length: int, tile: int, overlap: int, stride: int, shift: float = 0.0) -> list[tuple[int, int]]:
    """(start, end) spans covering 0:length, as few as spans of at most `tile` allow (the last may be stride − 1
    longer), starting on multiples of `stride`, neighbours overlapping by at least `overlap`. Spans are only as
    long as that count needs, not `tile` long: at 2880 px, two 2048 px spans would repeat 1216 px that spans of
    1482 and 1488 px do not, and the optimize method's time goes with the pixels it optimizes. `shift` (a fraction
    of the spacing between starts) moves every cut that far along, with one more span at the start, so that passes
    over the same image cut it in different places: 0.5 puts each cut halfway between the unshifted ones."""
    if length <= tile:
        return [(0, length)]
    step = tile - overlap - stride  # the largest spacing that keeps the overlap after rounding starts down
    n = math.ceil((length - tile) / step) + 1
    size = math.ceil((length + (n - 1) * (overlap + stride - 1)) / n)  # ≤ tile, by the choice of n
    starts = [(k * (length - size) // (n - 1)) // stride * stride for k in range(n)]
    move = int(shift * min(b - a for a, b in zip(starts, starts[1:]))) // stride * stride
    spans = [(s + move, min(s + move + size, length)) for s in starts]
    if move:
        spans.insert(0, (0, move + size - (starts[1] - starts[0])))
    spans = [(a, b) for a, b in spans if b > a]
    spans[-1] = (spans[-1][0], length)
    return spans


@dataclass
class Grid:
    """The tiles of one image and the blending windows' geometry."""

    height: int
    width: int
    tile: int
    margin: int
    band: int
    stride: int
    tiles: list[Tile] = field(default_factory=list)

    @property
    def overlap(self) -> int:
        return 2 * self.margin + self.band

    def window(self, tile: Tile, device: torch.device | None = None) -> torch.Tensor:
        """The tile's blending weight (1×1×h×w): zero within `margin` of a cut edge, a raised-cosine rise over
        `band`, one inside; image edges are not cut, so they get no ramp."""
        wy = self._ramp(tile.y0, tile.y1, self.height, device)
        wx = self._ramp(tile.x0, tile.x1, self.width, device)
        return (wy[:, None] * wx[None, :])[None, None]

    def _ramp(self, a: int, b: int, length: int, device: torch.device | None) -> torch.Tensor:
        x = torch.arange(b - a, dtype=torch.float32, device=device) + 0.5
        w = torch.ones_like(x)
        if a > 0:
            w = w * _rise((x - self.margin) / self.band)
        if b < length:
            w = w * _rise((b - a - x - self.margin) / self.band)
        return w

    def seams(self) -> dict[str, list[int]]:
        """Rows and columns where a blending window starts or ends rising: where a seam would show if any did."""
        def lines(spans: set[tuple[int, int]], length: int) -> list[int]:
            out = set()
            for a, b in spans:
                if a > 0:
                    out |= {a + self.margin, a + self.margin + self.band}
                if b < length:
                    out |= {b - self.margin - self.band, b - self.margin}
            return sorted(v for v in out if 0 < v < length)
        return {"rows": lines({(t.y0, t.y1) for t in self.tiles}, self.height),
                "cols": lines({(t.x0, t.x1) for t in self.tiles}, self.width)}

    def owned(self, tile: Tile) -> Tile:
        """The part of the image this tile stands for: the grid's tiles' owned regions cover the image once, each
        cut halfway through an overlap, so at least margin + band / 2 from any cut edge, where the tile's pixels
        see what the whole image's do. What a picture's statistics sum over, tile by tile."""
        def cuts(spans: list[tuple[int, int]], a: int, b: int) -> tuple[int, int]:
            i = spans.index((a, b))
            lo = (a + spans[i - 1][1]) // 2 if i > 0 else a
            hi = (spans[i + 1][0] + b) // 2 if i + 1 < len(spans) else b
            return lo, hi

        rows = sorted({(t.y0, t.y1) for t in self.tiles})
        cols = sorted({(t.x0, t.x1) for t in self.tiles})
        return Tile(*cuts(rows, tile.y0, tile.y1), *cuts(cols, tile.x0, tile.x1))

    def ownership(self, tile: Tile, feather: int, device: torch.device | None = None) -> torch.Tensor:
        """The tile's share of each of its pixels when it writes back only what it owns (1×1×h×w): 1 over its owned
        region, 0 beyond, rising linearly over 2 · feather + 1 px across each cut; image edges get no ramp. The
        shares of the tiles around a cut add to 1 when feather is less than half the overlap."""
        mask = torch.zeros(1, 1, tile.y1 - tile.y0, tile.x1 - tile.x0, device=device)
        self.owned(tile).within(tile).crop(mask).fill_(1)
        if feather == 0:
            return mask
        padded = torch.nn.functional.pad(mask, (feather,) * 4, mode="replicate")
        return torch.nn.functional.avg_pool2d(padded, 2 * feather + 1, 1)

    def cuts(self) -> dict[str, list[int]]:
        """Rows and columns where owned regions meet: a tiled optimize pass's seams (`ownership`)."""
        return {"rows": sorted({self.owned(t).y0 for t in self.tiles} - {0}),
                "cols": sorted({self.owned(t).x0 for t in self.tiles} - {0})}

    @property
    def largest(self) -> tuple[int, int]:
        """Height and width of the tile with the most pixels: what one tile's processing must hold."""
        t = max(self.tiles, key=lambda t: (t.y1 - t.y0) * (t.x1 - t.x0))
        return t.y1 - t.y0, t.x1 - t.x0

    def layout(self) -> dict:
        """The grid's shape as the sidecar records it, without its seam lines."""
        return {"size": [self.width, self.height], "tile": self.tile, "margin": self.margin, "band": self.band,
                "overlap": self.overlap, "stride": self.stride, "tiles": len(self.tiles)}

    def describe(self) -> dict:
        """What the sidecar records: enough for `brushwork eval` to find the seams."""
        return {**self.layout(), **self.seams()}


def _rise(t: torch.Tensor) -> torch.Tensor:
    """0 below t = 0, 1 above t = 1, a raised cosine between: smooth, and rise(t) + rise(1 − t) = 1."""
    return 0.5 - 0.5 * torch.cos(math.pi * t.clamp(0, 1))


def plan(height: int, width: int, tile: int, margin: int, band: int, stride: int = 1,
         shift: tuple[float, float] = (0.0, 0.0)) -> Grid:
    """Tiles of at most tile × tile covering height × width, overlapping by 2 · margin + band (see module doc);
    `shift`: how far along each axis the cuts move, as a fraction of the spacing between tiles (`_starts`)."""
    overlap = 2 * margin + band
    smallest = min_tile(margin, band, stride)
    if tile < smallest:
        raise ConfigError(f"--tile {tile} is too small: tiles overlap by {overlap} px here, so a tile needs at least "
                          f"{smallest} px")
    rows = _starts(height, tile, overlap, stride, shift[0])
    cols = _starts(width, tile, overlap, stride, shift[1])
    tiles = [Tile(y0, y1, x0, x1) for y0, y1 in rows for x0, x1 in cols]
    return Grid(height, width, tile, margin, band, stride, tiles)


def min_tile(margin: int, band: int, stride: int) -> int:
    """The smallest tile that leaves each tile a trusted interior as wide as its overlap."""
    return math.ceil((2 * (2 * margin + band) + stride) / stride) * stride


def blend(process: Callable[[Tile, torch.Tensor], torch.Tensor], image: torch.Tensor, grid: Grid,
          channels: int = 3) -> torch.Tensor:
    """Run `process(tile, crop)` on every tile of `image` and blend the outputs (same size as each crop) with the
    grid's windows into one image. Only one tile's activations exist at a time; the canvas is the image's size."""
    resources.release_freed_memory()  # what a thumbnail pass before this freed
    n = image.shape[0]
    canvas = image.new_zeros(n, channels, grid.height, grid.width)
    weight = image.new_zeros(1, 1, grid.height, grid.width)
    for t in grid.tiles:
        w = grid.window(t, image.device)
        out = process(t, t.crop(image))
        t.crop(canvas).add_(out * w)
        t.crop(weight).add_(w)
        del out
        resources.release_freed_memory()
    return canvas.div_(weight.clamp_min(1e-12))


def choose(requested: int | None, height: int, width: int, fits: Callable[[int | None], bool], smallest: int
           ) -> int | None:
    """The tile side to use: None for the whole image. `requested` 0 never tiles, N tiles at N (whole image when
    it is no larger), None tiles only when the whole image does not fit (`fits(None)`), then at the largest side
    that does (`fits(side)`)."""
    if requested == 0:
        return None
    if requested is not None:
        return requested if max(height, width) > requested else None
    if fits(None):
        return None
    for side in TILE_CHOICES:
        if smallest <= side < max(height, width) and fits(side):
            return side
    return None


# Full-size buffers a feed-forward run holds besides one tile's activations: the resized input, the canvas and its
# weights, the output and the colour post-pass's copy (float32 RGB each); measured in tests/test_tiling.py.
IMAGE_BYTES_PER_PIXEL = 64
FEED_FORWARD_BAND = 32  # exact methods blend identical values, so a short rise suffices


@dataclass(frozen=True)
class Footprint:
    """What tiling needs to know about a feed-forward network: its total stride, its receptive field, and the
    activation bytes per pixel of one pass (inference_bytes_per_pixel)."""

    stride: int
    receptive_field: int
    bytes_per_pixel: float

    @property
    def margin(self) -> int:
        """Half the receptive field, plus half the stride (strided layers centre a field up to that far off the
        pixel), rounded up to the stride: beyond it a tile's output equals the whole image's."""
        return math.ceil((self.receptive_field + self.stride) / 2 / self.stride) * self.stride

    def bytes(self, height: int, width: int, tile: int | None = None, other_pass: int = 0) -> int:
        """Peak bytes for a height × width image processed whole (tile None) or in tiles of `tile`, after another
        pass of the network over `other_pass` pixels (a thumbnail, a style image): counted in full, since glibc
        often keeps what that pass freed instead of reusing it for the tiles (measured in tests/test_tiling.py).
        A tile counts at the size the grid cuts it (spans are only as long as their count needs, `_starts`)."""
        h, w = (height, width) if tile is None else self.grid(height, width, tile).largest
        passes = (h + self.stride) * (w + self.stride) + other_pass
        return int(self.bytes_per_pixel * passes + IMAGE_BYTES_PER_PIXEL * height * width)

    def grid(self, height: int, width: int, tile: int) -> Grid:
        """The tiles a feed-forward run of this network cuts a height × width image into."""
        return plan(height, width, tile, self.margin, FEED_FORWARD_BAND, self.stride)


def check_full_size(height: int, width: int, device: torch.device, bytes_per_pixel: int = IMAGE_BYTES_PER_PIXEL,
                    held: int = 0) -> None:
    """Refuse an image whose full-size buffers alone (`bytes_per_pixel`, which no tiling shrinks) and `held` bytes
    exceed free memory, before anything is resized to its size or tiles are planned for it: at --size 300000 the
    tile plans alone took 12 s and the resize asked for 810 GB."""
    resources.check_fits(bytes_per_pixel * height * width + held, device, f"stylizing at {width}×{height}",
                         "at least")


def decide(requested: int | None, height: int, width: int, footprint: Footprint, device: torch.device,
           other_pass: int = 0, held: int = 0) -> int | None:
    """The tile side for a feed-forward run (None: the whole image at once), as `choose` picks it; the memory
    guard refuses what fits neither way. `other_pass`: pixels of the largest other pass (Footprint.bytes);
    `held`: bytes a method needs besides the tiled network, whatever the tile (the transformer's tokens).
    Call it before resizing anything to the output's size."""
    check_full_size(height, width, device, held=held)

    def need(tile: int | None) -> int:
        return footprint.bytes(height, width, tile, other_pass) + held

    smallest = min_tile(footprint.margin, FEED_FORWARD_BAND, footprint.stride)
    free = resources.available_memory(device)
    tile = choose(requested, height, width, lambda side: need(side) <= free, smallest)
    resources.check_fits(need(tile), device,
                         f"stylizing at {width}×{height}" + (f" in {tile} px tiles" if tile else ""))
    return tile


def feed_forward(process: Callable[[Tile | None, torch.Tensor], torch.Tensor], image: torch.Tensor,
                 tile: int | None, footprint: Footprint) -> tuple[torch.Tensor, Grid | None]:
    """`process(None, image)` on the whole image when tile is None, else `process(tile, crop)` on each tile of
    that side, blended. Returns the output and the grid (None: whole)."""
    if tile is None:
        return process(None, image), None
    grid = footprint.grid(*image.shape[-2:], tile)
    return blend(process, image, grid), grid
