"""Style-transfer losses as pure functions of feature maps (N×C×H×W) and precomputed targets.

Every loss is relative: the squared error divided by the squared size of its target. That makes a weight mean the
same on every layer, at every image size and on every backbone, whatever the scale of its activations. Style
statistics are averages over positions (optionally weighted by a soft mask), so they do not grow with image size.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-8


def position_weights(mask: torch.Tensor | None, feat: torch.Tensor) -> torch.Tensor | None:
    """A soft mask (N×1×H×W) resized by area averaging to the feature map's size, or None for no mask."""
    if mask is None:
        return None
    return F.interpolate(mask, size=feat.shape[-2:], mode="area") if mask.shape[-2:] != feat.shape[-2:] else mask


def _flat(feat: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Features as N×C×P and per-position weights N×1×P that sum to one."""
    n, c = feat.shape[:2]
    f = feat.reshape(n, c, -1)
    if weight is None:
        w = torch.full((n, 1, f.shape[-1]), 1.0 / f.shape[-1], dtype=f.dtype, device=f.device)
    else:
        w = weight.reshape(n, 1, -1).to(f.dtype)
        w = w / w.sum(dim=-1, keepdim=True).clamp_min(EPS)
    return f, w


class _UniformGram(torch.autograd.Function):
    """F·Fᵀ/P with the backward F's symmetry allows: one product (G' + G'ᵀ)·F/P where autograd would run two and
    add them, written in the features' own memory layout (channels-last features get a channels-last gradient, so
    it adds onto the network's gradient without a copy)."""

    @staticmethod
    def forward(ctx, f: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(f)
        return f @ f.transpose(1, 2) / f.shape[-1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (f,) = ctx.saved_tensors
        sym = (grad + grad.transpose(1, 2)) / f.shape[-1]
        if f.stride(1) == 1:  # channels-last: P×C rows are contiguous
            return (f.transpose(1, 2) @ sym).transpose(1, 2)
        return sym @ f


def gram(feat: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Gram matrix averaged over (weighted) positions: N×C×C, independent of image size."""
    if weight is None:  # uniform weights: one product, no N×C×P scaled copy of the features (nor its backward)
        return _UniformGram.apply(feat.reshape(*feat.shape[:2], -1))
    f, w = _flat(feat, weight)
    return (f * w) @ f.transpose(1, 2)


def mean_std(feat: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over (weighted) positions, each N×C."""
    f, w = _flat(feat, weight)
    mean = (f * w).sum(-1)
    var = ((f - mean[..., None]) ** 2 * w).sum(-1)
    return mean, (var + 1e-5).sqrt()


def mean_factor(feat: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean (N×C) over (weighted) positions and the centred features scaled by the weights' roots
    (N×C×P), A with covariance A·Aᵀ: the factor lets W2 work in P×P where positions are fewer than channels."""
    f, w = _flat(feat, weight)
    mean = (f * w).sum(-1)
    return mean, (f - mean[..., None]) * w.sqrt()


def mean_cov(feat: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean (N×C) and covariance (N×C×C) over (weighted) positions: a Gaussian fit."""
    mean, factor = mean_factor(feat, weight)
    return mean, factor @ factor.transpose(1, 2)


def _relative(diff_sq: torch.Tensor, target_sq: torch.Tensor) -> torch.Tensor:
    return (diff_sq / target_sq.clamp_min(EPS)).mean()


def _energy(x: torch.Tensor) -> torch.Tensor:
    """Per-sample sum of squares. Summing over the dimensions reads channels-last features where they lie;
    flatten(1) copied them first (relu1_1 at 512 px: 220 ms a step forward and backward, now 90)."""
    return (x * x).sum(tuple(range(1, x.dim())))


def content_loss(feat: torch.Tensor, target: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
    """Feature reconstruction error relative to the target's energy (Gatys' content loss, scale-free). `norm`
    replaces the target's energy: a tile of a larger picture divides by its share of the whole picture's, so that a
    flat tile (little energy) does not weigh its content more than the untiled loss would."""
    return _relative(_energy(feat - target), _energy(target) if norm is None else norm)


def gram_loss(feat: torch.Tensor, target_gram: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Relative squared Frobenius distance between Gram matrices (Gatys' style loss, scale-free)."""
    return _gram_distance(gram(feat, weight), target_gram)


def _gram_distance(g: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    return _relative(_energy(g - target_gram), _energy(target_gram))


def mean_std_loss(feat: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor],
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Relative distance between per-channel means and standard deviations (the AdaIN style loss)."""
    return _mean_std_distance(*mean_std(feat, weight), target)


def _mean_std_distance(mean: torch.Tensor, std: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor]
                       ) -> torch.Tensor:
    t_mean, t_std = target
    diff = (mean - t_mean).pow(2).sum(1) + (std - t_std).pow(2).sum(1)
    return _relative(diff, t_mean.pow(2).sum(1) + t_std.pow(2).sum(1))


@contextlib.contextmanager
def _one_thread():
    """LAPACK's eigensolvers on torch's CPU thread pool slow down 20-40× when another process holds a core (0.5-1.3 s
    instead of 0.02-0.05 s for a 512×512 matrix on this 2-core machine, bench/RESULTS.md); on one thread they take
    the same 0.02-0.05 s whether or not the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def sqrtm_psd(mat: torch.Tensor) -> torch.Tensor:
    """Square root of symmetric positive semi-definite matrices (batched), through an eigendecomposition."""
    with _one_thread():
        vals, vecs = torch.linalg.eigh(mat.double())
    return (vecs * vals.clamp_min(0).sqrt()[..., None, :]) @ vecs.transpose(-1, -2)


def gaussian_w2(mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor,
                root_b: torch.Tensor | None = None, eps: float = 0.0,
                factor_a: torch.Tensor | None = None) -> torch.Tensor:
    """Squared 2-Wasserstein (Fréchet) distance between Gaussians, batched over leading dimensions:
    |μa − μb|² + tr Σa + tr Σb − 2 tr (Σb^½ Σa Σb^½)^½, in float64 through eigendecompositions, which stay stable
    for rank-deficient covariances. root_b is Σb^½ when already known; eps > 0 keeps the gradient of the square
    root finite where an eigenvalue is zero. factor_a, a C×P matrix A with Σa = A·Aᵀ, lets a fit from fewer
    positions than channels (a small image's deep layers) take the eigenvalues of the P×P matrix (Σb^½A)ᵀ(Σb^½A),
    the same nonzero ones as Σb^½ Σa Σb^½'s at a fraction of the cost."""
    root_b = sqrtm_psd(cov_b) if root_b is None else root_b.double()
    if factor_a is not None and factor_a.shape[-1] < factor_a.shape[-2]:
        side = root_b @ factor_a.double()
        middle = side.transpose(-1, -2) @ side
    else:
        middle = root_b @ cov_a.double() @ root_b
    with _one_thread():
        vals = torch.linalg.eigvalsh((middle + middle.transpose(-1, -2)) / 2)
    cross = vals.clamp_min(eps).sqrt().sum(-1)
    trace = (torch.diagonal(cov_a.double(), dim1=-2, dim2=-1).sum(-1)
             + torch.diagonal(cov_b.double(), dim1=-2, dim2=-1).sum(-1))
    return (mean_a.double() - mean_b.double()).pow(2).sum(-1) + (trace - 2 * cross).clamp_min(0)


def wasserstein2_loss(feat: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                      weight: torch.Tensor | None = None, factored: bool = True) -> torch.Tensor:
    """Squared 2-Wasserstein distance between Gaussian fits of the features and of the style, relative to the
    style's second moment. target = (mean, cov, sqrtm(cov)); the root of the target is computed once.
    factored=False always solves the C×C eigenproblem: the reference that tests and bench/bench_w2.py compare the
    cheaper factor form with."""
    mean, factor = mean_factor(feat, weight)
    return _w2_distance(mean, factor @ factor.transpose(1, 2), target, feat.dtype, factor if factored else None)


def _w2_distance(mean: torch.Tensor, cov: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                 dtype: torch.dtype, factor: torch.Tensor | None = None) -> torch.Tensor:
    t_mean, t_cov, t_root = target
    w2 = gaussian_w2(mean, cov, t_mean, t_cov, t_root, eps=1e-10, factor_a=factor).to(dtype)
    return _relative(w2, t_mean.pow(2).sum(1) + torch.diagonal(t_cov, dim1=-2, dim2=-1).sum(-1))


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference between neighbouring pixels, which discourages high-frequency
    noise; a mean, so it does not grow with image size."""
    dy = (img[..., 1:, :] - img[..., :-1, :]).pow(2).mean()
    dx = (img[..., :, 1:] - img[..., :, :-1]).pow(2).mean()
    return dx + dy


def temporal_loss(img: torch.Tensor, warped: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Ruder et al. 2016's short-term temporal loss: the mean squared difference from the previous output warped
    onto this frame, counted only where `weight` (1×1×H×W, 1 where the flow is trusted) says; a mean over all
    pixels, so it does not grow with image size."""
    return (weight * (img - warped).pow(2)).mean()


STYLE_LOSSES = ("gram", "mean_std", "wasserstein")


def style_target(feat: torch.Tensor, kind: str):
    """The statistics a style loss compares against, computed once per style image."""
    if kind == "gram":
        return gram(feat)
    if kind == "mean_std":
        return mean_std(feat)
    mean, cov = mean_cov(feat)
    return mean, cov, sqrtm_psd(cov)


def blend_targets(targets: list, weights: list[float], kind: str):
    """One target for a weighted mix of styles: mixtures of their statistics (second moments for Gram and
    Gaussian, so that blending a style with itself changes nothing)."""
    if kind == "gram":
        return sum(w * t for w, t in zip(weights, targets))
    if kind == "mean_std":
        return (sum(w * t[0] for w, t in zip(weights, targets)), sum(w * t[1] for w, t in zip(weights, targets)))
    mean = sum(w * t[0] for w, t in zip(weights, targets))
    second = sum(w * (t[1] + t[0][..., :, None] * t[0][..., None, :]) for w, t in zip(weights, targets))
    cov = second - mean[..., :, None] * mean[..., None, :]
    return mean, cov, sqrtm_psd(cov)


def style_loss(feat: torch.Tensor, target, kind: str, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Dispatch to the chosen style loss."""
    if kind == "gram":
        return gram_loss(feat, target, weight)
    if kind == "mean_std":
        return mean_std_loss(feat, target, weight)
    return wasserstein2_loss(feat, target, weight)


@dataclass(frozen=True)
class Moments:
    """Sums over (weighted) positions of the features, their products and the weights, in float64: what every style
    statistic here is made of. Sums add, so a picture's moments are the sum of its parts', and a picture optimized
    part by part can score its style as a whole (the optimize method's tiles). `second` is C×C (gram, wasserstein)
    or its diagonal C (mean_std)."""

    weight: torch.Tensor  # N
    first: torch.Tensor  # N×C
    second: torch.Tensor  # N×C×C or N×C

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.weight + other.weight, self.first + other.first, self.second + other.second)


def moments(feat: torch.Tensor, kind: str, weight: torch.Tensor | None = None) -> Moments:
    """The feature map's Moments for style loss `kind`, each position counted once (or with its weight, N×1×H×W at
    the features' size). Products are taken in the features' precision and summed into float64."""
    n, c = feat.shape[:2]
    f = feat.permute(0, 2, 3, 1).reshape(n, -1, c)  # positions × channels: a view of channels-last features
    if weight is not None:
        w = weight.permute(0, 2, 3, 1).reshape(n, -1, 1).to(f.dtype)
        fw, total = f * w, w.sum((1, 2))
    else:
        fw, total = f, torch.full((n,), float(f.shape[1]), dtype=torch.float64, device=f.device)
    second = (fw * f).sum(1) if kind == "mean_std" else fw.transpose(1, 2) @ f
    return Moments(total.double(), fw.sum(1).double(), second.double())


def moments_style_loss(m: Moments, target, kind: str) -> torch.Tensor:
    """style_loss for features described by their Moments: the same value as style_loss on those features."""
    total = m.weight.clamp_min(EPS)
    mean, second = m.first / total[:, None], m.second / total.reshape(-1, *[1] * (m.second.dim() - 1))
    if kind == "gram":
        return _gram_distance(second, target.double()).float()
    if kind == "mean_std":
        std = ((second - mean**2).clamp_min(0) + 1e-5).sqrt()
        return _mean_std_distance(mean, std, (target[0].double(), target[1].double())).float()
    cov = second - mean[..., :, None] * mean[..., None, :]
    return _w2_distance(mean, cov, target, torch.float64).float()


GAN_LOSSES = ("wgan-gp", "hinge", "lsgan")


def critic_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """What the critic minimizes, from its scores on real and generated samples (any shapes): WGAN's
    E[D(fake)] − E[D(real)] (Arjovsky et al. 2017; its gradient penalty is added apart), the hinge loss (Lim & Ye
    2017) or least squares towards 1 and 0 (Mao et al. 2017)."""
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1).square().mean() + fake.square().mean())
    raise ValueError(f"unknown GAN loss '{kind}'")


def generator_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """What the generator minimizes, from the critic's scores on its outputs: −E[D(fake)] for WGAN and hinge,
    least squares towards 1 for lsgan."""
    if kind in ("wgan-gp", "hinge"):
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * (fake - 1).square().mean()
    raise ValueError(f"unknown GAN loss '{kind}'")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """E[(‖∇ₓD(x̂)‖₂ − 1)²] at x̂ = eps·real + (1 − eps)·fake (Gulrajani et al. 2017), where `critic` maps N
    samples to N scores and `eps` (N×1×1×1) is uniform in [0, 1]. The graph is kept, so the penalty trains the
    critic; the norm is taken in float32 with a small floor, so a zero gradient stays finite."""
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    grad, = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    norm = grad.float().flatten(1).square().sum(1).add(1e-12).sqrt()
    return (norm - 1).square().mean()
