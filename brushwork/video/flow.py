"""Optical flow between frames and what it lets a video job trust. Flow comes from OpenCV's DIS (no weights to
download, real time on a CPU); a previous frame is brought onto the current one by backward warping, and a warped
pixel is trusted where the forward and backward flows agree (not occluded) and the flow is smooth (no motion
boundary), with the thresholds of Sundaram et al. 2010 that Ruder et al. 2016 use for video style transfer.

Flows are 1×2×H×W tensors in pixels (x then y): `flow[p]` is where pixel p of the first frame lies in the second."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..lazy import lazy

cv2 = lazy("cv2")

FLOW_LONG_SIDE = 960  # flow is estimated at most this large and scaled up: DIS is then ~20 ms per frame pair
CONSISTENCY = (0.01, 0.5)  # occluded where |f + b|² > 0.01 (|f|² + |b|²) + 0.5 (Sundaram et al. 2010)
BOUNDARY = (0.01, 0.002)  # motion boundary where |∇u|² + |∇v|² > 0.01 |w|² + 0.002
CUT_RELIABLE = 0.2  # a frame pair whose flow is trusted on less than this share of pixels is a scene cut...
CUT_HISTOGRAM = 0.5  # ...and so is one whose colour histograms differ by more than this (total variation)
HISTOGRAM_BINS = 8  # per channel
BORDER = (8, 0.02)  # a frame's outer band, at least 8 px or 2% of its long side, is not carried inwards


def _gray_u8(frame: torch.Tensor) -> np.ndarray:
    """1×3×H×W in [0, 1] → H×W uint8 luminance, what DIS reads."""
    y = (0.299 * frame[0, 0] + 0.587 * frame[0, 1] + 0.114 * frame[0, 2]).clamp(0, 1)
    return (y * 255).round().to(torch.uint8).cpu().numpy()


def dis_flow(a: torch.Tensor, b: torch.Tensor, long_side: int = FLOW_LONG_SIDE) -> torch.Tensor:
    """Flow from frame `a` to frame `b` (1×3×H×W each), estimated at most `long_side` large and scaled back."""
    h, w = a.shape[-2:]
    scale = min(1.0, long_side / max(h, w))
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    small = [F.interpolate(x, size=size, mode="area") if size != (h, w) else x for x in (a, b)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_gray_u8(small[0]), _gray_u8(small[1]), None)
    flow = torch.from_numpy(flow).permute(2, 0, 1)[None].to(a.device)
    if size == (h, w):
        return flow
    flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    return flow * torch.tensor([w / size[1], h / size[0]], device=a.device).view(1, 2, 1, 1)


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward warping: out[p] = image[p + flow[p]], bilinear (or `nearest`), edges repeated beyond the border.
    With the flow from frame t to frame t−1 this brings frame t−1 (or its stylized output) onto frame t. What is
    warped again and again, frame after frame, is warped `nearest`: bilinear resampling would blur it a little
    more each time."""
    _, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    x = (xs + flow[:, 0]) * (2 / max(w - 1, 1)) - 1
    y = (ys + flow[:, 1]) * (2 / max(h - 1, 1)) - 1
    grid = torch.stack([x, y], dim=-1).to(image.dtype)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


def occluded(flow: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
    """1×1×H×W bool: pixels whose round trip along `flow` and then the reverse flow `back` does not come home
    (the forward-backward check). Pixels that leave the frame count as occluded."""
    _, _, h, w = flow.shape
    returned = warp(back, flow)
    error = (flow + returned).pow(2).sum(1, keepdim=True)
    bound = CONSISTENCY[0] * (flow.pow(2).sum(1, keepdim=True) + returned.pow(2).sum(1, keepdim=True)) + CONSISTENCY[1]
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device), torch.arange(w, device=flow.device), indexing="ij")
    x, y = xs + flow[:, 0:1], ys + flow[:, 1:2]
    outside = (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)
    return (error > bound) | outside


