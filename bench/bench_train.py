"""Training speed of the release recipes through the real loop, in a few layouts, so that a GPU loan's first minute
picks the fastest before it trains: steps/s, images/s, achieved TFLOP/s and peak GPU memory per recipe group.

  python3 bench/bench_train.py                         adain and the 8 classic styles, default and NCHW
  python3 bench/bench_train.py --groups adain --configs default,nchw,compile --steps 40
  python3 bench/bench_train.py --profile 5              then each group's 15 costliest kernels over 5 steps
  python bench/bench_train.py --device cpu --size 64 --batch 2 --steps 2     a smoke run on this CPU

Configs: default (the recipe: bf16 autocast on a GPU, channels-last, images resident on the device), nchw
(channels-last off), fp32 (no autocast), compile (torch.compile of the objective; its compile time is reported
apart). Each run trains --steps steps after as many warm-up steps (cuDNN's autotuning, compilation), from the kit's
data, in a scratch folder.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # on a GPU machine brushwork is not installed

from brushwork.train import train  # noqa: E402
from brushwork.train.recipes import build_kit_task, group_recipes, load_recipes, loop_config  # noqa: E402

GROUPS = {"adain": ["adain-vgg16-hed"],
          "fast": ["starry_night", "the_scream", "la_muse", "composition_vii", "shipwreck", "impronte_d_artista",
                   "picasso_selfport1907", "en_campo_gris"],
          "mobile": ["starry_night-mobile", "the_scream-mobile", "la_muse-mobile", "composition_vii-mobile",
                     "shipwreck-mobile", "impronte_d_artista-mobile", "picasso_selfport1907-mobile",
                     "en_campo_gris-mobile"],
          "gan": ["gan-vgg16-hed"], "transformer": ["transformer-small"]}
CONFIGS = {"default": {}, "nchw": {"channels_last": "off"}, "fp32": {"precision": "32"}, "compile": {}}


def _group(key: str) -> list:
    return group_recipes(load_recipes(ROOT / "recipes", GROUPS[key]))[0]


def _task(kit: Path, group: list, cfg):
    """The group's task on the kit; a gan recipe starts from scratch here (its speed does not depend on the adain
    weights the release starts it from)."""
    return build_kit_task([replace(r, model={k: v for k, v in r.model.items() if k != "init"}) for r in group],
                          cfg, kit)


def _config(group: list, args: argparse.Namespace, cuda: bool, steps: int, log_every: int, **overrides):
    """The recipe's loop settings at the bench's batch and size, in a scratch folder, with nothing saved between."""
    return loop_config(group, out=tempfile.mkdtemp(), steps=steps, batch_size=args.batch, size=args.size,
                       short_side=max(args.size, 288), log_every=log_every, checkpoint_every=10 ** 9,
                       preview_every=10 ** 9, quiet=True, device=args.device, workers=0,
                       **{**({} if cuda else {"precision": "32"}), **overrides})


def _flops(kit: Path, group: list, batch: int, size: int) -> float:
    """FLOPs of one training step (forward and backward), counted on the CPU at batch 1 and scaled."""
    cfg = loop_config(group, out=tempfile.mkdtemp(), device="cpu", precision="32", size=size)
    task = _task(kit, group, cfg)
    inputs = {name: torch.rand(1, 3, size, size) for name in task.datasets}
    with FlopCounterMode(display=False) as counter:
        task.module(**inputs)["total"].backward()
    return counter.get_total_flops() * batch


def _import_fabric() -> None:
    try:
        importlib.import_module("lightning_fabric")
    except ImportError:  # images with the `lightning` bundle only
        importlib.import_module("lightning.fabric")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kit", type=Path, default=ROOT / "kit")
    parser.add_argument("--groups", default="adain,fast", help=f"comma-separated: {', '.join(GROUPS)}")
    parser.add_argument("--configs", default="default,nchw", help=f"comma-separated: {', '.join(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=30, help="timed steps, after as many warm-up steps")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="then N steps of each group under torch.profiler: the 15 costliest kernels")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    name = torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)"
    print(f"torch {torch.__version__}, {name}; batch {args.batch}, {args.size} px, {args.steps} timed steps\n")
    print("| group | config | s / step | steps/s | images/s | TFLOP/s | peak GiB | compile s |")
    print("|---|---|---|---|---|---|---|---|")
    for key in args.groups.split(","):
        group = _group(key)
        flops = _flops(args.kit, group, args.batch, args.size)
        for config in args.configs.split(","):
            cfg = _config(group, args, cuda, 2 * args.steps, args.steps, **CONFIGS[config])
            task = _task(args.kit, group, cfg)
            if config == "compile":
                _import_fabric()  # Fabric must be imported before torch.compile to unwrap the compiled module
                task.module = torch.compile(task.module)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            began = time.perf_counter()
            train(task, cfg)
            total = time.perf_counter() - began
            with (Path(cfg.out) / "metrics.csv").open(newline="") as f:
                rows = list(csv.DictReader(f))
            per_step = float(rows[-1]["seconds_per_step"])
            warm = total - per_step * args.steps
            peak = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else float("nan")
            compile_s = f"{warm:.0f} (warm-up)" if config == "compile" else ""
            print(f"| {key} ({len(group)}) | {config} | {per_step:.4f} | {1 / per_step:.2f} | "
                  f"{args.batch / per_step * len(group):.0f} | {flops / per_step / 1e12:.1f} | {peak:.1f} | "
                  f"{compile_s} |", flush=True)
    for key in args.groups.split(",") if args.profile else ():
        _profile(args, key, cuda)


def _profile(args: argparse.Namespace, key: str, cuda: bool) -> None:
    """The group's costliest operators over N steps in the recipe's layout (after N warm-up steps)."""
    from torch.profiler import ProfilerActivity, profile, schedule

    group = _group(key)
    cfg = _config(group, args, cuda, 2 * args.profile + 1, 10 ** 9)
    task = _task(args.kit, group, cfg)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    forward = task.module.forward

    def counted(**batch):  # the profiler's schedule advances once per training step
        prof.step()
        return forward(**batch)

    plan = schedule(wait=0, warmup=args.profile, active=args.profile, repeat=1)
    with profile(activities=activities, schedule=plan) as prof:
        task.module.forward = counted
        train(task, cfg)
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    print(f"\n{key}: the costliest operators over {args.profile} steps\n")
    print(prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=60))


if __name__ == "__main__":
    main()
