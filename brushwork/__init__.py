"""brushwork: neural style transfer with one API and CLI for every method."""

__version__ = "0.1.0"

from .api import run, stylize, stylize_file  # noqa: E402
from .backbones import backbone_names, create_backbone, describe_backbones  # noqa: E402
from .evaluation import EvalReport, evaluate  # noqa: E402
from .errors import (BackboneError, BrushworkError, ConfigError, ImageError, MaskError, OutputError,  # noqa: E402
                     SizeError, WeightsError)
from .methods import Result, Step, method_names  # noqa: E402


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    return backbone_names()


def list_methods() -> list[str]:
    """Names of the registered methods."""
    return method_names()


__all__ = ["BackboneError", "BrushworkError", "ConfigError", "EvalReport", "ImageError", "MaskError", "OutputError",
           "Result", "SizeError", "Step", "WeightsError", "create_backbone", "describe_backbones", "evaluate",
           "list_backbones", "list_methods", "run", "stylize", "stylize_file"]
