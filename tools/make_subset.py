"""Pack a training subset small enough to travel with the repository to a lent GPU machine (64 MiB in all):
every usable image of a folder, resized to a short side of 256–320 px and re-encoded as JPEG, taken in a seeded
shuffle until a byte budget is spent. Train on it with `--short-side` equal to the subset's side.
`tools/weights_kit.py` uses it to build the whole kit.

  python tools/make_subset.py ../shared/data/content data_subset/content --max-mb 34
  python tools/make_subset.py ../shared/data/style data_subset/style --max-mb 16
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

from PIL import Image

from brushwork.train.data import scan_images


def pack_subset(src: Path, dst: Path, short_side: int = 288, max_mb: float = 25.0, quality: int = 88,
                seed: int = 0) -> tuple[int, int, int]:
    """Write the subset into `dst`; returns (images kept, images usable, bytes written)."""
    files, warnings = scan_images(src, short_side)
    for line in warnings:
        print(line, file=sys.stderr)
    random.Random(seed).shuffle(files)
    dst.mkdir(parents=True, exist_ok=True)
    budget, used, kept = max_mb * 2 ** 20, 0, 0
    for i, path in enumerate(files):
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                scale = short_side / min(img.size)
                img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        except OSError as e:
            print(f"skipping {path}: {e}", file=sys.stderr)
            continue
        data = io.BytesIO()
        img.save(data, "JPEG", quality=quality)
        if used + data.tell() > budget:
            break
        (dst / f"{i:05d}.jpg").write_bytes(data.getvalue())
        used, kept = used + data.tell(), kept + 1
    return kept, len(files), used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--short-side", type=int, default=288)
    parser.add_argument("--max-mb", type=float, default=25.0)
    parser.add_argument("--quality", type=int, default=88)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 256 <= args.short_side <= 320:
        sys.exit("--short-side must be within 256-320 px")
    kept, usable, used = pack_subset(args.src, args.dst, args.short_side, args.max_mb, args.quality, args.seed)
    print(f"{args.dst}: {kept} of {usable} images, {used / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    main()
