"""Devices and memory: pick the device, and refuse sizes that cannot fit before spending minutes on them."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

import torch

from .errors import ConfigError, SizeError


def resolve_device(name: str) -> torch.device:
    """auto → cuda when available, else cpu; an explicit device that is absent is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device '{name}'; use auto, cpu or cuda")
    return torch.device(name)


def available_memory(device: torch.device) -> int:
    """Bytes that can still be allocated on the device (MemAvailable on the CPU)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def _gib(n: float) -> str:
    """Bytes in GiB as people read them: 12.3, 45,678, or 3.2e+25 for what no machine has."""
    gib = n / 2**30
    return f"{gib:.1f}" if gib < 1000 else f"{gib:,.0f}" if gib < 1e9 else f"{gib:.1e}"


def check_fits(needed: int, device: torch.device, what: str, bound: str = "about",
               advice: str = "use a smaller --size") -> None:
    """Refuse `needed` bytes that exceed free memory; `bound` says what the number is: "about" for an estimate,
    "at least" for a floor."""
    free = available_memory(device)
    if needed > free:
        raise SizeError(f"{what} needs {bound} {_gib(needed)} GiB but only {free / 2**30:.1f} GiB is free on "
                        f"{device.type}; {advice}")


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def release_freed_memory() -> None:
    """Hand memory freed by tensors back to the OS (glibc's malloc_trim). Between tiles this keeps a process's
    resident size at what the next tile needs: otherwise glibc keeps the previous tiles' freed buffers, measured
    here at about twice the live memory of a tiled run (tests/test_tiling.py). A no-op without glibc."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)
