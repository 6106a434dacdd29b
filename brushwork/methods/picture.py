"""The whole picture's terms while the optimize method works on one tile of it at a time.

A style loss compares statistics of the whole picture with the painting's. Given to each tile alone, it makes every
tile hold the painting's whole palette: a tile of flat sky grows the stars and strokes that other tiles hold in the
untiled result, and the picture turns into a mosaic. Here a tile is optimized against the untiled objective with the
rest of the picture held where it is (block coordinate descent): the style statistics are the sums of the tile's
live features over the region it owns and the other tiles' over theirs, content errors are measured against the
whole picture's content energy, and the tile's terms are scaled by the picture's area over the tile's, which gives
its pixels the gradients the untiled objective gives them."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce

import torch
import torch.nn.functional as F

from .. import losses, tiling
from ..tiling import Grid, Tile

# Per backbone, per style (one without masks), per style layer.
StyleMoments = list[list[dict[str, losses.Moments]]]


@dataclass
class TileTerms:
    """What one tile's objective needs of the rest of the picture."""

    ratio: float  # the picture's pixels over the tile's: the factor that gives the tile's pixels untiled gradients
    box: Tile  # the region the tile owns, in the tile's coordinates
    rest: StyleMoments | None  # the other tiles' moments over their owned regions (None: the tile is the picture)
    energy: list[dict[str, float]] | None  # per backbone and content layer: the energy of the whole picture's
    #                                         content targets (None: the tile's own)
    weights: list[list[dict[str, torch.Tensor]]] | None = None  # per backbone, mask and style layer: the masks'
    #                                                             position weights over the tile (None: no masks)

    def weight(self, net: int, mask: int, layer: str, feat: torch.Tensor) -> torch.Tensor | None:
        """Mask `mask`'s position weights for the tile's features `feat` of `layer` (None without masks)."""
        return _fit(self.weights, net, mask, layer, feat)


