"""The method registry: every method takes the same inputs (content, styles, blend weights, masks, options) and
returns the same Result, so the API, the CLI and shared features (colour, masks, sidecars) are written once.
Importing this package registers every method; the shared types live in base.py, the shared steps in prepare.py."""

from . import adain, fast, gan, optimize, transformer  # noqa: F401  (each registers itself)
from .base import (COLOR_MODES, Callback, Capabilities, CommonOptions, ExportSignature, FeedForwardOptions, MethodSpec,
                   Models, Result, Step, Temporal, Training, get_method, method_names, method_specs, register_method)

__all__ = ["COLOR_MODES", "Callback", "Capabilities", "CommonOptions", "ExportSignature", "FeedForwardOptions",
           "MethodSpec", "Models", "Result", "Step", "Temporal", "Training", "get_method", "method_names",
           "method_specs", "register_method"]
