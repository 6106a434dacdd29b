"""Time the feed-forward methods and print markdown tables for bench/RESULTS.md.

  python bench/bench_feedforward.py                 adain at 512² and 1024²; fast at 512² and 1920×1080,
                                                    in torch and in onnxruntime
  python bench/bench_feedforward.py --adain FILE --fast FILE    the same with trained models
  python bench/bench_feedforward.py --only transformer          the transformer (small) at 512² and 1920×1080
  python3 bench/bench_feedforward.py --gpu-only --weights kit/weights/vgg16-hed.safetensors
                                                    on a lent GPU machine: the GPU rows alone, with the kit's encoder

Without model files it times freshly initialized networks, which cost exactly what trained ones do. On a GPU it
also reports images/s at batch 8 in fp32 and bf16 (autocast).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from brushwork.export import export_model
from brushwork.methods.adain import AdaINStylizer
from brushwork.methods.adain_model import AdaINNet, save_decoder
from brushwork.methods.fast import load_net
from brushwork.methods.fast_model import TransformNet
from brushwork.methods.transformer import TransformerStylizer
from brushwork.methods.transformer_model import CONFIGS, StyTr2
from brushwork.runtime import onnx_session


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


def untrained(folder: Path, weights: str | None = None) -> tuple[str, str, str]:
    adain = folder / "adain.safetensors"
    save_decoder(AdaINNet(weights=weights).decoder, adain, {"backbone": "vgg16-hed", "method": "adain"})
    fast = folder / "fast.safetensors"
    save_file(TransformNet().state_dict(), str(fast), metadata={"method": "fast", "width": "32"})
    transformer = folder / "transformer.safetensors"
    save_file(StyTr2(CONFIGS["small"]).state_dict(), str(transformer),
              metadata={"method": "transformer", **CONFIGS["small"].to_metadata()})
    return str(adain), str(fast), str(transformer)


def adain_rows(model: str, cpu_rows: bool = True, weights: str | None = None) -> None:
    print("\n| method | device | size | batch | precision | with style encoding s | style cached s |")
    print("|---|---|---|---|---|---|---|")
    cpu = AdaINStylizer(model, "cpu", weights)
    for size in (512, 1024) if cpu_rows else ():
        content, style = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
        code = cpu.encode_style(style)
        cached = best_of(lambda: cpu.stylize(content, [code]))
        full = best_of(lambda: cpu.stylize(content, [cpu.encode_style(style)]))
        print(f"| adain | cpu | {size}² | 1 | fp32 | {full:.2f} | {cached:.2f} |", flush=True)
    if torch.cuda.is_available():
        gpu = AdaINStylizer(model, "cuda", weights)
        for h, w in ((512, 512), (1024, 1024), (1080, 1920)):
            for precision in ("fp32", "bf16"):
                content = torch.rand(8, 3, h, w, device="cuda")
                code = gpu.encode_style(torch.rand(1, 3, 512, 512, device="cuda"))
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    seconds = best_of(lambda: gpu.stylize(content, [code]), repeats=5)
                print(f"| adain | {torch.cuda.get_device_name()} | {w}×{h} | 8 | {precision} | | "
                      f"{seconds:.3f} ({8 / seconds:.1f} images/s) |", flush=True)


def fast_rows(model: str, folder: Path, cpu_rows: bool = True) -> None:
    print("\n| method | runtime | size | batch | precision | s / image | images/s |")
    print("|---|---|---|---|---|---|---|")
    net, _ = load_net(model)
    session = onnx_session(export_model(model, "onnx", folder / "fast.onnx"), "cpu") if cpu_rows else None
    for h, w in ((512, 512), (1080, 1920)) if cpu_rows else ():
        image = torch.rand(1, 3, h, w)
        with torch.no_grad():
            seconds = best_of(lambda: net(image))
        print(f"| fast | torch cpu | {w}×{h} | 1 | fp32 | {seconds:.2f} | {1 / seconds:.2f} |", flush=True)
        array = image.numpy()
        seconds = best_of(lambda: session.run(None, {"image": array}))
        print(f"| fast | onnxruntime cpu | {w}×{h} | 1 | fp32 | {seconds:.2f} | {1 / seconds:.2f} |", flush=True)
    if torch.cuda.is_available():
        gpu = net.to("cuda")
        for (h, w), precision in itertools.product(((512, 512), (1080, 1920)), ("fp32", "bf16")):
            image = torch.rand(8, 3, h, w, device="cuda")
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
                seconds = best_of(lambda: gpu(image), repeats=5)
            print(f"| fast | torch {torch.cuda.get_device_name()} | {w}×{h} | 8 | {precision} | "
                  f"{seconds / 8:.4f} | {8 / seconds:.1f} |", flush=True)


def transformer_rows(model: str, folder: Path, cpu_rows: bool = True) -> None:
    print("\n| method | runtime | size | batch | precision | s / image | images/s |")
    print("|---|---|---|---|---|---|---|")
    if cpu_rows:
        cpu = TransformerStylizer(model, "cpu")
        code = cpu.encode_style(torch.rand(1, 3, 512, 512))
        for h, w in ((512, 512), (1080, 1920)):
            image = torch.rand(1, 3, h, w)
            seconds = best_of(lambda: cpu.stylize(image, [code]))
            print(f"| transformer | torch cpu | {w}×{h} | 1 | fp32 | {seconds:.2f} | {1 / seconds:.2f} |",
                  flush=True)
        session = onnx_session(export_model(model, "onnx", folder / "transformer.onnx"), "cpu")
        inputs = {"content": torch.rand(1, 3, 512, 512).numpy(), "style": torch.rand(1, 3, 512, 512).numpy(),
                  "alpha": torch.tensor(1.0).numpy()}
        seconds = best_of(lambda: session.run(None, inputs))
        print(f"| transformer | onnxruntime cpu (the graph encodes the style and runs the alpha branch) | 512×512 "
              f"| 1 | fp32 | {seconds:.2f} | {1 / seconds:.2f} |", flush=True)
    if torch.cuda.is_available():
        gpu = TransformerStylizer(model, "cuda")
        code = gpu.encode_style(torch.rand(1, 3, 512, 512, device="cuda")).expand(8, -1, -1)
        for (h, w), precision in itertools.product(((512, 512), (1080, 1920)), ("fp32", "bf16")):
            image = torch.rand(8, 3, h, w, device="cuda")
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
                seconds = best_of(lambda: gpu.stylize(image, [code]), repeats=5)
            print(f"| transformer | torch {torch.cuda.get_device_name()} | {w}×{h} | 8 | {precision} | "
                  f"{seconds / 8:.4f} | {8 / seconds:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adain", help="adain decoder file (default: an untrained one, same cost)")
    parser.add_argument("--fast", help="fast model file (default: an untrained one, same cost)")
    parser.add_argument("--transformer", help="transformer model file (default: an untrained small one, same cost)")
    parser.add_argument("--only", default="adain,fast,transformer", help="comma-separated methods to time")
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU rows (on a lent GPU machine)")
    parser.add_argument("--weights", help="the encoder's weight file, where its package is not installed (the kit's)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    adain, fast, transformer = untrained(folder, args.weights)
    only = args.only.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "adain" in only:
        adain_rows(args.adain or adain, not args.gpu_only, args.weights)
    if "fast" in only:
        fast_rows(args.fast or fast, folder, not args.gpu_only)
    if "transformer" in only:
        transformer_rows(args.transformer or transformer, folder, not args.gpu_only)


if __name__ == "__main__":
    main()
