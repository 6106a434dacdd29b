"""Training for the feed-forward methods: one Fabric loop (loop.py), deterministic image-folder data (data.py) and
one task per method."""

from .adain import adain_task
from .fast import FastStyle, fast_task
from .loop import TrainConfig, TrainTask, train

__all__ = ["FastStyle", "TrainConfig", "TrainTask", "adain_task", "fast_task", "train"]
