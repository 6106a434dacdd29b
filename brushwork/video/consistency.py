"""How much a stylized video flickers: the warping error (Lai et al. 2018), the squared difference between each
output frame and the previous output warped onto it by the flow of the source, over the pixels where that flow is
trusted. The source's own warping error, by the same flow, is what no method can go below (lighting changes,
flow errors), so the report gives both and their ratio."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError
from . import flow, media


def warping_error(previous: torch.Tensor, current: torch.Tensor, pair: flow.FramePair) -> float:
    """Mean squared RGB difference (images in [0, 1]) between `current` and `previous` warped onto it by the
    pair's flow, over the pixels the pair trusts; NaN where it trusts none."""
    warped = flow.warp(previous, pair.back)
    weight = pair.reliable
    total = float(weight.sum()) * current.shape[1]
    return float((weight * (current - warped).pow(2)).sum()) / total if total else float("nan")


@dataclass
class VideoReport:
    """Per frame pair (frame t against t − 1, t in `pairs`) the warping error of the output and of the source;
    pairs that straddle a scene cut are left out. The means are None where no pair is left (JSON has no NaN)."""

    output: str
    source: str
    frames: int
    output_errors: list[float] = field(default_factory=list)
    source_errors: list[float] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)
    pairs: list[int] = field(default_factory=list)

    @staticmethod
    def _mean(values: list[float]) -> float | None:
        kept = [v for v in values if v == v]
        return sum(kept) / len(kept) if kept else None

    @property
    def output_mean(self) -> float | None:
        return self._mean(self.output_errors)

    @property
    def source_mean(self) -> float | None:
        return self._mean(self.source_errors)

    def as_dict(self) -> dict:
        out, src = self.output_mean, self.source_mean
        return {"output": self.output, "source": self.source, "frames": self.frames, "cuts": self.cuts,
                "warping_error": out, "source_warping_error": src,
                "relative_to_source": out / src if out is not None and src else None,
                "per_frame": {"frame": self.pairs, "output": self.output_errors, "source": self.source_errors}}


def evaluate_video(output: str | os.PathLike, source: str | os.PathLike) -> VideoReport:
    """The warping error of `output`, a stylized version of `source`, frame by frame, with the source's own,
    both by the flow of the source resized to the output's size."""
    out_info, src_info = media.probe(output), media.probe(source)
    size = out_info.display_size
    report = VideoReport(str(output), str(source), 0)
    previous = None
    outputs = media.read_frames(out_info, size)
    for index, src in enumerate(media.read_frames(src_info, size)):
        out = next(outputs, None)
        if out is None:
            break
        report.frames = index + 1
        if previous is not None:
            pair = flow.relate(previous[0], src)
            if pair.cut:
                report.cuts.append(index)
            else:
                report.pairs.append(index)
                report.output_errors.append(warping_error(previous[1], out, pair))
                report.source_errors.append(warping_error(previous[0], src, pair))
        previous = (src, out)
    if report.frames < 2:
        raise ConfigError("a warping error needs at least two frames in both videos")
    return report
