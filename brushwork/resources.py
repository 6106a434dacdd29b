"""Devices and memory: pick the device, and refuse sizes that cannot fit before spending minutes on them."""

from __future__ import annotations

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


def check_fits(needed: int, device: torch.device, what: str) -> None:
    free = available_memory(device)
    if needed > free:
        raise SizeError(f"{what} needs about {needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free on "
                        f"{device.type}; use a smaller --size")
