"""brushwork: neural style transfer with one API and CLI for every method.

The names below are imported on first use (PEP 562), so that `import brushwork.cli` does not import torch before
the command line needs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (BackboneError, BrushworkError, ConfigError, DivergenceError, ImageError, Interrupted, MaskError,
                     OutputError, SizeError, VideoError, WeightsError)
from .lazy import attribute_loader
from .version import __version__

_LAZY = {"run": "api", "stylize": "api", "stylize_file": "api", "create_backbone": "backbones",
         "describe_backbones": "backbones", "EvalReport": "evaluation", "evaluate": "evaluation",
         "Result": "methods", "Step": "methods", "batch": "cluster"}

if TYPE_CHECKING:
    from .api import run, stylize, stylize_file
    from .backbones import create_backbone, describe_backbones
    from .cluster import batch
    from .evaluation import EvalReport, evaluate
    from .methods import Result, Step


__getattr__ = attribute_loader(__name__, _LAZY, globals())


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    from .backbones import backbone_names

    return backbone_names()


def list_methods() -> list[str]:
    """Names of the registered methods."""
    from .methods import method_names

    return method_names()


__all__ = ["__version__", "BackboneError", "BrushworkError", "ConfigError", "DivergenceError", "EvalReport", "batch",
           "ImageError", "Interrupted", "MaskError", "OutputError", "Result", "SizeError", "Step", "VideoError",
           "WeightsError", "create_backbone", "describe_backbones", "evaluate", "list_backbones", "list_methods", "run",
           "stylize", "stylize_file"]