def feature_box(box: Tile, size: tuple[int, int], feat: torch.Tensor) -> Tile:
    """`box` (pixels of an image of `size`) on a feature map of that image, smaller by the layer's stride. Pixel p
    goes to position ⌊(p + stride/2) / stride⌋: tiles start on multiples of the stride, so neighbours put their
    shared border on the same position of the whole image's grid, and no position counts twice or not at all."""
    fh, fw = feat.shape[-2:]
    sy, sx = max(1, round(size[0] / fh)), max(1, round(size[1] / fw))
    return Tile(min(fh, (box.y0 + sy // 2) // sy), min(fh, (box.y1 + sy // 2) // sy),
                min(fw, (box.x0 + sx // 2) // sx), min(fw, (box.x1 + sx // 2) // sx))


def region_moments(feat: torch.Tensor, box: Tile, kind: str, weight: torch.Tensor | None) -> losses.Moments:
    """The Moments of a feature map's positions within `box` (feature coordinates)."""
    return losses.moments(box.crop(feat), kind, None if weight is None else box.crop(weight))


def content_norms(terms: TileTerms, targets: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]] | None:
    """Per backbone and content layer, what a tile's content error is divided by (losses.content_loss): the whole
    picture's content energy over the ratio, or None (the tile's own energy) when the tile is the picture."""
    if terms.energy is None:
        return None
    return [{n: torch.tensor([energy[n] / terms.ratio], dtype=t.dtype, device=t.device) for n, t in layers.items()}
            for layers, energy in zip(targets, terms.energy)]


def moments_bytes(nets: list, kind: str) -> int:
    """The bytes of one tile's moments for one style (float64; C×C per style layer, C for mean_std). A pass holds
    every tile's, their sum for the tile at work and the tile's own."""
    param = next(nets[0].model.parameters())
    probe = torch.zeros(1, 3, 64, 64, device=param.device, dtype=param.dtype)
    total = 0
    with torch.no_grad():
        for net in nets:
            for feat in net.model(probe, net.style_layers).values():
                c = feat.shape[1]
                total += 8 * (1 + c + (c if kind == "mean_std" else c * c))
    return total


def pass_bytes_per_pixel(nets: list) -> float:
    """Peak bytes per pixel of the picture's passes without gradients over a tile (content energy, moments): the
    requested layers' features, held until summed, and the largest layer's input and output on the way. Counted
    in full beside a tile's objective: glibc keeps much of what such a pass freed (tiling.Footprint.bytes)."""
    param = next(nets[0].model.parameters())
    probe = torch.zeros(1, 3, 64, 64, device=param.device, dtype=param.dtype)
    worst = 0.0
    with torch.no_grad():
        for net in nets:
            for layers in (net.content_layers, net.style_layers):
                held = sum(f.untyped_storage().nbytes() for f in net.model(probe, layers).values()) / 64**2
                on_the_way = tiling.inference_bytes_per_pixel(net.model, lambda x: net.model(x, layers), 64)
                worst = max(worst, held + on_the_way)
    return worst


class Picture:
    """One pass over a tiled scale: the grid, the whole picture's content energy (the content does not change), and
    each tile's style moments over its owned region, recomputed from the image only where it changed. Moments are
    a function of the image alone, so a run resumed at a tile boundary sees the values an unbroken run did."""

    def __init__(self, nets: list, kind: str, grid: Grid, content: torch.Tensor,
                 masks: list[torch.Tensor] | None, memory_format: torch.memory_format):
        self.nets, self.kind, self.grid = nets, kind, grid
        self.memory_format = memory_format
        # Each mask averaged over every layer's stride blocks of the whole picture, once: a tile takes its window of
        # these, aligned with its features, where resizing the tile's crop of a mask would shift them at its edges.
        self.strides = [{n: net.model.stride(n) for n in net.style_layers} for net in nets]
        self.masks = None if masks is None else [[{n: _block_means(m, s) for n, s in strides.items()} for m in masks]
                                                 for strides in self.strides]
        self.owned = [grid.owned(t) for t in grid.tiles]
        self.parts: list[StyleMoments | None] = [None] * len(grid.tiles)
        self.energy: list[dict[str, float]] = [dict.fromkeys(net.content_layers, 0.0) for net in nets]
        with torch.no_grad():
            for t, own in zip(grid.tiles, self.owned):
                crop = t.crop(content).contiguous(memory_format=memory_format)
                box = own.within(t)
                for net, energy in zip(nets, self.energy):
                    feats = net.model(crop, net.content_layers)
                    for n in net.content_layers:
                        part = feature_box(box, crop.shape[-2:], feats[n]).crop(feats[n])
                        energy[n] += float(part.double().square().sum())

    def terms(self, index: int, image: torch.Tensor) -> TileTerms:
        """The terms for optimizing tile `index` of `image` as it is now."""
        for k, part in enumerate(self.parts):
            if part is None and k != index:
                self.parts[k] = self._moments(k, image)
        others = [p for k, p in enumerate(self.parts) if k != index]
        rest = None
        if others:
            rest = [[{n: reduce(operator.add, (o[i][s][n] for o in others)) for n in layers}
                     for s, layers in enumerate(per_style)]
                    for i, per_style in enumerate(others[0])]
        t = self.grid.tiles[index]
        ratio = self.grid.height * self.grid.width / ((t.y1 - t.y0) * (t.x1 - t.x0))
        return TileTerms(ratio, self.owned[index].within(t), rest, self.energy, self._weights(index))

    def _weights(self, index: int) -> list[list[dict[str, torch.Tensor]]] | None:
        if self.masks is None:
            return None
        t = self.grid.tiles[index]

        def window(grid: torch.Tensor, stride: int) -> torch.Tensor:
            return grid[..., t.y0 // stride:-(-t.y1 // stride), t.x0 // stride:-(-t.x1 // stride)]

        return [[{n: window(grids[n], s) for n, s in strides.items()} for grids in per_mask]
                for strides, per_mask in zip(self.strides, self.masks)]

    def changed(self, index: int) -> None:
        """Tile `index` has written its result into the image: its moments and those of every tile whose pixels
        it touched are out of date."""
        for k, t in enumerate(self.grid.tiles):
            if t.overlaps(self.grid.tiles[index]):
                self.parts[k] = None

    def _moments(self, index: int, image: torch.Tensor) -> StyleMoments:
        t = self.grid.tiles[index]
        crop = t.crop(image).contiguous(memory_format=self.memory_format)
        box = self.owned[index].within(t)
        weights = self._weights(index)
        out = []
        with torch.no_grad():
            for i, net in enumerate(self.nets):
                feats = net.model(crop, net.style_layers)
                out.append([{n: region_moments(feats[n], feature_box(box, crop.shape[-2:], feats[n]), self.kind,
                                               _fit(weights, i, k, n, feats[n]))
                             for n in net.style_layers} for k in range(len(weights[i]) if weights else 1)])
        return out


def _fit(weights: list[list[dict[str, torch.Tensor]]] | None, net: int, mask: int, layer: str, feat: torch.Tensor
         ) -> torch.Tensor | None:
    """A mask's position weights over a tile, cut to the tile's feature map of that layer."""
    if weights is None:
        return None
    return weights[net][mask][layer][..., :feat.shape[-2], :feat.shape[-1]]


def _block_means(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """The mask averaged over the stride × stride blocks a feature position stands for."""
    return F.avg_pool2d(mask, stride, stride, ceil_mode=True) if stride > 1 else mask