def motion_boundaries(flow: torch.Tensor) -> torch.Tensor:
    """1×1×H×W bool: where the flow changes abruptly (the edge of a moving object), so warping smears."""
    dx = F.pad(flow[..., :, 1:] - flow[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(flow[..., 1:, :] - flow[..., :-1, :], (0, 0, 0, 1))
    gradient = (dx.pow(2) + dy.pow(2)).sum(1, keepdim=True)
    return gradient > BOUNDARY[0] * flow.pow(2).sum(1, keepdim=True) + BOUNDARY[1]


def from_border(flow: torch.Tensor) -> torch.Tensor:
    """1×1×H×W bool: pixels that the flow brings in from the previous frame's outer band (BORDER) from somewhere
    else. Networks and padding make a frame's edge unlike its inside (a dark rim, a stretched texture); held and
    warped along a pan, that rim would travel into the picture. A still border stays trusted."""
    _, _, h, w = flow.shape
    margin = max(BORDER[0], BORDER[1] * max(h, w))
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device), torch.arange(w, device=flow.device), indexing="ij")
    x, y = xs + flow[:, 0:1], ys + flow[:, 1:2]
    near = (x < margin) | (x > w - 1 - margin) | (y < margin) | (y > h - 1 - margin)
    return near & (flow.pow(2).sum(1, keepdim=True) > 0.25)


def histogram_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Total variation distance (0 same, 1 disjoint) between the colour histograms of two frames."""
    def hist(x: torch.Tensor) -> torch.Tensor:
        q = (x[0].clamp(0, 1) * (HISTOGRAM_BINS - 1e-6)).long()
        index = (q[0] * HISTOGRAM_BINS + q[1]) * HISTOGRAM_BINS + q[2]
        counts = torch.bincount(index.flatten(), minlength=HISTOGRAM_BINS**3).double()
        return counts / counts.sum()
    return 0.5 * float((hist(a) - hist(b)).abs().sum())


@dataclass
class FramePair:
    """How frame t relates to frame t−1: the flow from t back to t−1 (to warp with), the weight of each warped
    pixel (1 trusted, 0 occluded or on a motion boundary), and whether the pair straddles a scene cut."""

    back: torch.Tensor
    reliable: torch.Tensor
    cut: bool

    @property
    def reliable_share(self) -> float:
        return float(self.reliable.mean())


def relate(previous: torch.Tensor, current: torch.Tensor) -> FramePair:
    """Flow both ways between two frames of the same size, the trusted pixels (not occluded, not on a motion
    boundary, not brought in from the frame's rim), and the scene-cut test: a large colour histogram jump, or a
    flow that holds for almost no pixel."""
    back = dis_flow(current, previous)
    forward = dis_flow(previous, current)
    reliable = (~(occluded(back, forward) | motion_boundaries(back) | from_border(back))).float()
    cut = histogram_distance(previous, current) > CUT_HISTOGRAM or float(reliable.mean()) < CUT_RELIABLE
    return FramePair(back, reliable, cut)


def still(reference: torch.Tensor, current: torch.Tensor, reliable: torch.Tensor, threshold: float) -> torch.Tensor:
    """1×1×H×W in [0, 1]: where the source has not changed since its output pixel was made — 1 where the change
    averaged over a 5×5 patch (so that noise cancels out; then absolute, mean over RGB) is below half of
    `threshold`, 0 above it and where the flow is not trusted. `reference` is the source as it was when each
    output pixel was last renewed, warped onto this frame (so slow changes add up until they count, rather than
    slipping under the threshold one frame at a time)."""
    if threshold <= 0:
        return torch.zeros_like(reliable)
    change = F.avg_pool2d(current - reference, 5, stride=1, padding=2, count_include_pad=False)
    change = change.abs().mean(1, keepdim=True)
    return ((threshold - change) / (threshold / 2)).clamp(0, 1) * reliable
