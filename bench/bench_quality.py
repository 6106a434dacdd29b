"""Stylize content × style pairs with the optimize presets, grade them with `brushwork eval`'s metrics, and print
markdown tables (optionally writing them into bench/RESULTS.md): the yardstick for whether a change makes results
better or worse.

  python bench/bench_quality.py                                 every pair in ../shared/data/pairs (13 × 23)
  python bench/bench_quality.py --contents tubingen,lenna --styles starry_night,the_scream --results bench/RESULTS.md

Outputs go to out/bench_quality/PRESET-STAMP/CONTENT__STYLE.png with their sidecars, STAMP a hash of brushwork's
source: existing ones are reused, so an interrupted run resumes, and a change of code (a new default) starts afresh.
Each preset is graded by every embedded backbone, and the table marks the rows where a preset is graded by the
backbone it optimized ("own yardstick"), which flatters it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from datetime import date
from pathlib import Path

from brushwork import api, io, metrics
from brushwork.evaluation import evaluate_triples

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT.parent / "shared" / "data" / "pairs"
GRADERS = ("vgg16-hed", "efficientnet-lite0")
START, END = "<!-- bench_quality:start -->", "<!-- bench_quality:end -->"


def source_stamp() -> str:
    """A short hash of the package's source, so cached outputs are reused only by the code that made them: a
    preset's name stays when its defaults (or a backbone's layers) change."""
    digest = hashlib.sha256()
    package = ROOT / "brushwork"
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def stems(folder: Path, wanted: str | None) -> list[Path]:
    found = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    if not wanted:
        return list(found.values())
    missing = [w for w in wanted.split(",") if w not in found]
    if missing:
        sys.exit(f"not in {folder}: {', '.join(missing)}")
    return [found[w] for w in wanted.split(",")]


def stylize_all(preset: str, pairs: list[tuple[Path, Path]], size: int, out_dir: Path) -> list[tuple]:
    """(output, content, style, seconds) per pair, stylizing only what is not there yet."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for i, (content, style) in enumerate(pairs, 1):
        out = out_dir / f"{content.stem}__{style.stem}.png"
        if not (out.is_file() and io.sidecar_path(out).is_file()):
            api.stylize_file(content, style, out, preset=preset, size=size, quiet=True)
        seconds = json.loads(io.sidecar_path(out).read_text())["seconds"]["total"]
        print(f"  {preset} {i}/{len(pairs)} {out.name}: {seconds:.1f} s", file=sys.stderr, flush=True)
        done.append((out, content, style, seconds))
    return done


def summary_row(preset: str, grader: str, own: bool, report, seconds: float) -> str:
    s = report.set_scores
    cells = [f"{s['mean_' + k]:.3f}" for k in metrics.PAIR_METRICS] + [f"{s['frechet']:.1f}", f"{s['art_fid']:.1f}"]
    return f"| {preset} | {grader}{' (own yardstick)' if own else ''} | {' | '.join(cells)} | {seconds:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--contents", help="comma-separated content stems (default: all)")
    parser.add_argument("--styles", help="comma-separated style stems (default: all)")
    parser.add_argument("--presets", default="default,fast")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_quality")
    parser.add_argument("--results", type=Path, help="write the tables into this markdown file")
    args = parser.parse_args()

    contents, styles = stems(args.pairs / "content", args.contents), stems(args.pairs / "style", args.styles)
    pairs = [(c, s) for c in contents for s in styles]
    stamp = source_stamp()
    header = ("| preset | graded by | " + " | ".join(metrics.PAIR_METRICS) + " | frechet | art_fid | s / pair |\n|"
              + "---|" * (len(metrics.PAIR_METRICS) + 5))
    summary, detail = [header], []
    for preset in args.presets.split(","):
        made = stylize_all(preset, pairs, args.size, args.out / f"{preset}-{stamp}")
        backbone = json.loads(io.sidecar_path(made[0][0]).read_text())["config"]["backbone"]
        seconds = sum(m[3] for m in made) / len(made)
        for grader in GRADERS:
            started = time.perf_counter()
            report = evaluate_triples([m[:3] for m in made], backbone=grader, size=args.size)
            print(f"  graded {preset} with {grader} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            own = grader in backbone.split("+")
            summary.append(summary_row(preset, grader, own, report, seconds))
            if not own:
                detail += [f"| {preset} | {Path(r['content_image']).stem} × {Path(r['style_image']).stem} | "
                           + " | ".join(f"{r[k]:.3f}" for k in metrics.PAIR_METRICS) + " |" for r in report.rows]
    detail_header = ("| preset | pair | " + " | ".join(metrics.PAIR_METRICS) + " |\n|"
                     + "---|" * (len(metrics.PAIR_METRICS) + 2))
    command = "python bench/bench_quality.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"## Quality — {date.today().isoformat()}", "",
        f"Command: `{command.strip()}`", "",
        f"{len(contents)} contents × {len(styles)} styles at {args.size} px long side: "
        f"{', '.join(c.stem for c in contents)} × {', '.join(s.stem for s in styles)}.",
        "Means over the pairs; higher is better for ssim and ms_ssim, lower for the rest. Fréchet distance and "
        "art_fid are against the set of style images, on the grading backbone's pooled features (not Inception: "
        "compare them only within one grader). s / pair is the stylization time from the sidecars.", "",
        *summary, "", "Per pair, graded by the backbone the preset did not optimize:", "",
        detail_header, *detail])
    print(text)
    if args.results:
        old = args.results.read_text() if args.results.is_file() else ""
        block = f"{START}\n{text}\n{END}"
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        new = pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block + "\n"
        args.results.write_text(new)


if __name__ == "__main__":
    main()
