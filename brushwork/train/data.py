"""Training data: image folders read recursively, resized and randomly cropped as in the AdaIN paper (short side
512, crop 256). Every sample is a pure function of (seed, sample index), so a run resumes exactly at any step,
whatever the number of worker processes.

Two ways to feed a step: `RandomCrops` decodes files in DataLoader workers (any data size), and `ResidentCrops`
decodes every image once into a uint8 tensor on the training device and crops there, so a GPU never waits on
the host's JPEG decoding."""

from __future__ import annotations

import functools
import sys
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from .. import resources
from ..errors import ConfigError
from ..io import IMAGE_SUFFIXES

MIN_SIDE = 64  # smaller images are skipped as too tiny to train on
SHOWN_SKIPS = 5  # skipped files warned about one by one; the rest get one line


def _warn(message: str) -> None:
    print(f"brushwork: warning: {message}", file=sys.stderr)


def scan_images(root: str | Path, min_side: int) -> tuple[list[Path], list[str]]:
    """Image files under `root` (recursively, sorted) whose header reads and whose short side is at least
    `min_side`, and the warnings for those skipped: the first SHOWN_SKIPS files one each and the rest one line (a
    scraped set can hold thousands). The caller shows them once nothing else can refuse the run, so that a refusal is
    one error line; a folder with none usable is that error line itself."""
    folder = Path(root)
    if not folder.is_dir():
        raise ConfigError(f"not a folder: {folder}")
    kept, skipped = [], []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        try:
            with Image.open(path) as img:
                size = img.size
        except (OSError, ValueError) as e:
            skipped.append(f"{path}: not a readable image ({e.__class__.__name__})")
            continue
        if min(size) < min_side:
            skipped.append(f"{path}: {size[0]}×{size[1]} is smaller than {min_side} px on the short side")
            continue
        kept.append(path)
    if not kept:
        found = f"; all {len(skipped)} found were skipped, e.g. {skipped[0]}" if skipped else ""
        raise ConfigError(f"no usable images in {folder} (need .jpg/.png/... at least {min_side} px on the short "
                          f"side){found}")
    warnings = [f"skipping {reason}" for reason in skipped[:SHOWN_SKIPS]]
    if len(skipped) > SHOWN_SKIPS:
        warnings.append(f"skipping {len(skipped) - SHOWN_SKIPS} more in {folder}, unreadable or too small "
                        f"({len(kept)} kept)")
    return kept, warnings


class RandomCrops(Dataset):
    """Sample k: the image at position k mod n of the permutation for epoch k // n, with its short side resized
    to `short_side` and a random `size`×`size` crop, both seeded by (seed, k)."""

    def __init__(self, files: list[Path], size: int = 256, short_side: int = 512, seed: int = 0,
                 warnings: list[str] | None = None):
        if short_side < size:
            raise ConfigError(f"--short-side {short_side} must be at least the crop's --size {size}: images are "
                              f"resized to it, then cropped")
        resources.check_fits(3 * short_side ** 2, torch.device("cpu"), f"an image resized to --short-side {short_side}",
                             "at least", "use a smaller --short-side")
        self.files, self.size, self.short_side, self.seed = files, size, short_side, seed
        self.warnings = warnings or []  # scan_images's, for the training loop to show as it starts
        self.failed: set[Path] = set()

    @classmethod
    def of_folder(cls, root: str | Path, size: int, short_side: int, seed: int) -> RandomCrops:
        """Crops of the usable images under `root` (scan_images), its warnings kept for the loop to show."""
        files, warnings = scan_images(root, MIN_SIDE)
        return cls(files, size, short_side, seed, warnings)

    def show_warnings(self) -> None:
        for line in self.warnings:
            _warn(line)

    def __len__(self) -> int:
        return 2 ** 62

    @functools.lru_cache(maxsize=2)
    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.files))

    def __getitem__(self, k: int) -> torch.Tensor:
        epoch, pos = divmod(k, len(self.files))
        order = self._order(epoch)
        for shift in range(len(self.files)):
            path = self.files[order[(pos + shift) % len(self.files)]]
            try:
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    w, h = img.size
                    scale = self.short_side / min(w, h)
                    img = img.resize((max(self.short_side, round(w * scale)), max(self.short_side, round(h * scale))),
                                     Image.Resampling.BILINEAR, reducing_gap=3.0)
            except (OSError, ValueError) as e:
                if path not in self.failed:
                    self.failed.add(path)
                    _warn(f"skipping {path}: cannot decode it ({e.__class__.__name__})")
                continue
            rng = np.random.default_rng([self.seed, k, 1])
            x = int(rng.integers(0, img.size[0] - self.size + 1))
            y = int(rng.integers(0, img.size[1] - self.size + 1))
            crop = np.asarray(img.crop((x, y, x + self.size, y + self.size)), dtype=np.float32) / 255.0
            return torch.from_numpy(crop).permute(2, 0, 1).contiguous()
        raise ConfigError("no image in the training folder could be decoded")

    def stream(self, batch_size: int, first_step: int, workers: int, rank: int = 0, world: int = 1
               ) -> Iterator[torch.Tensor]:
        """An endless stream of batches (on the CPU) starting at `first_step`."""
        loader = DataLoader(self, batch_size=batch_size, sampler=StepSampler(first_step, batch_size, rank, world),
                            num_workers=workers, persistent_workers=workers > 0, drop_last=True)
        return iter(loader)


