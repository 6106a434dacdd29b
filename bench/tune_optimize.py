"""Tuning the optimize method against the classic results: stylize the reference pairs with a set of options, grade
them beside the classic neural-style outputs with a backbone that made neither, and draw a comparison grid.

  python bench/tune_optimize.py --name default
  python bench/tune_optimize.py --name deep-light --set 'style_weights={"relu5_1": 0.2}'
  python bench/tune_optimize.py --name noise --set 'init="noise"' --contents golden_gate,brad_pitt

Outputs go to out/tuning/NAME/ (reused when present, so a run resumes); the table row is appended to
out/tuning/results.md and the grid is out/tuning/NAME.png: content, style, classic (where there is one), ours.
bench/TUNING.md records what was tried and what was kept.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

import torch

from brushwork import api, io
from brushwork.evaluation import evaluate_triples

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
REFERENCES = {"starry_night": "tubingen_starry.png", "the_scream": "tubingen_scream.png",
              "seated-nude": "tubingen_seated_nude.png", "shipwreck": "tubingen_shipwreck.png",
              "composition_vii": "tubingen_composition_vii.png"}
KEYS = ("gram", "content", "ssim")


def parse_settings(items: list[str]) -> dict:
    """KEY=VALUE pairs with Python literal values."""
    settings = {}
    for item in items:
        key, value = item.split("=", 1)
        settings[key] = ast.literal_eval(value)
    return settings


def pairs_for(contents: str | None, styles: str | None) -> list[tuple[Path, Path, Path | None]]:
    """(content, style, classic result or None): by default tubingen with the five reference styles."""
    names = (contents or "tubingen").split(",")
    style_names = (styles or ",".join(REFERENCES)).split(",")
    out = []
    for c in names:
        for s in style_names:
            style = next((DATA / "pairs" / "style").glob(f"{s}.*"))
            ref = DATA / "reference" / REFERENCES[s] if c == "tubingen" and s in REFERENCES else None
            out.append((DATA / "pairs" / "content" / f"{c}.jpg", style, ref))
    return out


def grade(triples: list[tuple], size: int, backbone: str) -> list[dict]:
    return evaluate_triples(triples, backbone, None, size).rows


def grid(rows: list[list[torch.Tensor]], path: Path, height: int = 192) -> None:
    cells = []
    for row in rows:
        scaled = [io.resize(t, (height, round(t.shape[-1] * height / t.shape[-2]))) for t in row]
        cells.append(torch.cat(scaled, dim=-1))
    width = max(r.shape[-1] for r in cells)
    cells = [torch.nn.functional.pad(r, (0, width - r.shape[-1]), value=1.0) for r in cells]
    io.save_image(torch.cat(cells, dim=-2), path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--set", action="extend", nargs="+", default=[],
                        help="option overrides, KEY=PYTHON_LITERAL (repeat --set or list several)")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--contents")
    parser.add_argument("--styles")
    parser.add_argument("--grader", default="efficientnet-lite0")
    args = parser.parse_args()
    settings = parse_settings(args.set)
    out_dir = ROOT / "out" / "tuning" / args.name
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = pairs_for(args.contents, args.styles)
    ours, seconds = [], []
    for content, style, _ in pairs:
        out = out_dir / f"{content.stem}__{style.stem}.png"
        if not out.is_file():
            started = time.perf_counter()
            api.stylize_file(content, style, out, preset=args.preset, size=args.size, quiet=True, **settings)
            print(f"{out.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        seconds.append(json.loads(io.sidecar_path(out).read_text())["seconds"]["total"])
        ours.append(out)
    ours_rows = grade([(o, c, s) for o, (c, s, _) in zip(ours, pairs)], args.size, args.grader)
    refs = [(r, c, s) for c, s, r in pairs if r is not None]
    ref_rows = grade(refs, args.size, args.grader) if refs else []
    lines = []
    for label, rows in (("classic", ref_rows), (args.name, ours_rows)):
        if not rows:
            continue
        means = {k: sum(r[k] for r in rows) / len(rows) for k in KEYS}
        per_pair = "; ".join(f"{Path(r['style_image']).stem} {r['gram']:.3f}/{r['content']:.3f}/{r['ssim']:.3f}"
                             for r in rows)
        extra = f" | {sum(seconds) / len(seconds):.0f} s" if label == args.name else " | -"
        lines.append(f"| {label} | {len(rows)} | " + " | ".join(f"{means[k]:.3f}" for k in KEYS) + extra +
                     f" | {per_pair} |")
    print("| run | pairs | gram | content | ssim | s / pair | per pair (gram/content/ssim) |")
    print("\n".join(lines))
    with (ROOT / "out" / "tuning" / "results.md").open("a") as f:
        f.write(f"{args.name}: {json.dumps(settings)}\n" + "\n".join(lines) + "\n")
    rows = []
    for (content, style, ref), out in zip(pairs, ours):
        row = [io.load_image(content), io.load_image(style)] + ([io.load_image(ref)] if ref else []) + \
              [io.load_image(out)]
        rows.append(row)
    grid(rows, ROOT / "out" / "tuning" / f"{args.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
