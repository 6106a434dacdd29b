"""brushwork: neural style transfer with one API and CLI for every method."""

from .api import run, stylize, stylize_file
from .backbones import backbone_names, create_backbone, describe_backbones
from .evaluation import EvalReport, evaluate
from .errors import (BackboneError, BrushworkError, ConfigError, DivergenceError, ImageError, Interrupted, MaskError,
                     OutputError, SizeError, WeightsError)
from .methods import Result, Step, method_names
from .version import __version__


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    return backbone_names()


def list_methods() -> list[str]:
    """Names of the registered methods."""
    return method_names()


__all__ = ["__version__", "BackboneError", "BrushworkError", "ConfigError", "DivergenceError", "EvalReport", "ImageError", "Interrupted", "MaskError",
           "OutputError", "Result", "SizeError", "Step", "WeightsError", "create_backbone", "describe_backbones",
           "evaluate", "list_backbones", "list_methods", "run", "stylize", "stylize_file"]
