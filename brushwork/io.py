"""Images in and out: files, PIL images and tensors become RGB float32 in [0, 1], N×3×H×W; outputs are written
atomically (temp file, then rename) so a crash never leaves a half-written file."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, OutputError
from .lazy import lazy

torch = lazy("torch")
F = lazy("torch.nn.functional")
resources = lazy("brushwork.resources")
ImageLike = Union[str, os.PathLike, Image.Image, "torch.Tensor", np.ndarray]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
MAX_SIDE = 40_000
NAME_MAX = 255  # bytes in a file name, on every file system brushwork writes to
MAX_PIXELS = MAX_SIDE * MAX_SIDE  # refuse decompression bombs; far above anything we can stylize
LOAD_BYTES_PER_PIXEL = 40  # load_image's peak: the decoded image, its RGB copy and float32 array (36 measured)


def check_input_file(path: str | os.PathLike) -> Path:
    """Fail early, before any work, on an input that is missing, a folder or empty."""
    path = Path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
        empty = exists and not is_dir and path.stat().st_size == 0
    except OSError as e:  # a name too long for the file system, a folder that cannot be searched
        raise ImageError(f"cannot read {path}: {e.strerror or e}") from None
    if not exists:
        raise ImageError(f"image not found: {path}")
    if is_dir:
        raise ImageError(f"expected an image file, got a directory: {path}")
    if empty:
        raise ImageError(f"image file is empty: {path}")
    return path


def _open(path: Path) -> Image.Image:
    check_input_file(path)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        img = Image.open(path)  # the header alone: the pixels are decoded by load()
        width, height = img.size
        resources.check_fits(width * height * LOAD_BYTES_PER_PIXEL, torch.device("cpu"),
                             f"reading {path} ({width}×{height} px)", advice="give a smaller image")
        img.load()
    except UnidentifiedImageError:
        raise ImageError(f"not an image or unsupported format: {path}") from None
    except Image.DecompressionBombError:
        raise ImageError(f"image has too many pixels to read safely: {path}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"corrupt or truncated image: {path} ({e})") from None
    return ImageOps.exif_transpose(img)


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """H×W×3 float32 in [0,1]; alpha is composited over white, 16-bit and float modes keep their precision."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float32)
        scale = 65535.0 if a.max() > 255 or img.mode.startswith("I;16") else 255.0
        a = np.clip(a / scale, 0.0, 1.0)
        return np.repeat(a[..., None], 3, axis=2)
    if img.mode == "F":
        a = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(a[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    a = np.asarray(img.convert("RGB"), dtype=np.float32)
    a /= 255.0  # in place: a 40-megapixel photo is 480 MB a copy
    return a


UNIT_SLACK = 0.5  # how far outside [0, 1] a float image may stray (resampling overshoot) before it is refused


def _as_unit_floats(t: torch.Tensor) -> torch.Tensor:
    """uint8 as 0–255, uint16 as 0–65535, bool and floats as they are; other integers, and floats far outside
    [0, 1] (a 0–255 image, an ImageNet-normalized tensor), would clamp to a flat picture without a word."""
    if t.dtype in (torch.uint8, torch.uint16):
        return t.float() / (255.0 if t.dtype == torch.uint8 else 65535.0)
    if not (t.is_floating_point() or t.dtype == torch.bool):
        raise ImageError(f"expected an image of uint8, uint16 or floats in [0, 1], got "
                         f"{str(t.dtype).removeprefix('torch.')}")
    t = t.float()
    if t.numel() and (float(t.amin()) < -UNIT_SLACK or float(t.amax()) > 1 + UNIT_SLACK):
        raise ImageError(f"expected an image of floats in [0, 1], got values from {float(t.amin()):.4g} to "
                         f"{float(t.amax()):.4g}: scale it into [0, 1] (a 0–255 image: divide by 255)")
    return t


def _tensor_image(t: torch.Tensor) -> torch.Tensor:
    t = _as_unit_floats(t.detach())
    if t.dim() == 2:
        t = t[None]
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or t.shape[1] not in (1, 3):
        raise ImageError(f"expected an image tensor of shape 3×H×W or 1×3×H×W, got {tuple(t.shape)}")
    if t.shape[0] != 1:
        raise ImageError(f"expected one image, got a batch of {t.shape[0]}: stylize them one at a time, or with "
                         f"`brushwork batch`")
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.clamp(0.0, 1.0).contiguous()


def load_image(src: ImageLike) -> torch.Tensor:
    """Read a path, PIL image, numpy array (H×W×C) or tensor (1×3×H×W, 3×H×W or H×W) into 1×3×H×W float32;
    arrays and tensors hold uint8 (0–255), uint16 (0–65535), bool or floats in [0, 1]."""
    if not isinstance(src, (str, os.PathLike, Image.Image, np.ndarray, torch.Tensor)):
        raise ImageError(f"expected an image path, PIL image, numpy array or tensor, got {type(src).__name__}")
    if isinstance(src, torch.Tensor):
        t = _tensor_image(src)
    else:
        if isinstance(src, np.ndarray):
            if src.dtype == np.uint16:  # torch does little with uint16: as floats here
                src = src.astype(np.float32) / 65535.0
            elif not (src.dtype in (np.uint8, np.bool_) or np.issubdtype(src.dtype, np.floating)):
                raise ImageError(f"expected an image of uint8, uint16 or floats in [0, 1], got {src.dtype}")
            elif src.dtype != np.uint8:
                src = src.astype(np.float32)  # a copy: the caller's array must not be clamped in place below
            a = _as_unit_floats(torch.from_numpy(np.ascontiguousarray(src))).numpy()
            if a.ndim == 2:
                a = a[..., None]
            if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
                raise ImageError(f"expected an H×W×C image array, got shape {src.shape}")
            a = a[..., :3] if a.shape[2] != 1 else np.repeat(a, 3, axis=2)
        else:
            img = src if isinstance(src, Image.Image) else _open(Path(src))
            a = _pil_to_array(img)
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].clamp_(0.0, 1.0)
    if t.shape[-1] == 0 or t.shape[-2] == 0:
        raise ImageError("image has zero width or height")
    if not torch.isfinite(t).all():  # clamp keeps NaN, and a NaN pixel poisons every loss
        raise ImageError("the image holds NaN values")
    return t


def load_mask(src: ImageLike) -> torch.Tensor:
    """A mask as 1×1×H×W in [0,1]: white selects, black excludes, grey blends (soft masks)."""
    t = load_image(src)
    return (0.299 * t[:, 0:1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3]).clamp(0.0, 1.0)


def fit_long_side(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The (height, width) with the given long side and the same aspect ratio (at least 1 px each)."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


CHECKED_RESIZE_BYTES = 1 << 28  # resizes to more than this ask the memory guard first


def resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize to (height, width); a no-op at the same size. A resize too large for free memory
    is a SizeError, not an allocator's traceback: every path to a huge --size or --style-scale ends here, whatever
    the guards before it counted."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    needed = img.element_size() * img.shape[0] * img.shape[1] * size[0] * size[1]
    if needed > CHECKED_RESIZE_BYTES:
        resources.check_fits(needed, img.device, f"resizing an image to {size[1]}×{size[0]}")
    shrinking = size[0] < img.shape[-2] or size[1] < img.shape[-1]
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def square_cell(img: torch.Tensor, side: int) -> torch.Tensor:
    """The centre square resized to side × side: grid cells that line up whatever the images' aspect ratios."""
    h, w = img.shape[-2:]
    s = min(h, w)
    return resize(img[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s], (side, side))


def pad_for_stride(img: torch.Tensor, stride: int) -> torch.Tensor:
    """Pad the bottom and right edges by stride − 1 pixels (repeating the edge), so a network with that total
    stride returns at least the input's size; crop back with [..., :h, :w]. The pad is fixed rather than
    size-dependent so that traced and exported graphs keep dynamic heights and widths."""
    return F.pad(img, (0, stride - 1, 0, stride - 1), mode="replicate")


def to_pil(img: torch.Tensor) -> Image.Image:
    """The first image of an N×3×H×W tensor in [0,1] as an 8-bit RGB PIL image."""
    a = img[0].detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(a, "RGB")


def check_output_path(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = (),
                      suffixes: Collection[str] = tuple(OUTPUT_FORMATS), sidecar: bool = False) -> Path:
    """Fail early, before any work, if an output (and, with `sidecar`, its JSON sidecar) could not be written or
    would overwrite an input."""
    if not isinstance(path, (str, os.PathLike)):
        raise OutputError(f"the output must be a file path, not {type(path).__name__}")
    if not os.fspath(path):  # Path("") is ".", which would be called a folder
        raise OutputError("the output path is empty: give a file name")
    out = Path(path)
    try:
        return _check_output_path(out, inputs, suffixes, sidecar)
    except OSError as e:  # a name too long for the file system, a folder that cannot be searched
        raise OutputError(f"cannot write {out}: {e.strerror or e}") from None


def check_folder_named(path: str | os.PathLike) -> None:
    """An output folder (-o) that is an empty string would be the current folder, filled without being asked for."""
    if not os.fspath(path):
        raise OutputError("-o is empty: give an output folder (an empty path would be the current one)")


TEMP_NAME_EXTRA = len("..12345678.tmp")  # what atomic_write's temporary name adds to a file's name


def _check_output_path(out: Path, inputs: tuple[str | os.PathLike, ...], suffixes: Collection[str],
                       sidecar: bool) -> Path:
    longest = len(os.fsencode(out.name)) + TEMP_NAME_EXTRA + (len(".json") if sidecar else 0)
    if longest > NAME_MAX:
        raise OutputError(f"{out.name[:40]}… is too long a file name: its temporary file's would be {longest} "
                          f"bytes, over the {NAME_MAX} a file name can have")
    if out.is_dir():
        raise OutputError(f"{out} is a folder: give a file name")
    if out.exists() and not out.is_file():
        raise OutputError(f"{out} is not a regular file: give a file name")
    if out.suffix.lower() not in suffixes:
        raise OutputError(f"unsupported output format '{out.suffix or out.name}': use one of "
                          f"{', '.join(sorted(suffixes))}")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"output directory does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory is not writable: {parent}")
    targets = [out, *([sidecar_path(out)] if sidecar else [])]
    if sidecar and targets[1].is_dir():
        raise OutputError(f"{targets[1]} is a folder: {out}'s sidecar goes there")
    for target in targets:
        for src in inputs:
            if target.exists() and Path(src).exists() and target.resolve() == Path(src).resolve():
                raise OutputError(f"refusing to overwrite an input: {target}")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn a failed write of `path` (an OSError, or a writer's own I/O error such as safetensors' on a full disk)
    into an OutputError that names it; other errors pass."""
    try:
        yield
    except Exception as e:
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        if "I/O error" in str(e):
            raise OutputError(f"cannot write {path}: {str(e).splitlines()[0]}") from None
        raise


def atomic_write(path: Path, write) -> None:
    """Write to a temporary file beside `path`, then rename, so a crash never leaves half a file; a write that
    fails (a full disk, a read-only folder) is an OutputError. mkstemp makes the file private (0600); give it the
    permissions a plain open() would have."""
    with writing(path):
        fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def save_image(img: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write the image atomically in the format its extension names (PNG, JPEG or TIFF)."""
    out = check_output_path(path)
    fmt = OUTPUT_FORMATS[out.suffix.lower()]
    pil = to_pil(img)
    options = {"quality": quality, "subsampling": 0} if fmt == "JPEG" else {}
    atomic_write(out, lambda tmp: pil.save(tmp, format=fmt, **options))
    return out


def sidecar_path(path: str | os.PathLike) -> Path:
    """`out.png` → `out.png.json`: the record that lets a result be reproduced."""
    return Path(f"{path}.json")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(data: Any, indent: int | None = 2) -> str:
    """JSON that every reader takes: a NaN or infinite number (a metric with nothing to measure, a diverged loss)
    becomes null, where json.dumps would write NaN, which is no JSON."""
    return json.dumps(_finite(data), indent=indent, default=str, allow_nan=False)


def save_json(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write JSON atomically, pretty-printed."""
    out = Path(path)
    text = to_json(data) + "\n"
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return out
