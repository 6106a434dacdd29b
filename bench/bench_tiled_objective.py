"""Does the optimize method paint the same picture in tiles as whole? Each pair is stylized at a size where the whole
image fits, once whole and once with --tile, and both outputs are scored on the untiled objective at the output
size (content, style and total at the finest scale's weights), by their seam score at the tiled run's seams, and by
how far each output's colours drift from the whole one's, block by block.

  python bench/bench_tiled_objective.py --pairs tubingen:starry_night --size 384 --tile 192 --iterations 60

A tiled run whose tiles each matched the painting's statistics alone gave every tile the painting's whole palette
(a flat sky grew stars): a high style loss on the untiled objective and a large colour drift in flat regions.
Outputs (whole | tiled side by side) go to out/tiled/, not committed: they derive from ../shared/data.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pairs"
BLOCKS = 4  # the colour drift compares mean colours over a BLOCKS × BLOCKS partition of the picture


def untiled_losses(content: torch.Tensor, style: torch.Tensor, output: torch.Tensor) -> dict:
    """The default optimize objective of the whole output at its size (the finest scale's weights)."""
    from brushwork.methods import optimize, prepare

    opts = optimize.OptimizeOptions()
    prep = prepare.prepare(optimize.SPEC, opts, content, [style])
    nets = optimize.build_nets(opts, torch.device("cpu"))
    size = tuple(output.shape[-2:])
    targets = optimize.style_targets(nets, opts, prep.styles_at(size), prep.blend, False)
    objective = optimize.Objective(nets, opts, prep.work_at(size), targets, prep.blend, None)
    with torch.no_grad():
        return objective(output.contiguous())[1]


def colour_drift(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference between two images' mean colours over any block of a BLOCKS × BLOCKS partition, in
    0-255 units summed over R, G and B."""
    pool = torch.nn.functional.adaptive_avg_pool2d
    return float((pool(a, BLOCKS) - pool(b, BLOCKS)).abs().sum(1).max() * 255)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="tubingen:starry_night")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--tag", default="", help="a label for this code's rows (e.g. a commit)")
    args = parser.parse_args()

    from brushwork import api, io, metrics

    out_dir = ROOT / "out" / "tiled"
    out_dir.mkdir(parents=True, exist_ok=True)
    print("| pair | run | s | content | style | total | seam | colour drift |")
    print("|---|---|---|---|---|---|---|---|")
    for pair in args.pairs.split(","):
        c_name, s_name = pair.split(":")
        content = io.load_image(next((DATA / "content").glob(c_name + ".*")))
        style = io.load_image(next((DATA / "style").glob(s_name + ".*")))
        runs = {}
        for label, tile in (("whole", 0), (f"tiles of {args.tile} {args.tag}".strip(), args.tile)):
            started = time.perf_counter()
            result = api.run(content, style, size=args.size, tile=tile, iterations=args.iterations, quiet=True,
                             device="cpu")
            runs[label] = (result.image, time.perf_counter() - started, result.details.get("tiling"))
        lines = next(t for _, _, t in runs.values() if t)
        whole = runs["whole"][0]
        for label, (image, seconds, _) in runs.items():
            losses = untiled_losses(content, style, image)
            seam = metrics.seam_score(image, lines["rows"], lines["cols"])
            print(f"| {pair} | {label} | {seconds:.0f} | {losses['content']:.4f} | {losses['style']:.5f} | "
                  f"{losses['total']:.4f} | {seam:.3f} | {colour_drift(image, whole):.1f} |", flush=True)
        outputs = {label: image for label, (image, _, _) in runs.items()}
        side = torch.cat([outputs[k] for k in outputs], -1)
        io.save_image(side, out_dir / f"{c_name}__{s_name}.{args.size}.tile{args.tile}{args.tag}.png")


if __name__ == "__main__":
    main()
