"""Typed exceptions: the API raises these, the CLI turns each into one line on stderr and exit code 2."""

import contextlib
import re
from collections.abc import Iterator


class BrushworkError(Exception):
    """Base class for every error brushwork reports to a user."""


class ImageError(BrushworkError):
    """An input image is missing, unreadable, corrupt, empty or in an unsupported format."""


class MaskError(BrushworkError):
    """Masks do not match the styles or the content."""


class ConfigError(BrushworkError):
    """An option is out of range, inconsistent with another, or unknown."""


class BackboneError(BrushworkError):
    """An unknown backbone or layer was asked for."""


class WeightsError(BrushworkError):
    """Weights are missing, corrupt, or do not fit the model."""


class SizeError(BrushworkError):
    """An image size is below what the backbone needs, or too large for this machine's memory."""


class OutputError(BrushworkError):
    """An output cannot be written where it was asked for."""


class DivergenceError(BrushworkError):
    """A loss or an image became non-finite (inf or NaN) during a run; nothing was written from it."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM at a step boundary, after saving what resumes it."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class VideoError(BrushworkError):
    """An input video is missing, not a video, has no video stream, or cannot be decoded."""


@contextlib.contextmanager
def out_of_memory(advice: str) -> Iterator[None]:
    """Raise a SizeError instead of an allocator's out-of-memory error (torch's OutOfMemoryError on a GPU, a
    RuntimeError on the CPU): the last line of defence where the memory guard's estimate fell short. Other errors
    pass."""
    try:
        yield
    except RuntimeError as e:
        text = str(e)
        if type(e).__name__ != "OutOfMemoryError" and "can't allocate memory" not in text \
                and "out of memory" not in text.lower():
            raise
        asked = re.search(r"tried to allocate ([\d.]+) ?(bytes|[KMG]iB)", text, re.IGNORECASE)
        amount = ""
        if asked:
            value, unit = float(asked.group(1)), asked.group(2)
            gib = value / 2**30 if unit == "bytes" else value / {"KiB": 2**20, "MiB": 2**10, "GiB": 1}[unit]
            amount = f" (an allocation of {gib:.1f} GiB failed)"
        raise SizeError(f"ran out of memory{amount}; {advice}") from e
