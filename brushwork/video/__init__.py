"""Video: `stylize_video` runs any method over every frame of a clip with temporal consistency (job.py), on flow
from OpenCV's DIS (flow.py) and frames from PyAV (media.py); `evaluate_video` grades flicker (consistency.py).
Names are imported on first use, so that the command line can read VideoOptions without torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import attribute_loader
from .options import VideoOptions

_LAZY = {"VideoResult": "job", "cache_dir": "job", "stylize_video": "job", "VideoReport": "consistency",
         "evaluate_video": "consistency"}

if TYPE_CHECKING:
    from .consistency import VideoReport, evaluate_video
    from .job import VideoResult, cache_dir, stylize_video

__getattr__ = attribute_loader(__name__, _LAZY, globals())

__all__ = ["VideoOptions", "VideoReport", "VideoResult", "cache_dir", "evaluate_video", "stylize_video"]
