"""Quality metrics for style transfer, as papers report them: content fidelity (SSIM, MS-SSIM, feature and
perceptual distances), style fidelity (Gram, mean/std and Gaussian Wasserstein distances, a Lab colour distance) and
set-level scores (a Fréchet distance and an ArtFID-style score).

Every metric is a pure function of RGB [0,1] images (N×3×H×W, batched; a single reference broadcasts over N) or of
features computed from them. Feature metrics take a Backbone; grade a method with a backbone other than the one it
optimized (`eval_backbone_name` picks one), or it is judged by its own yardstick.

Feature distances are relative: a squared difference divided by the mean squared size of the two sides. They are
therefore symmetric, zero for identical inputs, at most 4, and comparable across layers and image sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from . import losses
from .backbones import Backbone, eval_preference, get_spec
from .color import luminance, rgb_to_lab
from .errors import BackboneError, SizeError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, from their human study
PAIR_METRICS = ("ssim", "ms_ssim", "content", "lpips_unweighted", "gram", "mean_std", "wasserstein", "color")


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape[-2:] != y.shape[-2:]:
        raise SizeError(f"images must have the same size for this metric: {tuple(x.shape[-2:])} vs "
                        f"{tuple(y.shape[-2:])}")


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter over the valid region only (no padding), as in Wang et al.'s reference code."""
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return F.conv2d(x, g.view(1, 1, -1, 1))


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, data_range: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term over the valid windows, each N."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    vx = _blur(x * x, g) - mx * mx
    vy = _blur(y * y, g) - my * my
    cov = _blur(x * y, g) - mx * my
    cs = (2 * cov + c2) / (vx + vy + c2)
    ssim_map = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
    return ssim_map.flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of the luminance: Gaussian 11×11 window, σ = 1.5, K1 = 0.01,
    K2 = 0.03, averaged over the windows that fit inside the image. 1 for identical images; per image, N."""
    _check_pair(x, y)
    if min(x.shape[-2:]) < window:
        raise SizeError(f"SSIM needs images of at least {window}×{window} px, got {tuple(x.shape[-2:])}")
    lx, ly = luminance(x.double()), luminance(y.double())
    return _ssim_terms(lx, ly, _gaussian_window(window, sigma, lx), 1.0)[0].float()


def ms_ssim(x: torch.Tensor, y: torch.Tensor, scales: int | None = None, window: int = 11,
            sigma: float = 1.5) -> torch.Tensor:
    """Multi-scale SSIM of the luminance (Wang et al. 2003): contrast-structure at each of up to five dyadic
    scales, luminance at the coarsest, combined with the published weights. scales=None uses as many of the five
    as the image allows (the coarsest must still hold one window) and renormalizes their weights."""
    _check_pair(x, y)
    fit = 1
    while fit < len(MS_SSIM_WEIGHTS) and min(x.shape[-2:]) // 2 ** fit >= window:
        fit += 1
    if scales is None:
        scales = fit
    if not 1 <= scales <= len(MS_SSIM_WEIGHTS) or scales > fit:
        raise SizeError(f"MS-SSIM with {scales} scales needs images of at least {window * 2 ** (scales - 1)} px "
                        f"on the short side (at most {len(MS_SSIM_WEIGHTS)} scales), got {tuple(x.shape[-2:])}")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64)
    weights = weights / weights.sum()
    lx, ly = luminance(x.double()), luminance(y.double())
    g = _gaussian_window(window, sigma, lx)
    result = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(scales):
        s, cs = _ssim_terms(lx, ly, g, 1.0)
        term = s if i == scales - 1 else cs
        result = result * term.clamp_min(0) ** weights[i]
        lx, ly = F.avg_pool2d(lx, 2), F.avg_pool2d(ly, 2)
    return result.float()


def features(backbone: Backbone, images: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
    """Backbone activations at the given layers, without autograd."""
    if min(images.shape[-2:]) < backbone.min_size:
        raise SizeError(f"{backbone.name} needs images of at least {backbone.min_size} px on the short side, "
                        f"got {tuple(images.shape[-2:])}")
    with torch.no_grad():
        return backbone(images, layers)


def _relative(diff_sq: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    return diff_sq / ((a_sq + b_sq) / 2).clamp_min(losses.EPS)


def _content(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    return _relative((fa - fb).pow(2).flatten(1).sum(1), fa.pow(2).flatten(1).sum(1), fb.pow(2).flatten(1).sum(1))


def _lpips_layer(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    na = fa / fa.norm(dim=1, keepdim=True).clamp_min(1e-10)
    nb = fb / fb.norm(dim=1, keepdim=True).clamp_min(1e-10)
    return (na - nb).pow(2).sum(1).flatten(1).mean(1)


def _gram(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    ga, gb = losses.gram(fa), losses.gram(fb)
    return _relative((ga - gb).pow(2).flatten(1).sum(1), ga.pow(2).flatten(1).sum(1), gb.pow(2).flatten(1).sum(1))


def _mean_std(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    va, vb = torch.cat(losses.mean_std(fa), 1), torch.cat(losses.mean_std(fb), 1)
    return _relative((va - vb).pow(2).sum(1), va.pow(2).sum(1), vb.pow(2).sum(1))


def _wasserstein(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    (ma, ca), (mb, cb) = losses.mean_cov(fa.double()), losses.mean_cov(fb.double())
    second_a = ma.pow(2).sum(1) + torch.diagonal(ca, dim1=-2, dim2=-1).sum(-1)
    second_b = mb.pow(2).sum(1) + torch.diagonal(cb, dim1=-2, dim2=-1).sum(-1)
    return _relative(losses.gaussian_w2(ma, ca, mb, cb), second_a, second_b).float()


def _layer_mean(fn, fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor], layers: Sequence[str]) -> torch.Tensor:
    n = max(fa[layers[0]].shape[0], fb[layers[0]].shape[0])
    return torch.stack([fn(fa[k], fb[k]).expand(n) for k in layers]).mean(0)


def _pair_distance(fn, x: torch.Tensor, y: torch.Tensor, backbone: Backbone, layers: Sequence[str]) -> torch.Tensor:
    return _layer_mean(fn, features(backbone, x, layers), features(backbone, y, layers), layers)


def content_distance(x: torch.Tensor, y: torch.Tensor, backbone: Backbone, layer: str | None = None) -> torch.Tensor:
    """Relative squared distance between feature maps at one layer (default: the backbone's content layer), the
    quantity Gatys' content loss minimizes. Needs equal sizes; per image, N."""
    _check_pair(x, y)
    return _pair_distance(_content, x, y, backbone, [layer or backbone.content_layers[0]])


def lpips_unweighted(x: torch.Tensor, y: torch.Tensor, backbone: Backbone,
                     layers: Sequence[str] | None = None) -> torch.Tensor:
    """An LPIPS-style perceptual distance *without* LPIPS's learned per-channel weights (those were fitted to
    human judgements and are not available here): features unit-normalized over channels at each position,
    squared differences summed over channels, averaged over positions, then over layers (default: the last tap
    at each resolution). In [0, 4]; per image, N. Not comparable with published LPIPS numbers."""
    _check_pair(x, y)
    return _pair_distance(_lpips_layer, x, y, backbone, list(layers or backbone.perceptual_layers))


def gram_distance(x: torch.Tensor, y: torch.Tensor, backbone: Backbone,
                  layers: Sequence[str] | None = None) -> torch.Tensor:
    """Relative squared distance between Gram matrices (averaged over positions), averaged over the style
    layers: the statistic Gatys' style loss matches. Images may differ in size; per image, N."""
    return _pair_distance(_gram, x, y, backbone, list(layers or backbone.style_layers))


def mean_std_distance(x: torch.Tensor, y: torch.Tensor, backbone: Backbone,
                      layers: Sequence[str] | None = None) -> torch.Tensor:
    """Relative squared distance between per-channel means and standard deviations, averaged over the style
    layers: the statistic AdaIN matches. Images may differ in size; per image, N."""
    return _pair_distance(_mean_std, x, y, backbone, list(layers or backbone.style_layers))


def wasserstein_distance(x: torch.Tensor, y: torch.Tensor, backbone: Backbone,
                         layers: Sequence[str] | None = None) -> torch.Tensor:
    """Squared 2-Wasserstein distance between Gaussian fits (mean and full covariance) of the two images'
    features, relative to their mean second moment and averaged over the style layers. Images may differ in
    size; per image, N."""
    return _pair_distance(_wasserstein, x, y, backbone, list(layers or backbone.style_layers))


def color_distance(x: torch.Tensor, y: torch.Tensor, projections: int = 32, quantiles: int = 256,
                   max_pixels: int = 65536, seed: int = 0) -> torch.Tensor:
    """Sliced 2-Wasserstein distance between the two images' pixel distributions in CIELAB: pixels are projected
    on `projections` fixed random directions and the projected distributions compared at `quantiles` evenly
    spaced quantiles. Scaled by √3 (one projection sees a third of a 3-D difference on average), so a uniform
    colour shift of ΔE reads as about ΔE; larger images are represented by a fixed random sample of
    `max_pixels` pixels. Ignores where colours are, only which colours occur and how often; images may differ in
    size; per image, N."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(projections, 3, generator=generator)
    directions = (directions / directions.norm(dim=1, keepdim=True)).to(x.device)
    qa, qb = (_projected_quantiles(_sample_pixels(img, max_pixels, seed), directions, quantiles) for img in (x, y))
    return (3 * (qa.double() - qb.double()).pow(2).mean((1, 2))).sqrt().float()


def _sample_pixels(img: torch.Tensor, max_pixels: int, seed: int) -> torch.Tensor:
    """N×3×P Lab pixels: all of them, or the same seeded random subset of `max_pixels` for every image."""
    pixels = rgb_to_lab(img.float()).flatten(2)
    if pixels.shape[-1] <= max_pixels:
        return pixels
    keep = torch.randperm(pixels.shape[-1], generator=torch.Generator().manual_seed(seed))[:max_pixels]
    return pixels[..., keep.to(img.device)]


def _projected_quantiles(pixels: torch.Tensor, directions: torch.Tensor, quantiles: int) -> torch.Tensor:
    """N×projections×quantiles: sorted projections sampled at the centres of `quantiles` equal-mass bins."""
    projected = torch.einsum("pc,ncq->npq", directions, pixels).sort(-1).values
    count = projected.shape[-1]
    position = ((torch.arange(quantiles, dtype=torch.float64, device=pixels.device) + 0.5) / quantiles) * count - 0.5
    position = position.clamp(0, count - 1)
    low = position.floor().long()
    high = (low + 1).clamp_max(count - 1)
    frac = (position - low).to(projected.dtype)
    return projected[..., low] * (1 - frac) + projected[..., high] * frac


def _step_energy(image: torch.Tensor, cols: Sequence[int], reach: int, period: int
                 ) -> tuple[float, int, float, int]:
    """Absolute RGB steps between horizontal neighbours: (sum, count) over the pairs that straddle the columns
    `cols` (column c: between c − 1 and c), then over the pairs whole multiples of `period` away from them, up to
    `reach` px, that straddle no column. Absolute, not squared: a few strong edges that happen to run along a line
    would otherwise decide the score (measured on 4K outputs, random lines spread 0.67–1.47 squared, 0.86–1.14
    absolute)."""
    steps = (image[..., 1:] - image[..., :-1]).abs().sum(1)
    width = image.shape[-1]
    on = sorted({c - 1 for c in cols if 0 < c < width})
    offsets = [k * period for k in range(-max(1, reach // period), max(1, reach // period) + 1) if k != 0]
    near = sorted({c + d for c in on for d in offsets if 0 <= c + d < width - 1} - set(on))
    a, b = steps[..., on], steps[..., near]
    return float(a.sum()), a.numel(), float(b.sum()), b.numel()


def seam_score(image: torch.Tensor, rows: Sequence[int], cols: Sequence[int], reach: int = 32, period: int = 1
               ) -> float:
    """How visible tile borders are: the mean absolute step between the pixel pairs that straddle the seam lines,
    over the same for pairs near them. About 1 where no seam shows, well above where one does; NaN without lines.
    `period`: compare only with pairs a multiple of it away, for networks whose stride leaves a pattern of that
    period (an 8-px decoder grid would otherwise read as seams on tiles that start on it)."""
    x = _step_energy(image, cols, reach, period)
    y = _step_energy(image.transpose(-1, -2), rows, reach, period)
    border_sum, border_n, near_sum, near_n = (x[i] + y[i] for i in range(4))
    if border_n == 0 or near_sum == 0:
        return float("nan")
    return (border_sum / border_n) / (near_sum / near_n)


EDGE_LINE = 1.5  # a line where the content itself scores this (13 shared photos at 4K: random lines 95% ≤ 1.50)


def seam_report(image: torch.Tensor, rows: Sequence[int], cols: Sequence[int], period: int = 1,
                content: torch.Tensor | None = None) -> dict:
    """The seam score at a tiling's lines, and with the content (at the image's size) a control for lines that run
    along an edge of the picture itself: a straight step there reads as a seam in the output too (golden_gate's tower
    along a 4K cut: the photo scores 2.6 at it). Such lines (the content's own score above EDGE_LINE) are listed with
    both scores, and `seam_off_edges` is the score at the other lines, the one to judge seams by."""
    report: dict = {"seam": round(seam_score(image, rows, cols, period=period), 6)}
    if content is None:
        return report
    _check_pair(image, content)
    report["seam_content"] = round(seam_score(content, rows, cols, period=period), 6)
    edges: list[dict] = []
    rest: dict[str, list[int]] = {"row": [], "col": []}
    for axis, at in [("row", r) for r in rows] + [("col", c) for c in cols]:
        along = ([at], []) if axis == "row" else ([], [at])
        own = seam_score(content, *along, period=period)
        if own > EDGE_LINE:
            edges.append({"line": axis, "at": at, "content": round(own, 6),
                          "output": round(seam_score(image, *along, period=period), 6)})
        else:
            rest[axis].append(at)
    report["seam_edges"] = edges
    report["seam_off_edges"] = round(seam_score(image, rest["row"], rest["col"], period=period), 6) \
        if rest["row"] or rest["col"] else None
    return report


def pooled(feat: torch.Tensor) -> torch.Tensor:
    """Global average pooling: one C-vector per image."""
    return feat.mean((-2, -1))


def pooled_features(images: Iterable[torch.Tensor], backbone: Backbone, layer: str | None = None) -> torch.Tensor:
    """M×C: one globally pooled feature vector per image (default: the backbone's deepest tap), for Fréchet
    distances; images may differ in size."""
    layer = layer or backbone.pooled_layer
    return torch.cat([pooled(features(backbone, img, [layer])[layer]) for img in images])


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussian fits of two sets of feature vectors (M×C and K×C), as FID computes it
    on Inception features (unbiased covariances; a set of one has zero covariance). FID's Inception weights are
    not available here, so use it with an embedded backbone: values compare runs on the same backbone and the
    same reference set, never with published FIDs. ~0 for a set against itself."""
    def fit(feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = feat.double()
        mean = feat.mean(0)
        if feat.shape[0] < 2:
            return mean, torch.zeros(feat.shape[1], feat.shape[1], dtype=feat.dtype, device=feat.device)
        return mean, torch.cov(feat.T)
    return float(losses.gaussian_w2(*fit(a), *fit(b)))


def art_fid(content_distance_mean: float, frechet: float) -> float:
    """The ArtFID combination (Wright & Ommer 2022): (1 + content distance) × (1 + Fréchet distance); lower is
    better. ArtFID uses LPIPS and Inception FID; here the unweighted LPIPS and the embedded-backbone Fréchet."""
    return (1 + content_distance_mean) * (1 + frechet)


def pair_metrics(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor, backbone: Backbone
                 ) -> dict[str, torch.Tensor]:
    """Every per-pair metric (PAIR_METRICS) for outputs N×3×H×W against one content of the same size and one
    style (any size, used as given), sharing one forward pass per image. Also returns `pooled`, the outputs'
    pooled features, for set-level scores."""
    _check_pair(output, content)
    content_layer = backbone.content_layers[0]
    layers = list(dict.fromkeys([content_layer, *backbone.perceptual_layers, *backbone.style_layers,
                                 backbone.pooled_layer]))
    fo, fc = features(backbone, output, layers), features(backbone, content, layers)
    fs = features(backbone, style, backbone.style_layers)
    style_layers = list(backbone.style_layers)
    return {"ssim": ssim(output, content), "ms_ssim": ms_ssim(output, content),
            "content": _layer_mean(_content, fo, fc, [content_layer]),
            "lpips_unweighted": _layer_mean(_lpips_layer, fo, fc, list(backbone.perceptual_layers)),
            "gram": _layer_mean(_gram, fo, fs, style_layers),
            "mean_std": _layer_mean(_mean_std, fo, fs, style_layers),
            "wasserstein": _layer_mean(_wasserstein, fo, fs, style_layers),
            "color": color_distance(output, style), "pooled": pooled(fo[backbone.pooled_layer])}


def eval_backbone_name(used: Iterable[str] = (), available: Iterable[str] | None = None) -> str:
    """The first embedded or installed backbone that did not make the images (`used` may hold '+'-joined names),
    so that no method is graded by its own yardstick. Raises BackboneError when every available one was used."""
    used_names = {part for name in used for part in str(name).split("+") if part}
    if available is None:
        available = [n for n in eval_preference() if get_spec(n).default_weights()]
    candidates = [n for n in available if n not in used_names]
    if not candidates:
        raise BackboneError(f"every available backbone ({', '.join(available) or 'none'}) made these images; "
                            f"name one with --backbone to grade them anyway")
    return candidates[0]
