"""Options are dataclass fields, and a field's help text lives in its metadata, so that the API, the sidecar and
the command line read one list: a new option is one field, and `brushwork stylize` and `brushwork train` make
their flags from these. A field without help text is an API-only option."""

from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any = dataclasses.MISSING, help: str = "", nargs: str | None = None) -> Any:
    """A dataclass field with its command-line help (no default: a required flag; nargs: argparse's)."""
    metadata = {"help": help, **({"nargs": nargs} if nargs else {})}
    return dataclasses.field(default=default, metadata=metadata)


def help_text(f: dataclasses.Field) -> str:
    """The field's help text; empty for an API-only option."""
    return f.metadata.get("help", "")
