"""What a training run continued on another machine loses, by how it continues: one style network trains N steps,
then goes on for K more in four ways, and the table compares each one's loss with the uninterrupted run's.

  python bench/bench_continue.py                          classic starry_night, 96 px, batch 4, on this CPU
  python bench/bench_continue.py --arch mobile --steps 300 --more 100

The ways: exact (the full checkpoint, as `--resume` on the same machine), moments (exported fp16 weights and bf16
Adam second moments, what `tools/release.py collect` brings back), and exported weights alone with a fresh Adam,
settled at lr 0 first (the release's fallback) or not. Needs the kit (`make weights-kit`).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brushwork.train import train  # noqa: E402
from brushwork.train.loop import (checkpoint_from_weights, export_moments, export_weights,  # noqa: E402
                                  moments_path, read_exports)
from brushwork.train.recipes import build_kit_task, load_recipes, loop_config  # noqa: E402


WAYS = ("exact", "moments", "settle", "fresh")


def _losses(run: Path, after: int) -> list[float]:
    with (run / "metrics.csv").open(newline="") as f:
        return [float(r["total"]) for r in csv.DictReader(f) if int(r["step"]) > after]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="starry_night")
    parser.add_argument("--arch", choices=("classic", "mobile"), default="classic")
    parser.add_argument("--steps", type=int, default=400, help="steps before the break")
    parser.add_argument("--more", type=int, default=150, help="steps after it")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--settle", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kit", type=Path, default=ROOT / "kit")
    parser.add_argument("--ways", default=",".join(WAYS), help="which, comma-separated")
    args = parser.parse_args()
    if not set(args.ways.split(",")) <= set(WAYS):
        parser.error(f"--ways takes some of {', '.join(WAYS)}")
    name = args.recipe + ("-mobile" if args.arch == "mobile" else "")
    group = load_recipes(ROOT / "recipes", [name])
    work = Path(tempfile.mkdtemp(prefix="bench-continue-"))

    def config(out: Path, steps: int, **extra):
        return loop_config(group, out=str(out), steps=steps, batch_size=args.batch, size=args.size,
                           short_side=max(args.size, 288), log_every=1, checkpoint_every=10 ** 9,
                           preview_every=10 ** 9, quiet=True, device=args.device, workers=0,
                           **({"precision": "32"} if args.device == "cpu" else {}), **extra)

    first = work / "first"
    cfg = config(first, args.steps)
    task = build_kit_task(group, cfg, args.kit)
    train(task, cfg)
    exported = export_weights(task, first, cfg, args.steps, 0.0, args.device, suffix=".partial")
    export_moments(task, first, ".partial")
    stem = next(iter(task.exports))
    bare = work / "bare.safetensors"
    shutil.copy2(exported[0], bare)
    end = args.steps + args.more
    rows = []
    for way in args.ways.split(","):
        run = work / way
        cfg = config(run, end, resume=True, settle=args.settle if way == "settle" else 0)
        task = build_kit_task(group, cfg, args.kit)
        if way == "exact":
            shutil.copytree(first / "checkpoint", run / "checkpoint")
        else:
            source = exported[0] if way == "moments" else bare
            step, seconds, moments = read_exports(task, {stem: source})
            assert bool(moments) == (way == "moments") and moments_path(exported[0]).is_file()
            checkpoint_from_weights(run, task, cfg, step, seconds, moments)
        train(task, cfg)
        rows.append((way, _losses(run, args.steps)))
    before = _losses(first, args.steps - 50)
    print(f"{name}, {args.size} px, batch {args.batch}, {args.device}: {args.steps} steps, then {args.more} more "
          f"(settle {args.settle}); mean total loss of the last 50 steps before: "
          f"{_mean(before):.3g}\n")
    print(f"{'way':14s} {'first 10':>9s} {'worst':>9s} {'last 50':>9s}")
    for way, losses in rows:
        print(f"{way:14s} {_mean(losses[:10]):9.3g} {max(losses):9.3g} {_mean(losses[-50:]):9.3g}")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
