"""Print-size images: time, peak memory and seam score of each method at 4K (and larger) on the shared pairs.

  python bench/bench_large.py --methods adain,fast --adain-model runs/adain/adain.safetensors \
      --fast-model runs/cpu-classic/fast.safetensors --pairs tubingen:starry_night,golden_gate:the_scream
  python bench/bench_large.py --methods adain --size 7680 --pairs tubingen:starry_night      # 8K
  python bench/bench_large.py --methods optimize --set iterations=10                        # a short optimize run
  python bench/bench_large.py --methods gan,transformer --gan-model G --transformer-model T --set tile=1024

Every run is a fresh process, so its peak resident memory (VmHWM, the whole process: Python, torch, weights and
the run) is its own. The seam score is metrics.seam_score at the seam lines the sidecar records; `--control` also
stylizes the whole image at once (where it fits) and scores it at the same lines, for comparison. Lines along which
the content itself scores above metrics.EDGE_LINE (a straight edge of the photo runs there) are listed, and the
score at the other lines is given beside (metrics.seam_report). Outputs go to
out/large/ (not committed: they derive from ../shared/data).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pairs"
FEED_FORWARD = ("adain", "fast", "gan", "transformer")


def _status(key: str) -> int:
    line = next(line for line in open("/proc/self/status") if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024


def child(job: dict) -> dict:
    """One stylization in this process: seconds, peak memory, size, tiling and seam scores."""
    from brushwork import api, evaluation, io, metrics

    started = time.perf_counter()
    result = api.stylize_file(job["content"], job["style"], job["output"], method=job["method"], size=job["size"],
                              quiet=True, **job["options"])
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    image = io.load_image(job["output"])
    tiling = result.details.get("tiling")
    row = {"seconds": round(seconds, 1), "peak_gib": round(peak / 2**30, 2),
           "size": f"{image.shape[-1]}×{image.shape[-2]}", "tile": tiling["tile"] if tiling else None,
           "tiles": tiling["tiles"] if tiling else 0, "seam": None, "seam_off_edges": None,
           "edge_lines": [], "seam_whole": None}
    if tiling:
        lines = (tiling["rows"], tiling["cols"])
        seams = evaluation.seam(job["output"], image, job["content"])  # at the lines the sidecar records
        row["seam"] = round(seams["seam"], 4)
        off = seams["seam_off_edges"]
        row["seam_off_edges"] = round(off, 4) if off is not None else None
        row["edge_lines"] = [f"{e['line']} {e['at']} ({e['output']:.3f}, content {e['content']:.3f})"
                             for e in seams["seam_edges"]]
        if job.get("control"):
            del result
            whole = api.run(job["content"], job["style"], method=job["method"], size=job["size"], quiet=True,
                            **{**job["options"], "tile": 0}).image
            whole = whole.mul(255).round().div(255)  # as the tiled one was saved
            row["seam_whole"] = round(metrics.seam_score(whole, *lines, period=tiling["stride"]), 4)
    return row


def _find(folder: str, stem: str) -> Path:
    found = sorted((DATA / folder).glob(f"{stem}.*"))
    if not found:
        raise SystemExit(f"no {folder} image named {stem} in {DATA / folder}")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--methods", default="adain,fast,optimize")
    parser.add_argument("--pairs", default="tubingen:starry_night,golden_gate:the_scream")
    parser.add_argument("--size", type=int, default=3840)
    for method in FEED_FORWARD:
        parser.add_argument(f"--{method}-model", help=f"a {method} model file (where none ships)")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, a Python literal, for every method")
    parser.add_argument("--control", action="store_true", help="also score the whole image made at once")
    parser.add_argument("--out", default=str(ROOT / "out" / "large"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    settings = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| method | pair | size | tile (tiles) | s | peak GiB | seam | seam, whole image | lines along content edges "
          "| seam at the other lines |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        options = dict(settings)
        model = getattr(args, f"{method}_model", None)
        if model:
            options["model"] = model
        for pair in args.pairs.split(","):
            content, style = pair.split(":")
            job = {"content": str(_find("content", content)), "style": None if method == "fast" else
                   str(_find("style", style)), "output": str(out / f"{content}__{style}.{method}.{args.size}.png"),
                   "method": method, "size": args.size, "options": options, "control": args.control}
            label = f"{content} × {style}" if method != "fast" else f"{content} × model"
            done = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True,
                                  text=True)
            if done.returncode != 0:
                print(f"| {method} | {label} | failed: {done.stderr.strip().splitlines()[-1]} |||||||")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            tile = f"{r['tile']} ({r['tiles'] if isinstance(r['tiles'], int) else '+'.join(map(str, r['tiles']))})" \
                if r["tile"] else "whole"
            print(f"| {method} | {label} | {r['size']} | {tile} | {r['seconds']} | {r['peak_gib']} | {r['seam']} | "
                  f"{r['seam_whole']} | {'; '.join(r['edge_lines']) or 'none'} | {r['seam_off_edges']} |", flush=True)


if __name__ == "__main__":
    main()
