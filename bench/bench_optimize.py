"""Benchmark the optimize method on this machine and print markdown tables for bench/RESULTS.md.

  python bench/bench_optimize.py                 per-iteration table and end-to-end presets at 512 px
  python bench/bench_optimize.py --big           also the default preset at 2048 px (long: about an hour on 2 cores)
  python bench/bench_optimize.py --only-big      just that 2048 px run

Each measurement runs in its own subprocess so that peak memory (max RSS) belongs to that measurement alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs"
CONTENT, STYLE = PAIRS / "content" / "tubingen.jpg", PAIRS / "style" / "starry_night.jpg"


def matmul_peak() -> float:
    import torch

    a = torch.rand(2048, 2048)
    a @ a
    start, n = time.perf_counter(), 10
    for _ in range(n):
        a @ a
    return n * 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def iteration(backbone: str, size: int) -> dict:
    """Seconds, FLOPs and memory of one real iteration (objective, backward, optimizer step, projection onto
    valid images) of the optimize method with the backbone's defaults, at a square size."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from brushwork.methods.optimize import Objective, OptimizeOptions, build_nets, descend, style_targets

    opts = OptimizeOptions(backbone=backbone)
    nets = build_nets(opts, torch.device("cpu"))
    content, style = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
    objective = Objective(nets, opts, content, style_targets(nets, opts, [style], [1.0], False), [1.0], None)
    steps = descend(objective, content, 5, nets[0].model.pyramid_levels, opts)
    next(steps)
    with FlopCounterMode(display=False) as counter:
        next(steps)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        next(steps)
        times.append(time.perf_counter() - start)
    seconds = min(times)
    flops = counter.get_total_flops()
    return {"seconds": seconds, "gflop": flops / 1e9, "gflops": flops / seconds / 1e9}


def end_to_end(preset: str, size: int) -> dict:
    """A whole stylization of tubingen × starry_night, kept in out/ so that it can be looked at."""
    from brushwork.api import run
    from brushwork.io import save_image

    start = time.perf_counter()
    result = run(CONTENT, STYLE, preset=preset, size=size, quiet=True)
    Path("out").mkdir(exist_ok=True)
    save_image(result.image, Path("out") / f"bench_{preset}_{size}.png")
    return {"seconds": time.perf_counter() - start, "losses": result.stats["losses"],
            "scales": [(s["size"], s["iterations"], s["seconds"]) for s in result.stats["scales"]]}


def child(task: str, args: list[str]) -> None:
    out = iteration(args[0], int(args[1])) if task == "iteration" else end_to_end(args[0], int(args[1]))
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(out))


def measure(task: str, *args) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", task, *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", action="store_true", help="also run the default preset at 2048 px")
    parser.add_argument("--only-big", action="store_true", help="run only the default preset at 2048 px")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1:])
        return
    import torch

    peak = matmul_peak()
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"fp32 matmul peak {peak:.0f} GFLOP/s\n")
    print("| backbone | size | s / iteration | GFLOP / iteration | GFLOP/s | % of matmul peak | peak RSS GiB |")
    print("|---|---|---|---|---|---|---|")
    for backbone in () if args.only_big else ("vgg16-hed", "efficientnet-lite0"):
        for size in (256, 512, 1024):
            r = measure("iteration", backbone, size)
            if "error" in r:
                print(f"| {backbone} | {size}² | error: {r['error']} | | | | |")
                continue
            print(f"| {backbone} | {size}² | {r['seconds']:.3f} | {r['gflop']:.1f} | {r['gflops']:.0f} | "
                  f"{100 * r['gflops'] / peak:.0f}% | {r['peak_rss_gib']:.2f} |", flush=True)
    print("\n| preset | long side | end-to-end s | scales (size, iterations, s) | peak RSS GiB |")
    print("|---|---|---|---|---|")
    runs = [] if args.only_big else [("fast", 512), ("default", 512)]
    runs += [("default", 2048)] if args.big or args.only_big else []
    for preset, size in runs:
        r = measure("end_to_end", preset, size)
        if "error" in r:
            print(f"| {preset} | {size} | error: {r['error']} | | |")
            continue
        scales = "; ".join(f"{w}×{h}: {n} it, {s:.0f} s" for (w, h), n, s in r["scales"])
        print(f"| {preset} | {size} | {r['seconds']:.1f} | {scales} | {r['peak_rss_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
