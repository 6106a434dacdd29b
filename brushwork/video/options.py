"""The options of a video job (beside the method's own), importable without torch for the command line."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import ConfigError
from ..options import check_values, label, option

# The methods that read each consistent-mode option (None: every one); --per-frame reads none of them.
READ_BY = {"blend": ("adain", "fast", "gan", "transformer"), "smoothing": ("adain", "fast", "gan"),
           "temporal_weight": ("optimize",), "frame_iterations": ("optimize",), "still_threshold": None}


@dataclass
class VideoOptions:
    """How a video job runs, beside the method's own options (`size` among those: the output's long side, by
    default the source's)."""

    per_frame: bool = option(False, "stylize every frame on its own, without temporal consistency (flickers)")
    blend: float = option(0.5, "adain, fast, gan, transformer: weight of the previous output, warped by the flow, "
                               "where the flow holds")
    smoothing: float = option(0.8, "adain, fast, gan: share of the content statistics carried to the next frame")
    still_threshold: float = option(0.04, "a source change (mean over a 5×5 patch, RGB in [0, 1]) "
                                          "below which an output pixel keeps its colour; 0 = never keep")
    temporal_weight: float = option(50.0, "optimize: weight of the temporal loss")
    frame_iterations: int = option(40, "optimize: iterations for each frame after the first of a shot")
    codec: str = option("h264", "h264 | h265 | vp9")
    crf: int = option(18, "quality for h264/h265: 0 lossless … 51 worst")
    frames: int | None = option(None, "stop after N frames (a preview; the same command later goes on)")
    keep_frames: bool = option(False, "keep the folder of stylized frames after the video is written")

    def validate(self) -> None:
        check_values(self)
        checks = [(0 <= self.blend < 1, "--blend must be in [0, 1)"),
                  (0 <= self.smoothing < 1, "--smoothing must be in [0, 1)"),
                  (0 <= self.still_threshold <= 1, "--still-threshold must be in [0, 1]"),
                  (self.temporal_weight >= 0, "--temporal-weight must be >= 0"),
                  (self.frame_iterations >= 1, "--frame-iterations must be at least 1"),
                  (0 <= self.crf <= 51, "--crf must be 0 to 51"),
                  (self.frames is None or self.frames >= 1, "--frames must be at least 1")]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        from .media import check_codec

        check_codec(self.codec)

    def check_method(self, method: str) -> None:
        """Refuse a consistent-mode option set away from its default where nothing reads it (with --per-frame, or
        for a method that has no use for it): a flag that silently does nothing passes for one that works."""
        for f in fields(self):
            if f.name not in READ_BY or getattr(self, f.name) == f.default:
                continue
            flag, users = label(f), READ_BY[f.name]
            if self.per_frame:
                raise ConfigError(f"{flag} is for the consistent mode; --per-frame stylizes every frame on its own")
            if users is not None and method not in users:
                raise ConfigError(f"{flag} is for {', '.join(users)}, not {method}")
