"""Options are dataclass fields, and a field's help text lives in its metadata, so that the API, the sidecar and
the command line read one list: a new option is one field, and `brushwork stylize` and `brushwork train` make
their flags from these. A field without help text is an API-only option."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import ConfigError


def option(default: Any = dataclasses.MISSING, help: str = "", nargs: str | None = None) -> Any:
    """A dataclass field with its command-line help (no default: a required flag; nargs: argparse's)."""
    metadata = {"help": help, **({"nargs": nargs} if nargs else {})}
    return dataclasses.field(default=default, metadata=metadata)


def help_text(f: dataclasses.Field) -> str:
    """The field's help text; empty for an API-only option."""
    return f.metadata.get("help", "")


SEED_RANGE = (-2**63, 2**64 - 1)  # what torch's generators take


def check_finite(options: Any) -> None:
    """Reject inf and NaN in any number an options dataclass holds (alone, in a list or in a dict): an infinite
    weight or learning rate would otherwise run to the end and write a black image. A seed outside SEED_RANGE
    would fail inside torch with a traceback."""
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        numbers = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        name = "--" + f.name.replace("_", "-") if help_text(f) else f.name
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise ConfigError(f"{name} must be a finite number, not {value}")
        if f.name == "seed" and isinstance(value, int) and not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
            raise ConfigError(f"{name} must be from {SEED_RANGE[0]} to {SEED_RANGE[1]}, not {value}")
