"""The picture bench/TUNING.md asks for: for the five shared references a row of content, style, the classic
neural-style result and ours; then, for the other benchmark photos, the photo and ours with four styles (the style
images head that block).

  python bench/grid_optimize.py                                      the default preset at 384 px
  python bench/grid_optimize.py --preset quality --contents brad_pitt,golden_gate --out out/grid_quality.png

Outputs are stylized into out/bench_quality/PRESET-STAMP/ (the cache bench_quality.py uses, so its runs with the
same code are reused) and the grid is written to --out. Neither is committed: they derive from ../shared/data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from brushwork import api, io
from bench_quality import source_stamp
from tune_optimize import DATA, REFERENCES, grid

ROOT = Path(__file__).resolve().parents[1]
OTHERS = "brad_pitt,golden_gate,lenna,chicago,flowers,hoovertowernight,sailboat,newyork"
STYLES = "starry_night,the_scream,composition_vii,sketch"


def image_path(folder: Path, stem: str) -> Path:
    found = sorted(folder.glob(f"{stem}.*"))
    if not found:
        sys.exit(f"not in {folder}: {stem}")
    return found[0]


def stylized(content: Path, style: Path, preset: str, size: int, folder: Path) -> Path:
    out = folder / f"{content.stem}__{style.stem}.png"
    if not (out.is_file() and io.sidecar_path(out).is_file()):
        out.parent.mkdir(parents=True, exist_ok=True)
        result = api.stylize_file(content, style, out, preset=preset, size=size, quiet=True)
        print(f"{out.name}: {result.stats['seconds']['total']:.0f} s", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--contents", default=OTHERS, help="photos for the content × style block")
    parser.add_argument("--styles", default=STYLES, help="the four (or more) styles of that block")
    parser.add_argument("--cache", type=Path, default=ROOT / "out" / "bench_quality")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "grid_default.png")
    args = parser.parse_args()
    pairs, styles = DATA / "pairs", [image_path(DATA / "pairs" / "style", s) for s in args.styles.split(",")]
    tubingen = pairs / "content" / "tubingen.jpg"
    folder = args.cache / f"{args.preset}-{source_stamp()}"
    rows = []
    for stem, reference in REFERENCES.items():
        style = image_path(pairs / "style", stem)
        ours = stylized(tubingen, style, args.preset, args.size, folder)
        rows.append([io.load_image(p) for p in (tubingen, style, DATA / "reference" / reference, ours)])
    blank = torch.ones(1, 3, 8, 8)
    rows.append([blank] + [io.load_image(s) for s in styles])
    for stem in args.contents.split(","):
        content = image_path(pairs / "content", stem)
        rows.append([io.load_image(content)] + [io.load_image(stylized(content, s, args.preset, args.size,
                                                                         folder)) for s in styles])
    grid(rows, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
