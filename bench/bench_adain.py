"""Time the adain method and print a markdown table for bench/RESULTS.md.

  python bench/bench_adain.py                    CPU: 512² (and 1024²), with and without the style's encoding
  python bench/bench_adain.py --model FILE       the same with a trained decoder (timing does not depend on it)

On a GPU it also reports images/s at 512² and 1024², batch 8, in fp32 and bf16 (autocast). Without --model it
times a freshly initialized decoder, which costs exactly what a trained one does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from brushwork.methods.adain import AdaINStylizer
from brushwork.methods.adain_model import AdaINNet, save_decoder


def best_of(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="decoder file (default: an untrained one, same cost)")
    parser.add_argument("--sizes", default="512,1024")
    args = parser.parse_args()
    model = args.model
    if model is None:
        model = str(Path(tempfile.mkdtemp()) / "untrained.safetensors")
        save_decoder(AdaINNet().decoder, model, {"backbone": "vgg16-hed"})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| device | size | batch | precision | with style encoding s | style cached s | images/s |")
    print("|---|---|---|---|---|---|---|")
    cpu = AdaINStylizer(model, "cpu")
    for size in [int(s) for s in args.sizes.split(",")]:
        content, style = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
        code = cpu.encode_style(style)
        cached = best_of(lambda: cpu.stylize(content, [code]))
        full = best_of(lambda: cpu.stylize(content, [cpu.encode_style(style)]))
        print(f"| cpu | {size}² | 1 | fp32 | {full:.2f} | {cached:.2f} | {1 / cached:.2f} |", flush=True)
    if torch.cuda.is_available():
        gpu = AdaINStylizer(model, "cuda")
        for size in [int(s) for s in args.sizes.split(",")]:
            for precision in ("fp32", "bf16"):
                content = torch.rand(8, 3, size, size, device="cuda")
                code = gpu.encode_style(torch.rand(1, 3, size, size, device="cuda"))
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    seconds = best_of(lambda: gpu.stylize(content, [code]), repeats=5)
                print(f"| {torch.cuda.get_device_name()} | {size}² | 8 | {precision} | | {seconds:.3f} | "
                      f"{8 / seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
