"""The optimize method's memory guard against measured peaks: estimate_bytes beside the peak resident memory of one
scale, each row in a fresh process.

  python bench/bench_guard.py                                   the default rows (about 14 minutes on 2 cores)
  python bench/bench_guard.py --rows 1024x768:lbfgs:55          L-BFGS with its 50-pair history full

A row is WIDTHxHEIGHT:OPTIMIZER:ITERATIONS. The image is tubingen × starry_night resized to that size, optimized at
one scale with the default losses; the peak is VmHWM less the resident memory after a warm-up run has loaded the
network, so it is what the guard plans for.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench_large import _status

PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs"
ROWS = "512x384:adam:2,1024x768:adam:2,1024x768:lbfgs:2,1024x768:lbfgs:25,1024x768:lbfgs:55"


def child(width: int, height: int, optimizer: str, iterations: int) -> dict:
    import torch

    from brushwork import io
    from brushwork.api import run
    from brushwork.methods.optimize import OptimizeOptions, build_nets, estimate_bytes

    content = io.resize(io.load_image(PAIRS / "content" / "tubingen.jpg"), (height, width))
    style = io.resize(io.load_image(PAIRS / "style" / "starry_night.jpg"), (height, width))
    run(content[..., :64, :64], style, size=64, scales=1, iterations=1, quiet=True)  # load the network
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM restarts from here
    base = _status("VmRSS")
    run(content, style, size=width, scales=1, iterations=iterations, optimizer=optimizer, quiet=True)
    measured = _status("VmHWM") - base
    opts = OptimizeOptions(optimizer=optimizer)
    estimate = estimate_bytes(build_nets(opts, torch.device("cpu")), height, width, opts, 1, iterations=iterations)
    return {"measured": measured / 2**30, "estimate": estimate / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rows", default=ROWS)
    args = parser.parse_args()
    if args.child:
        size, optimizer, iterations = args.child.split(":")
        width, height = map(int, size.split("x"))
        print(json.dumps(child(width, height, optimizer, int(iterations))))
        return
    print("| optimizer | iterations | size | measured GiB | estimate GiB | estimate / measured |")
    print("|---|---|---|---|---|---|")
    for row in args.rows.split(","):
        size, optimizer, iterations = row.split(":")
        done = subprocess.run([sys.executable, __file__, "--child", row], capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {optimizer} | {iterations} | {size.replace('x', '×')} | {r['measured']:.2f} | {r['estimate']:.2f} | "
              f"{r['estimate'] / r['measured']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
