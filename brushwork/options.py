"""Options are dataclass fields, and a field's help text lives in its metadata, so that the API, the sidecar and
the command line read one list: a new option is one field, and `brushwork stylize` and `brushwork train` make
their flags from these. A field without help text is an API-only option."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from typing import Any

from .errors import ConfigError


def option(default: Any = dataclasses.MISSING, help: str = "", nargs: str | None = None) -> Any:
    """A dataclass field with its command-line help (no default: a required flag; nargs: argparse's)."""
    metadata = {"help": help, **({"nargs": nargs} if nargs else {})}
    return dataclasses.field(default=default, metadata=metadata)


def help_text(f: dataclasses.Field) -> str:
    """The field's help text; empty for an API-only option."""
    return f.metadata.get("help", "")


def label(f: dataclasses.Field) -> str:
    """How messages name an option: its flag (--style-weight), or the field's name for an API-only option."""
    return "--" + f.name.replace("_", "-") if help_text(f) else f.name


SEED_RANGE = (-2**63, 2**64 - 1)  # what torch's generators take
# No option means anything beyond this, and larger numbers overflow on the way (2.0 ** 2000 scales, a learning rate
# past float32's range, a size past a float's); seeds have their own range.
MAX_MAGNITUDE = 1e15


def field_type(hint: Any) -> Any:
    """The type a field holds when it is set: X for `X | None`."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _as_float(value: int | float) -> float:
    """float(value), with an int past a float's range as ±inf (which the finite check then names) rather than an
    OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _conform(value: Any, hint: Any, name: str) -> Any:
    """`value` as the type `hint` names (an int where a float is asked for becomes one, a path where a string is;
    a comma-separated string where a list of names is asked for is split, as on the command line), or a
    ConfigError that names the option."""
    if value is None and type(None) in typing.get_args(hint):
        return None
    hint = field_type(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is float and number:
        return _as_float(value)
    if hint is int and number and (isinstance(value, int) or value.is_integer()):
        return int(value)
    if hint in (bool, str) and isinstance(value, hint):
        return value
    if hint is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    if origin is list and args[0] is str and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if origin is list and isinstance(value, (list, tuple)):
        return [_conform(v, args[0], name) for v in value]
    if origin is dict and isinstance(value, dict):
        return {_conform(k, args[0], name): _conform(v, args[1], name) for k, v in value.items()}
    if hint not in (bool, int, float, str) and origin not in (list, dict):
        return value
    plain = {bool: "True or False", int: "a whole number", float: "a number", str: "a string"}
    wanted = plain[hint] if hint in plain else f"a {origin.__name__} of {' and '.join(a.__name__ for a in args)}"
    shown = repr(value) if len(repr(value)) <= 60 and "\n" not in repr(value) else f"a {type(value).__name__}"
    raise ConfigError(f"{name} must be {wanted}, not {shown}")


def from_text(text: str, hint: Any) -> Any:
    """A value for a field of type `hint` read from text as its command-line flag reads it (a manifest's cell):
    numbers, true/false, comma-separated lists. Text that does not parse stays text, for `check_values` to name."""
    hint = field_type(hint)
    word = text.strip().lower()
    try:
        if hint is bool and word in ("true", "false", "yes", "no", "1", "0"):
            return word in ("true", "yes", "1")
        if hint is int:
            return int(word)
        if hint is float:
            return float(word)
        if typing.get_origin(hint) is list and typing.get_args(hint)[0] is float:
            return [float(v) for v in word.split(",") if v.strip()]
    except ValueError:
        pass
    return text


def check_values(options: Any) -> None:
    """Give every option the type its field names (`_conform`), and reject inf and NaN in any number an options
    dataclass holds (alone, in a list or in a dict): an infinite weight or learning rate would otherwise run to the
    end and write a black image. A seed outside SEED_RANGE would fail inside torch with a traceback."""
    hints = typing.get_type_hints(type(options))
    for f in dataclasses.fields(options):
        flag = label(f)
        setattr(options, f.name, _conform(getattr(options, f.name), hints[f.name], flag))
        value = getattr(options, f.name)
        numbers = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise ConfigError(f"{flag} must be a finite number, not {value}")
        huge = [v for v in numbers if isinstance(v, (int, float)) and abs(v) > MAX_MAGNITUDE]
        if huge and f.name != "seed":
            shown = f"{huge[0]:g}" if isinstance(huge[0], float) else f"a {len(str(abs(huge[0])))}-digit number"
            raise ConfigError(f"{flag} is out of range ({shown}): no option means anything past {MAX_MAGNITUDE:g}")
        if f.name == "seed" and isinstance(value, int) and not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
            raise ConfigError(f"{flag} must be from {SEED_RANGE[0]} to {SEED_RANGE[1]}, not {value}")
