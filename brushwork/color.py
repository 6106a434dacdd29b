"""Colour handling shared by every method: a luminance/chroma split (YCbCr, BT.601 full range as in JPEG), CIELAB
for colour metrics, and a linear colour transfer that matches mean and covariance of RGB pixels."""

from __future__ import annotations

import torch

_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                              [-0.168736, -0.331264, 0.5],
                              [0.5, -0.418688, -0.081312]])
_OFFSET = torch.tensor([0.0, 0.5, 0.5])


def rgb_to_ycbcr(img: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB in [0,1] → YCbCr with Y in [0,1] and Cb, Cr centred on 0.5."""
    m = _RGB_TO_YCBCR.to(img)
    return torch.einsum("ij,njhw->nihw", m, img) + _OFFSET.to(img).view(1, 3, 1, 1)


def ycbcr_to_rgb(img: torch.Tensor) -> torch.Tensor:
    """Inverse of rgb_to_ycbcr (not clamped)."""
    m = torch.linalg.inv(_RGB_TO_YCBCR.double()).to(img)
    return torch.einsum("ij,njhw->nihw", m, img - _OFFSET.to(img).view(1, 3, 1, 1))


def luminance(img: torch.Tensor) -> torch.Tensor:
    """The Y channel, N×1×H×W."""
    return rgb_to_ycbcr(img)[:, :1]


def gray(img: torch.Tensor) -> torch.Tensor:
    """The luminance repeated into three channels, so a backbone sees a grey image."""
    return luminance(img).expand(-1, 3, -1, -1).contiguous()


def match_luminance(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Shift and scale the source's luminance to the target's mean and standard deviation (Gatys et al. 2017),
    so a luminance-only transfer does not change the content's overall brightness and contrast."""
    ys, yt = luminance(source), luminance(target)
    y = (ys - ys.mean()) / (ys.std() + 1e-6) * yt.std() + yt.mean()
    return y.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def keep_chroma(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylized image's luminance with the content's chroma: the `luminance` colour preservation."""
    ycc = rgb_to_ycbcr(content)
    ycc = torch.cat([luminance(stylized), ycc[:, 1:]], dim=1)
    return ycbcr_to_rgb(ycc).clamp(0, 1)


_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883])


def rgb_to_lab(img: torch.Tensor) -> torch.Tensor:
    """N×3×H×W sRGB in [0,1] → CIELAB (D65): L in [0,100], a and b roughly in [-110,110]. Distances in Lab
    track perceived colour difference far better than distances in RGB."""
    linear = torch.where(img > 0.04045, ((img + 0.055) / 1.055).pow(2.4), img / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(img), linear) / _D65_WHITE.to(img).view(1, 3, 1, 1)
    delta = 6 / 29
    f = torch.where(xyz > delta ** 3, xyz.clamp_min(1e-12).pow(1 / 3), xyz / (3 * delta ** 2) + 4 / 29)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1)


def _sym_sqrt(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-8)
    vals = vals.rsqrt() if inverse else vals.sqrt()
    return vecs @ torch.diag(vals) @ vecs.T


def _mean_cov(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    px = img.double().permute(1, 0, 2, 3).reshape(3, -1)
    mu = px.mean(dim=1, keepdim=True)
    d = px - mu
    return mu, d @ d.T / d.shape[1] + 1e-5 * torch.eye(3, dtype=d.dtype, device=d.device)


def color_stats(images: list[torch.Tensor], weights: list[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB mean (3×1) and covariance (3×3) of a weighted mixture of images' pixels (float64)."""
    weights = weights or [1 / len(images)] * len(images)
    stats = [_mean_cov(img) for img in images]
    mu = sum(w * m for w, (m, _) in zip(weights, stats))
    second = sum(w * (c + m @ m.T) for w, (m, c) in zip(weights, stats))
    return mu, second - mu @ mu.T


def match_color(source: torch.Tensor, target: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Recolour the source so its RGB mean and covariance equal the target's (an image, or color_stats of some),
    with the linear map that moves pixels least (the Monge–Kantorovich solution between Gaussians); used to give a
    style the content's colours, or the content a style's palette."""
    mu_s, cov_s = _mean_cov(source)
    mu_t, cov_t = _mean_cov(target) if isinstance(target, torch.Tensor) else target
    s_half, s_inv_half = _sym_sqrt(cov_s), _sym_sqrt(cov_s, inverse=True)
    a = s_inv_half @ _sym_sqrt(s_half @ cov_t @ s_half) @ s_inv_half
    n, _, h, w = source.shape
    px = source.double().permute(1, 0, 2, 3).reshape(3, -1)
    out = a @ (px - mu_s) + mu_t
    return out.reshape(3, n, h, w).permute(1, 0, 2, 3).to(source.dtype).clamp(0, 1)
