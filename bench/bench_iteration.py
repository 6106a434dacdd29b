"""One optimize iteration against a plain PyTorch Gatys loop, in one process, interleaved, same network and weights.

  python bench/bench_iteration.py [--sizes 512,1024] [--repeats 3]

"plain" is the loop as neural-style-pt writes it, in PyTorch's default (NCHW) layout: one forward pass to the
deepest layer, Gram matrices divided by C·H·W, MSE losses, and torch's L-BFGS running all its iterations inside one
`step` call. "brushwork" is a real iteration of the optimize method (`optimize.descend`: relative losses, the
optimizer step and the projection back onto valid images), with vgg16-hed's default losses and relu5_1 weighed as
on the other VGGs: the plain loop's layers, so both do the same work (the default itself turns relu5_1 off and
stops at relu4_2, bench/TUNING.md finding 22). Both count FLOPs with torch's flop counter and report them against
this machine's fp32 matmul peak.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from brushwork.backbones import create_backbone
from brushwork.backbones.vgg import VGG
from brushwork.methods.optimize import Objective, OptimizeOptions, build_nets, descend, style_targets

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def matmul_peak() -> float:
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2 * 2048 ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_loop(size: int, iterations: int):
    """A closure that runs `iterations` L-BFGS iterations of the plain loop; returns it and its FLOPs per
    iteration."""
    net = create_backbone("vgg16-hed")
    content, style = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
    layers = [CONTENT_LAYER, *STYLE_LAYERS]

    def gram(f: torch.Tensor) -> torch.Tensor:
        _, c, h, w = f.shape
        f = f.reshape(c, h * w)
        return f @ f.t() / (c * h * w)

    with torch.no_grad():
        c_target = net(content, [CONTENT_LAYER])[CONTENT_LAYER]
        feats = net(style, STYLE_LAYERS)
        s_targets = {n: gram(feats[n]) for n in STYLE_LAYERS}
    image = content.clone().requires_grad_(True)

    def closure():
        optimizer.zero_grad()
        feats = net(image, layers)
        loss = 5 * torch.nn.functional.mse_loss(feats[CONTENT_LAYER], c_target)
        for n in STYLE_LAYERS:
            loss = loss + 100 * torch.nn.functional.mse_loss(gram(feats[n]), s_targets[n])
        loss.backward()
        return loss

    optimizer = torch.optim.LBFGS([image], max_iter=iterations, history_size=50, tolerance_grad=0.0,
                                  tolerance_change=0.0)
    with FlopCounterMode(display=False) as counter:
        closure()
    return (lambda: optimizer.step(closure)), counter.get_total_flops()


def ours(size: int):
    """A generator of real optimize iterations, to the plain loop's depth, and the FLOPs of one."""
    opts = OptimizeOptions(style_weights={"relu5_1": VGG.style_weights["relu5_1"]})
    nets = build_nets(opts, torch.device("cpu"))
    content, style = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
    objective = Objective(nets, opts, content, style_targets(nets, opts, [style], [1.0], False), [1.0], None)
    steps = descend(objective, content, 10 ** 6, 1, opts)
    next(steps)
    with FlopCounterMode(display=False) as counter:
        next(steps)
    return steps, counter.get_total_flops()


def weighted_gram(feat: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """losses.gram as it was before 2026-11-23: the features scaled by uniform weights 1/P, then the product, with
    autograd's two-product backward."""
    from brushwork.losses import _flat

    f, w = _flat(feat, weight)
    return (f * w) @ f.transpose(1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5, help="plain loop iterations per timed step call")
    parser.add_argument("--before", action="store_true", help="time brushwork as it was before the speed "
                        "work: Gram products through a scaled copy, NCHW activations (the 'before' rows)")
    args = parser.parse_args()
    if args.before:
        from brushwork import losses
        from brushwork.methods import optimize

        losses.gram = weighted_gram
        optimize.LAYOUT = "contiguous_format"
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 matmul peak {peak:.0f} GFLOP/s\n")
    print("| loop | size | s / iteration | GFLOP / iteration | GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        plain_step, plain_flops = plain_loop(size, args.iterations)
        our_steps, our_flops = ours(size)
        plain_step()
        times: dict[str, list[float]] = {"plain": [], "brushwork": []}
        for _ in range(args.repeats):  # interleaved, so that a noisy stretch hits both
            times["plain"].append(_timed(plain_step) / args.iterations)
            times["brushwork"].append(_timed(lambda: next(our_steps)))
        ours_label = "brushwork optimize" + (" (before)" if args.before else "")
        for name, flops in (("plain PyTorch Gatys loop", plain_flops), (ours_label, our_flops)):
            seconds = min(times["plain" if name.startswith("plain") else "brushwork"])
            rate = flops / seconds / 1e9
            print(f"| {name} | {size}² | {seconds:.3f} | {flops / 1e9:.1f} | {rate:.0f} | {100 * rate / peak:.0f}% |",
                  flush=True)


if __name__ == "__main__":
    main()
