"""The README gallery: every trained model beside the optimize method's default on the benchmark photos, as small
JPEGs (the issue's budget: 2 MB in all).

  python tools/gallery.py                         the shipped models (brushwork/models/) into docs/gallery/
  python tools/gallery.py --models DIR --out out/gallery      a loan's files, to look at before they ship

fast.jpg: one row per style with a classic model: the style, then per photo the optimize result, the classic
network's and the mobile one's when it ships. arbitrary.jpg: one row per photo and style: the style, the photo,
optimize, then adain, gan and transformer where they ship. Optimize results are cached in out/gallery-cache (they
take about a minute each here), so a rerun after new weights only runs the networks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brushwork import api, io  # noqa: E402
from brushwork.weights import read_safetensors  # noqa: E402

PHOTOS = ("tubingen", "brad_pitt")
ARBITRARY_STYLES = ("starry_night", "the_scream", "composition_vii", "la_muse")
ARBITRARY = ("adain-vgg16-hed", "gan-vgg16-hed", "transformer-small")  # file stems, in column order


def _optimize(photo: Path, style: Path, size: int, iterations: int | None, cache: Path) -> torch.Tensor:
    key = cache / f"{photo.stem}__{style.stem}__{size}__{iterations or 'default'}.png"
    if not key.is_file():
        extra = {"iterations": iterations} if iterations else {}
        image = api.run(str(photo), str(style), method="optimize", size=size, quiet=True, **extra).image
        cache.mkdir(parents=True, exist_ok=True)
        io.save_image(image, key)
    return io.load_image(key)


def build(models: Path, pairs: Path, out: Path, size: int, cache: Path, iterations: int | None = None,
          photos: tuple[str, ...] = PHOTOS, styles: tuple[str, ...] = ARBITRARY_STYLES) -> list[Path]:
    """Write the gallery JPEGs for the model files in `models`; returns them."""
    files = {p.stem: (p, read_safetensors(p)[1]) for p in sorted(models.glob("*.safetensors"))}
    photo_files = [pairs / "content" / f"{name}.jpg" for name in photos]
    blank = torch.ones(1, 3, size, size)
    written = []
    fast_rows = []
    for stem, (path, meta) in files.items():
        if meta.get("method") != "fast" or meta.get("arch", "classic") != "classic":
            continue
        style = pairs / "style" / meta["style"]
        mobile = files.get(f"{stem}-mobile")
        row = [io.square_cell(io.load_image(style), size)]
        for photo in photo_files:
            row.append(io.square_cell(_optimize(photo, style, size, iterations, cache), size))
            row.append(io.square_cell(api.run(str(photo), method="fast", model=str(path), size=size).image, size))
            row.append(io.square_cell(api.run(str(photo), method="fast", model=str(mobile[0]), size=size).image, size)
                       if mobile else blank)
        fast_rows.append(torch.cat(row, -1))
    arbitrary = [files[stem] for stem in ARBITRARY if stem in files]
    arbitrary_rows = []
    for style_name in styles if arbitrary else ():
        style = pairs / "style" / f"{style_name}.jpg"
        for photo in photo_files:
            row = [io.square_cell(io.load_image(style), size), io.square_cell(io.load_image(photo), size),
                   io.square_cell(_optimize(photo, style, size, iterations, cache), size)]
            for path, meta in arbitrary:
                row.append(io.square_cell(api.run(str(photo), str(style), method=meta["method"], model=str(path),
                                                  size=size).image, size))
            arbitrary_rows.append(torch.cat(row, -1))
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("fast.jpg", fast_rows), ("arbitrary.jpg", arbitrary_rows)):
        if rows:
            target = out / name
            io.save_image(torch.cat(rows, -2), target, quality=80)
            written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "brushwork" / "models")
    parser.add_argument("--pairs", type=Path, default=ROOT.parent / "shared" / "data" / "pairs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    parser.add_argument("--size", type=int, default=160, help="each cell's side in pixels")
    parser.add_argument("--max-mb", type=float, default=2.0, help="the gallery's budget")
    parser.add_argument("--cache", type=Path, default=ROOT / "out" / "gallery-cache")
    args = parser.parse_args()
    written = build(args.models, args.pairs, args.out, args.size, args.cache)
    total = sum(p.stat().st_size for p in written)
    for p in written:
        print(f"{p} ({p.stat().st_size / 1024:.0f} KiB)")
    if not written:
        print(f"gallery: no models in {args.models}", file=sys.stderr)
        return 2
    if total > args.max_mb * 2 ** 20:
        print(f"gallery: {total / 2 ** 20:.2f} MB is over the {args.max_mb} MB budget: lower --size",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
