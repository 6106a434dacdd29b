"""The W2 style loss's two forms in one optimize iteration, interleaved in one process.

  python bench/bench_w2.py [--sizes 64,128,256,384,512] [--repeats 5]

"factored" is `losses.wasserstein2_loss` as it is: where a layer has fewer positions than channels (a small image's
deep layers) it takes the eigenvalues of the P×P matrix (Σb^½A)ᵀ(Σb^½A), with Σa = A·Aᵀ. "full" always takes them
from the C×C matrix Σb^½ Σa Σb^½, as before 2026-11-26. Both give the same loss and gradient
(tests/test_losses.py); the table says what the smaller eigenproblem saves per iteration of the default losses on
vgg16-hed, and at which sizes it stops applying.
"""

from __future__ import annotations

import argparse
from functools import partial

import torch

from bench_iteration import _timed, ours
from brushwork import losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256,384,512")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    loss = losses.wasserstein2_loss
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, vgg16-hed, default losses\n")
    print("| size | relu4_1 / relu5_1 positions (channels 512) | full s / it | factored s / it | speed-up |")
    print("|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        steps, _ = ours(size)
        times: dict[str, list[float]] = {"full": [], "factored": []}
        for _ in range(args.repeats):  # interleaved, so that a noisy stretch hits both
            for name, factored in (("full", False), ("factored", True)):
                losses.wasserstein2_loss = partial(loss, factored=factored)
                times[name].append(_timed(lambda: next(steps)))
        losses.wasserstein2_loss = loss
        full, factored = min(times["full"]), min(times["factored"])
        positions = f"{(size // 8) ** 2} / {(size // 16) ** 2}"
        print(f"| {size}² | {positions} | {full:.3f} | {factored:.3f} | {full / factored:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