class ResidentCrops:
    """The images of a RandomCrops, each resized to its short side and centre-cropped to a square, held as one
    N×3×S×S uint8 tensor on `device` (a GPU: S=288 takes 250 KB an image). Step s takes images from the same
    per-epoch shuffle as RandomCrops and crop offsets seeded by (seed, sample index), gathered in one indexing
    operation on the device; batches come out channels-last."""

    def __init__(self, crops: RandomCrops, device: torch.device | str = "cpu", threads: int = 8):
        self.size, self.seed, side = crops.size, crops.seed, crops.short_side
        resources.check_fits(3 * side ** 2 * len(crops.files), torch.device(device),
                             f"{len(crops.files)} images of {side}×{side} px held on {torch.device(device).type}",
                             advice="use a smaller --short-side, or --data disk")

        def decode(path: Path) -> np.ndarray | None:
            try:
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    scale = side / min(img.size)
                    w, h = max(side, round(img.width * scale)), max(side, round(img.height * scale))
                    img = img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0)
                    x, y = (w - side) // 2, (h - side) // 2
                    return np.asarray(img.crop((x, y, x + side, y + side)), dtype=np.uint8)
            except (OSError, ValueError) as e:
                _warn(f"skipping {path}: cannot decode it ({e.__class__.__name__})")
                return None

        with ThreadPoolExecutor(threads) as pool:
            arrays = [a for a in pool.map(decode, crops.files) if a is not None]
        if not arrays:
            raise ConfigError("no image in the training folder could be decoded")
        self.data = torch.from_numpy(np.stack(arrays)).to(device)  # N×S×S×3
        self.files = len(arrays)

    @functools.lru_cache(maxsize=2)
    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.files)

    def batch(self, first_sample: int, batch_size: int) -> torch.Tensor:
        """Samples first_sample … first_sample + batch_size − 1 as a B×3×size×size float batch in [0, 1]."""
        ks = np.arange(first_sample, first_sample + batch_size)
        epochs, positions = np.divmod(ks, self.files)
        images = np.array([self._order(int(e))[p] for e, p in zip(epochs, positions)])
        room = self.data.shape[1] - self.size + 1
        offsets = np.random.default_rng([self.seed, first_sample, 2]).integers(0, room, size=(batch_size, 2))
        plan = torch.from_numpy(np.column_stack([images, offsets]).astype(np.int64))
        device = self.data.device
        if device.type == "cuda":  # a pinned, asynchronous copy: a pageable one would wait for the GPU to go idle
            plan = plan.pin_memory().to(device, non_blocking=True)
        span = torch.arange(self.size, device=device)
        rows, cols = plan[:, 1:2] + span, plan[:, 2:3] + span
        crops = self.data[plan[:, 0, None, None], rows[:, :, None], cols[:, None, :]]  # B×size×size×3
        return crops.permute(0, 3, 1, 2).float().div_(255.0)

    def stream(self, batch_size: int, first_step: int, workers: int = 0, rank: int = 0, world: int = 1
               ) -> Iterator[torch.Tensor]:
        """An endless stream of batches on the data's device, in StepSampler's order of samples."""
        step = first_step
        while True:
            yield self.batch((step * world + rank) * batch_size, batch_size)
            step += 1


class StepSampler(Sampler[int]):
    """Sample indices forever: step s on rank r of w takes samples (s·w + r)·B … (s·w + r)·B + B − 1, so every
    rank sees different images and resuming at step s continues the exact sequence."""

    def __init__(self, first_step: int, batch_size: int, rank: int = 0, world: int = 1):
        self.first_step, self.batch_size, self.rank, self.world = first_step, batch_size, rank, world

    def __iter__(self) -> Iterator[int]:
        step = self.first_step
        while True:
            base = (step * self.world + self.rank) * self.batch_size
            yield from range(base, base + self.batch_size)
            step += 1

    def __len__(self) -> int:
        return 2 ** 62
