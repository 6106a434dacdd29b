"""The training engine for feed-forward methods: one Fabric loop (loop.py) and deterministic image-folder data
(data.py). Each method builds its own TrainTask (its `training` hook in the method registry); recipes.py reads the
release recipes."""

from .loop import TrainConfig, TrainTask, train

__all__ = ["TrainConfig", "TrainTask", "train"]
