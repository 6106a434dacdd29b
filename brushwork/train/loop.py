"""The one training loop every feed-forward method uses, on Lightning Fabric: CPU or GPUs (DDP with no code change),
mixed precision, gradient clipping, an optional linear warmup and the AdaIN paper's learning-rate decay, and
checkpoints that resume exactly.

A run directory holds:
  checkpoint/model.safetensors        the trainable weights (fp32)
  checkpoint/optimizer-NNN.safetensors the optimizer state, in shards of at most 16 MiB
  checkpoint/optimizer.json, state.json param groups; step, config and timings
  checkpoint/critic*.                  a GAN task's critic and its optimizer, named alike
  metrics.csv                          one row per logged step (and TensorBoard events if it is installed)
  previews/step_NNNNNNN.png            content | style | output for a few samples of a batch
  NAME.safetensors                     the final weights in fp16 with their recipe, ready to ship (one file per
                                       network the task exports: several when styles train together)

On a GPU the defaults are the fast path: training images resident on the device (ResidentCrops), channels-last
tensors, and, with --precision bf16-mixed, bf16 autocast.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .. import signals
from ..errors import ConfigError, DivergenceError, Interrupted, OutputError, WeightsError, out_of_memory
from ..lazy import lazy
from ..options import check_values, label, option
from ..weights import check_safetensors, load_strict, read_safetensors

if TYPE_CHECKING:
    from torch import nn

    from .data import RandomCrops

torch = lazy("torch")
safetensors_torch = lazy("safetensors.torch")
data = lazy("brushwork.train.data")
io = lazy("brushwork.io")
resources = lazy("brushwork.resources")

SHARD_BYTES = 16 * 2 ** 20
PRECISIONS = ("32", "bf16-mixed", "16-mixed")
DATA_MODES = ("auto", "disk", "device")
SWITCHES = ("auto", "on", "off")
MEMORY_ADVICE = "use a smaller --batch-size or --size"


@dataclass
class TrainConfig:
    """Loop settings shared by every method; a method's own settings live in its task."""

    out: str = option("runs/train", "run directory")
    steps: int = option(160_000, "total training steps")
    batch_size: int = option(8, "images per step")
    size: int = option(256, "random crop size")
    short_side: int = option(512, "images are resized to this short side before cropping")
    lr: float = option(1e-4, "Adam learning rate")
    lr_decay: float = option(5e-5, "lr / (1 + decay · step), as in the AdaIN reference code")
    warmup: int = option(0, "steps of linear learning-rate warmup before the decay (transformers need some)")
    clip: float = option(0.0, "max gradient norm (0 = off)")
    precision: str = option("32", "32 | bf16-mixed | 16-mixed (mixed precision needs a GPU)")
    device: str = option("auto", "auto | cpu | cuda")
    devices: int = option(1, "GPUs to use (DDP)")
    workers: int = option(2, "data loader processes")
    data: str = option("auto", "disk (DataLoader workers) | device (decoded once, kept and cropped on the device) | "
                               "auto (device on GPUs)")
    channels_last: str = option("auto", "auto (on for GPUs) | on | off")
    seed: int = option(0, "seed for data and weights")
    checkpoint_every: int = option(500, "steps between checkpoints (also saved on exit)")
    preview_every: int = option(500, "steps between preview grids")
    log_every: int = option(10, "steps between metrics.csv rows")
    time_limit: float = option(0.0, "stop and checkpoint after this many seconds (0 = none)")
    # API only, for a run continued from exported weights without their moments (tools/release.py): optimizer steps
    # at lr 0 that fill a fresh optimizer's moments and leave the weights as they are. No run the command line
    # starts needs it, and on a real checkpoint it would blur the moments that --resume restores.
    settle: int = 0
    resume: bool = option(False, "continue the run in --out from its checkpoint")
    quiet: bool = option(False, "no progress bar")

    def validate(self) -> None:
        check_values(self)
        checks = [(bool(self.out), "--out is empty: give a run folder (an empty path would be the current one)"),
                  (self.steps >= 1, "--steps must be at least 1"), (self.batch_size >= 1, "--batch-size must be >= 1"),
                  (0 <= self.seed < 2**32, "--seed must be from 0 to 4294967295 in training (numpy's range)"),
                  (self.size >= 16, "--size must be at least 16"), (self.lr > 0, "--lr must be positive"),
                  (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
                  *((getattr(self, f.name) >= 0, f"{label(f)} must be >= 0") for f in fields(self)
                    if f.name in ("clip", "lr_decay", "time_limit", "warmup", "settle")),
                  (min(self.checkpoint_every, self.preview_every, self.log_every) >= 1, "intervals must be >= 1"),
                  (self.workers >= 0 and self.devices >= 1, "--workers must be >= 0 and --devices >= 1"),
                  (self.data in DATA_MODES, f"--data must be one of {', '.join(DATA_MODES)}"),
                  (self.channels_last in SWITCHES, f"--channels-last must be one of {', '.join(SWITCHES)}")]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass
class Adversary:
    """The critic of a GAN task, trained against the generator's outputs with its own Adam optimizer: after each
    generator step, `steps` critic steps on that step's outputs and the batch's `real` entry. `objective(real,
    fake, seed)` returns {"total": what the critic minimizes, other scalars…}; `seed` is a function of the step, so
    a resumed run draws the same random numbers. `critic` is the part that is checkpointed; it is never exported."""

    objective: nn.Module
    critic: nn.Module
    real: str
    lr: float
    betas: tuple[float, float] = (0.0, 0.9)
    steps: int = 1


@dataclass
class TrainTask:
    """What a method trains: `module(**batch)` returns {"total": loss, other scalar losses…, "output": images};
    `trainable` is the part that is checkpointed; `datasets` name the batch's entries; `exports` maps each shipped
    file's stem to the network it holds and that network's metadata; `adversary`, when set, makes it a GAN."""

    name: str
    module: nn.Module
    trainable: nn.Module
    datasets: dict[str, RandomCrops]
    exports: dict[str, tuple[nn.Module, dict[str, str]]]
    adversary: Adversary | None = None

    def parts(self) -> dict[str, nn.Module]:
        """The checkpointed networks by name, each with an optimizer of its own."""
        critic = {"critic": self.adversary.critic} if self.adversary is not None else {}
        return {"model": self.trainable, **critic}


def check_loss_weights(**weights: float | None) -> None:
    """A negative loss weight turns training into maximizing that loss: refuse it, naming its flag."""
    for name, weight in weights.items():
        if weight is not None and weight < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, not {weight:g}")


def _files(part: str) -> tuple[str, str]:
    """A part's weights file and its optimizer files' stem: model.safetensors and optimizer*, critic*.…"""
    return f"{part}.safetensors", "optimizer" if part == "model" else f"{part}-optimizer"


def check_run(cfg: TrainConfig) -> None:
    """Fail before any work when --out or --resume cannot go on: --out is a file or cannot be created, --resume
    finds no checkpoint or a damaged one, or a finished run's checkpoint would be overwritten without --resume."""
    run = Path(cfg.out)
    if run.exists() and not run.is_dir():
        raise OutputError(f"--out {run} is a file: give a run folder")
    existing = next(p for p in (run.resolve(), *run.resolve().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise OutputError(f"cannot create the run folder {run}: {existing} is not a writable folder")
    ckpt = run / "checkpoint"
    if not cfg.resume:
        if ckpt.exists():
            raise ConfigError(f"{run} already holds a run: pass --resume to continue it, or choose another --out")
        return
    if not ckpt.is_dir():
        raise ConfigError(f"--resume: {run} holds no checkpoint to continue; leave out --resume to start a new run")
    try:
        state = _run_state(ckpt)
        for part in state["parts"]:
            weights, optim = _files(part)
            check_safetensors(ckpt / weights)
            shards = json.loads((ckpt / f"{optim}.json").read_text()).get("shards")
            if not _count(shards):
                raise ValueError(f"{optim}.json gives no shard count")
            for i in range(shards):
                check_safetensors(ckpt / f"{optim}-{i:03d}.safetensors")
    except (OSError, ValueError, AttributeError) as e:
        raise WeightsError(f"cannot resume from {ckpt}: {str(e).splitlines()[0]}") from None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _run_state(ckpt: Path) -> dict[str, Any]:
    """state.json, its step, seconds and parts checked: an edited or damaged file is an error that says what."""
    state = json.loads((ckpt / "state.json").read_text())
    if not isinstance(state, dict):
        raise ValueError("state.json holds no record")
    step, seconds, parts = state.get("step"), state.get("seconds", 0.0), state.setdefault("parts", ["model"])
    if not _count(step):
        raise ValueError(f"state.json's step is {step!r}, not a count of steps")
    if not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 <= seconds < math.inf):
        raise ValueError(f"state.json's seconds are {seconds!r}, not a duration")
    if not (isinstance(parts, list) and parts and all(isinstance(p, str) for p in parts)):
        raise ValueError(f"state.json's parts are {parts!r}, not a list of names")
    return state


def _fabric(cfg: TrainConfig):
    try:
        from lightning_fabric import Fabric
    except ImportError:  # images that ship the `lightning` bundle instead of the standalone package
        from lightning.fabric import Fabric

    accelerator = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "mps": "mps"}.get(cfg.device)
    if accelerator is None:
        raise ConfigError(f"unknown device '{cfg.device}'; use auto, cpu or cuda")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if cfg.precision != "32" and on_cpu:  # --device auto on a machine without a GPU too
        raise ConfigError("mixed precision is for GPUs: on CPU, bf16 runs hundreds of times slower than fp32; use "
                          "--precision 32")
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available")
    gpus = torch.cuda.device_count() if accelerator != "cpu" else 0
    if cfg.devices > max(1, gpus):  # it trained on one device without a word
        raise ConfigError(f"--devices {cfg.devices} asks for more GPUs than {'are' if gpus != 1 else 'is'} here "
                          f"({gpus})")
    devices = cfg.devices if gpus else 1
    fabric = Fabric(accelerator=accelerator, devices=devices, precision=cfg.precision)
    fabric.launch()
    return fabric


def _save_part(folder: Path, name: str, net: nn.Module, optimizer: torch.optim.Optimizer, task: str) -> None:
    """One network's fp32 weights and its optimizer state, the state's tensors in shards of at most 16 MiB."""
    weights_file, optim = _files(name)
    weights = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    safetensors_torch.save_file(weights, str(folder / weights_file), metadata={"task": task})
    state = optimizer.state_dict()
    tensors, plain = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().contiguous().cpu()
            else:
                plain[f"{index}.{key}"] = value
    shards, current, size = [], {}, 0
    for key, value in tensors.items():
        nbytes = value.numel() * value.element_size()
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[key], size = value, size + nbytes
    shards.append(current)
    for i, shard in enumerate(shards):
        safetensors_torch.save_file(shard, str(folder / f"{optim}-{i:03d}.safetensors"))
    (folder / f"{optim}.json").write_text(json.dumps({"param_groups": state["param_groups"], "plain": plain,
                                                      "shards": len(shards)}, indent=1))


def save_checkpoint(run: Path, task: TrainTask, optimizers: dict[str, torch.optim.Optimizer], step: int,
                    cfg: TrainConfig, seconds: float) -> None:
    """Write the checkpoint (every part of the task with its optimizer) beside the old one and swap it in, so an
    interruption never leaves a broken one."""
    tmp, final, old = run / ".checkpoint.tmp", run / "checkpoint", run / ".checkpoint.old"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with io.writing(final):
            tmp.mkdir(parents=True)
            for name, net in task.parts().items():
                _save_part(tmp, name, net, optimizers[name], task.name)
            exports = {stem: meta for stem, (_, meta) in task.exports.items()}
            (tmp / "state.json").write_text(json.dumps({"step": step, "task": task.name, "parts": list(task.parts()),
                                                        "exports": exports, "config": asdict(cfg),
                                                        "seconds": round(seconds, 1)}, indent=1))
    except OutputError:
        shutil.rmtree(tmp, ignore_errors=True)  # the previous checkpoint stays as it was
        raise
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _read_optimizer(ckpt: Path, optim: str) -> tuple[dict, list]:
    """An optimizer's state as _save_part wrote it, flat ("INDEX.ENTRY": tensor or number), and its param groups."""
    meta = json.loads((ckpt / f"{optim}.json").read_text())
    flat = dict(meta["plain"])
    for i in range(meta["shards"]):
        flat.update(safetensors_torch.load_file(str(ckpt / f"{optim}-{i:03d}.safetensors")))
    return flat, meta["param_groups"]


def optimized(task: TrainTask, part: str) -> list[nn.Parameter]:
    """The parameters a part's optimizer steps, in the order its checkpointed state is indexed by."""
    net = task.module if part == "model" else task.parts()[part]
    return [p for p in net.parameters() if p.requires_grad]


def moments_path(weights: Path) -> Path:
    """Where an exported network's optimizer moments lie: X.moments.safetensors beside its weights X.safetensors."""
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".moments.safetensors")


def copy_exported(weights: Path, dest: Path) -> Path:
    """Copy an exported network's weights to `dest`, and its moments beside them when it has them (else no stale
    moments stay beside `dest`): how a run's files travel from machine to machine as one."""
    copied = Path(shutil.copy2(weights, dest))
    moments_path(copied).unlink(missing_ok=True)
    if moments_path(weights).is_file():
        shutil.copy2(moments_path(weights), moments_path(copied))
    return copied


def all_have_moments(files: Iterable[str | Path]) -> bool:
    """Whether every weights file has its moments beside it: a run continues with them only then (the networks
    of one run share a step count), else from the weights alone, after settling steps."""
    files = list(files)
    return bool(files) and all(moments_path(Path(f)).is_file() for f in files)


def export_moments(task: TrainTask, run: Path, suffix: str = "") -> list[Path]:
    """Each exported network's Adam second moments from RUN's checkpoint, in bf16, beside its weights: a run
    continued from exported weights on another machine then steps as its optimizer would have. Only these travel:
    they remember about a thousand steps of gradients, the first moments about ten, which refill on their own."""
    state, _ = _read_optimizer(run / "checkpoint", _files("model")[1])
    index = {id(p): i for i, p in enumerate(optimized(task, "model"))}
    written = []
    for stem, (net, _) in task.exports.items():
        slots = {name: index[id(p)] for name, p in net.named_parameters() if p.requires_grad}
        if not all(f"{i}.exp_avg_sq" in state for i in slots.values()):
            continue  # a run stopped before its first step has no moments to pass on
        tensors = {name: state[f"{i}.exp_avg_sq"].to(torch.bfloat16).contiguous() for name, i in slots.items()}
        adam_step = int(state[f"{next(iter(slots.values()))}.step"])
        path = moments_path(run / f"{stem}{suffix}.safetensors")
        io.atomic_write(path, lambda tmp: safetensors_torch.save_file(
            tensors, tmp, metadata={"format": "brushwork-moments/1", "adam_step": str(adam_step)}))
        written.append(path)
    return written


def read_exports(task: TrainTask, files: dict[str, Path]) -> tuple[int, float, dict[int, tuple[int, torch.Tensor]]]:
    """Load each exported network's weights from `files` (by export stem) into the task. Returns the step and
    seconds they record (the least, if they differ) and, when every file has its moments beside it, each
    parameter's (Adam step, second moments) by id(parameter); else an empty dict."""
    steps, seconds, moments = [], [], {}
    have_all = all_have_moments(files.values())
    for stem, (net, _) in task.exports.items():
        weights = Path(files[stem])
        tensors, meta = read_safetensors(weights)
        load_strict(net, tensors, weights, f"the {stem} network of this run")
        steps.append(int(meta.get("steps", 0)))
        seconds.append(float(meta.get("seconds", 0)))
        if have_all:
            saved, saved_meta = read_safetensors(moments_path(weights))
            params = {name: p for name, p in net.named_parameters() if p.requires_grad}
            if set(saved) != set(params) or any(saved[n].shape != p.shape for n, p in params.items()):
                raise WeightsError(f"{moments_path(weights)} does not hold the moments of {weights}'s network: "
                                   f"continue without it (delete it), or with the file it came with")
            step = int(saved_meta.get("adam_step", 0))
            moments.update({id(p): (step, saved[name]) for name, p in params.items()})
    return min(steps), min(seconds), moments


def checkpoint_from_weights(run: Path, task: TrainTask, cfg: TrainConfig, step: int, seconds: float,
                            moments: dict[int, tuple[int, torch.Tensor]] | None = None) -> None:
    """A checkpoint at `step` from the weights the task's networks hold now (exported ones, loaded by the caller),
    with fresh optimizers, or with the model's second moments (read_exports) and zero first moments:
    `--resume` then continues a run whose full checkpoint stayed on another machine."""
    optimizers = {name: torch.optim.Adam(optimized(task, name), lr=cfg.lr) for name in task.parts()}
    for p in optimized(task, "model") if moments else []:
        adam_step, second = moments[id(p)]
        optimizers["model"].state[p] = {"step": torch.tensor(float(adam_step)), "exp_avg": torch.zeros_like(p),
                                        "exp_avg_sq": second.to(p.device)}
    save_checkpoint(run, task, optimizers, step, cfg, seconds)


def load_checkpoint(run: Path, task: TrainTask, optimizers: dict[str, torch.optim.Optimizer]) -> tuple[int, float]:
    """Restore every part's weights and optimizer state; returns (step, seconds trained so far)."""
    ckpt = run / "checkpoint"
    try:
        state = _run_state(ckpt)
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot resume from {ckpt}: {str(e).splitlines()[0]}") from None
    if state.get("task") != task.name:
        raise ConfigError(f"{ckpt} is a {state.get('task')} run, not {task.name}")
    saved, wanted = state["parts"], list(task.parts())
    if saved != wanted:
        raise ConfigError(f"{ckpt} holds {' and '.join(saved)}, but this run trains {' and '.join(wanted)}: "
                          f"resume it with the settings it started with")
    for name, net in task.parts().items():
        weights_file, optim = _files(name)
        try:
            load_strict(net, safetensors_torch.load_file(str(ckpt / weights_file)), weights_file,
                        f"this run's {name}")
            flat, param_groups = _read_optimizer(ckpt, optim)
        except Exception as e:  # OSError, ValueError, RuntimeError, or safetensors' own error for a damaged file
            raise WeightsError(f"cannot resume from {ckpt}: {str(e).splitlines()[0]}") from None
        entries: dict[int, dict] = {}
        for key, value in flat.items():
            index, entry = key.split(".", 1)
            entries.setdefault(int(index), {})[entry] = value
        optimizers[name].load_state_dict({"state": entries, "param_groups": param_groups})
    return state["step"], float(state.get("seconds", 0.0))


def _preview(batch: dict[str, torch.Tensor], output: torch.Tensor, path: Path, count: int = 4) -> None:
    """A grid: one row per sample, the batch's inputs then the output (one column per network when a task
    trains several)."""
    size = len(next(iter(batch.values())))
    outputs = output.detach().float().clamp(0, 1).split(size)
    columns = [*batch.values(), *outputs]
    n = min(count, size)
    rows = [torch.cat([c[i].float().cpu() for c in columns], dim=-1) for i in range(n)]
    io.save_image(torch.cat(rows, dim=-2)[None], path)


def hardware(device: torch.device) -> str:
    """What trained a model, for its metadata: the GPU's name, or the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


class _Log:
    """metrics.csv (trimmed back to the resumed step, so rows never repeat) and TensorBoard when installed."""

    def __init__(self, run: Path, start: int, fields: list[str]):
        self.path, self.fields = run / "metrics.csv", ["step", "lr", "seconds_per_step", *fields]
        rows = []
        if self.path.is_file():
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        with io.writing(self.path), self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, self.fields)
            writer.writeheader()
            writer.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run / "tensorboard"))
        except ImportError:
            self.tb = None

    def write(self, row: dict) -> None:
        with io.writing(self.path), self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.fields).writerow(row)
        if self.tb is not None:
            for key, value in row.items():
                if key != "step":
                    self.tb.add_scalar(key, value, row["step"])


def export_weights(task: TrainTask, run: Path, cfg: TrainConfig, step: int, seconds: float, device: str,
                   suffix: str = "") -> list[Path]:
    """Write each exported network as RUN/STEM{suffix}.safetensors in fp16, with its recipe, step count, hardware
    and wall time in the metadata; atomically, so a reader never sees half a file."""
    recipe = {"steps": str(step), "batch_size": str(cfg.batch_size), "size": str(cfg.size), "lr": str(cfg.lr),
              "precision": cfg.precision, "hardware": device, "seconds": f"{seconds:.0f}"}
    written = []
    for stem, (net, meta) in task.exports.items():
        tensors = {k: v.detach().half().contiguous().cpu() for k, v in net.state_dict().items()}
        path = run / f"{stem}{suffix}.safetensors"
        io.atomic_write(path, lambda tmp: safetensors_torch.save_file(tensors, tmp, metadata={**meta, **recipe}))
        written.append(path)
    return written


# A step's peak over the bytes its autograd graph saves for backward: the gradients in flight during backward and
# the allocator's slack. With it the estimate is 0.94 to 1.19 times the measured peak of adain, fast, gan and
# transformer steps (bench/bench_train_guard.py, tests/test_adain.py).
STEP_PEAK_FACTOR = 1.4
PROBE_SIDES = (32, 64, 96)


def saved_bytes(module: nn.Module, *args, **kwargs) -> int:
    """Bytes the autograd graph of module(*args, **kwargs) saves for backward, its parameters and buffers aside
    (they are resident already). The call runs with the random state forked and the buffers restored, so that
    probing changes nothing a resumed run would see."""
    resident = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in resident:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    buffers = {name: b.clone() for name, b in module.named_buffers()}
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(*args, **kwargs)
    with torch.no_grad():
        for name, b in module.named_buffers():
            b.copy_(buffers[name])
    return sum(saved.values())


def _per_sample(probe: Callable[[int], int], size: int) -> float:
    """Saved bytes of one sample at size × size, from probes at small sides: exact at a size no larger than the
    probes', else extrapolated in pixels through three of them (Newton's form): activations grow with pixels,
    attention with their square, Gram matrices not at all. A concave curve through the probes is the deep layers'
    rounding, not a trend, and is extrapolated along its last segment."""
    if size <= PROBE_SIDES[-1]:
        return float(probe(size))
    (x1, x2, x3), (y1, y2, y3) = [s * s for s in PROBE_SIDES], [probe(s) for s in PROBE_SIDES]
    slope1, slope2 = (y2 - y1) / (x2 - x1), (y3 - y2) / (x3 - x2)
    curve, x = (slope2 - slope1) / (x3 - x1), size * size
    if curve <= 0:
        return y3 + slope2 * (x - x3)
    return y1 + slope1 * (x - x1) + curve * (x - x1) * (x - x2)


def step_bytes(task: TrainTask, cfg: TrainConfig, fabric, layout: torch.memory_format) -> int:
    """About the bytes one training step adds on the device to what is resident: the larger of the generator's and
    the critic's saved activations (they are not alive together) times STEP_PEAK_FACTOR, the batch on the host and
    the device, and the gradients and Adam moments of the trainable weights. The probes run the bare networks
    under the run's precision: a DDP wrapper would wait for a backward that never comes."""
    def images(side: int) -> torch.Tensor:
        return torch.rand(1, 3, side, side, device=fabric.device).contiguous(memory_format=layout)

    def generator(side: int) -> int:
        return saved_bytes(task.module, **{name: images(side) for name in task.datasets})

    with fabric.autocast():
        per_sample = _per_sample(generator, cfg.size)
        if task.adversary is not None:
            critic = task.adversary.objective
            per_sample = max(per_sample, _per_sample(lambda side: saved_bytes(critic, images(side), images(side), 0),
                                                     cfg.size))
    batch = 2 * len(task.datasets) * cfg.batch_size * 3 * cfg.size ** 2 * 4
    weights = sum(3 * p.numel() * p.element_size() for net in task.parts().values() for p in net.parameters()
                  if p.requires_grad)
    return int(STEP_PEAK_FACTOR * cfg.batch_size * per_sample + batch + weights)


def _read_losses(out: dict[str, torch.Tensor]) -> dict[str, float]:
    """The scalar losses of a step as floats, in one device-to-host copy (one sync, however many there are)."""
    keys = [k for k in out if k != "output"]
    return dict(zip(keys, torch.stack([out[k].detach().float() for k in keys]).tolist()))


def _streams(task: TrainTask, cfg: TrainConfig, start: int, fabric) -> dict:
    """One endless batch stream per dataset: from the device itself (ResidentCrops) or from DataLoader workers."""
    on_device = cfg.data == "device" or (cfg.data == "auto" and fabric.device.type == "cuda")
    streams = {}
    for name, ds in task.datasets.items():
        source = data.ResidentCrops(ds, fabric.device) if on_device else ds
        streams[name] = source.stream(cfg.batch_size, start, cfg.workers, fabric.global_rank, fabric.world_size)
    return streams


def _next_batch(streams: dict, fabric, layout: torch.memory_format) -> dict[str, torch.Tensor]:
    return {name: fabric.to_device(next(stream)).contiguous(memory_format=layout) for name, stream in streams.items()}


def _settle(module: nn.Module, optimizer: torch.optim.Optimizer, streams: dict, fabric, layout: torch.memory_format,
            steps: int) -> None:
    """Adam steps at lr 0: a fresh optimizer's moments fill from real gradients while the weights stay put, so a run
    continued from exported weights is not jolted by first updates of a full learning rate on every weight."""
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    for _ in range(steps):
        fabric.backward(module(**_next_batch(streams, fabric, layout))["total"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def _setup_critic(adversary: Adversary | None, fabric, layout: torch.memory_format,
                  optimizers: dict[str, torch.optim.Optimizer]) -> nn.Module | None:
    """The critic objective set up on the devices, its optimizer added to `optimizers` as "critic"."""
    if adversary is None:
        return None
    adversary.objective.to(memory_format=layout)
    params = [p for p in adversary.critic.parameters() if p.requires_grad]
    objective, optimizers["critic"] = fabric.setup(adversary.objective,
                                                   torch.optim.Adam(params, adversary.lr, betas=adversary.betas))
    return objective


def _critic_steps(adversary: Adversary, objective: nn.Module, optimizer: torch.optim.Optimizer, fabric,
                  batch: dict[str, torch.Tensor], fake: torch.Tensor, factor: float, seed: int, step: int
                  ) -> dict[str, torch.Tensor]:
    """`adversary.steps` critic updates on one generator step's outputs; returns the last one's losses, its
    total as "critic_total". Each update's seed is a function of (seed, step, update, rank): exact resume."""
    for group in optimizer.param_groups:
        group["lr"] = adversary.lr * factor
    optimizer.zero_grad(set_to_none=True)  # what the generator's step left on the critic is not the critic's
    for k in range(adversary.steps):
        draw = ((seed * 1_000_003 + step) * adversary.steps + k) * fabric.world_size + fabric.global_rank
        losses = objective(batch[adversary.real], fake, draw)
        fabric.backward(losses["total"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {"critic_total": losses.pop("total"), **losses}


def train(task: TrainTask, cfg: TrainConfig) -> dict:
    """Train until cfg.steps (or the time limit), checkpointing every cfg.checkpoint_every steps and on exit.
    Returns a summary: steps done in this segment, final step, last losses, seconds. Losses are read back from
    the device only on logging steps, so a GPU is never stalled waiting for the host. Running out of memory is a
    SizeError."""
    with out_of_memory(MEMORY_ADVICE):
        return _train(task, cfg)


def _train(task: TrainTask, cfg: TrainConfig) -> dict:
    cfg.validate()
    check_run(cfg)
    run = Path(cfg.out)
    fabric = _fabric(cfg)
    fabric.seed_everything(cfg.seed, verbose=False)
    if fabric.device.type == "cuda":  # crops have one size: let cuDNN time its kernels once and keep the fastest
        torch.backends.cudnn.benchmark = True
    layout = torch.channels_last if cfg.channels_last == "on" or (
        cfg.channels_last == "auto" and fabric.device.type == "cuda") else torch.contiguous_format
    task.module.to(memory_format=layout)
    optimizer = torch.optim.Adam(optimized(task, "model"), lr=cfg.lr)
    module, optimizer = fabric.setup(task.module, optimizer)
    optimizers = {"model": optimizer}
    critic = _setup_critic(task.adversary, fabric, layout, optimizers)
    resources.check_fits(step_bytes(task, cfg, fabric, layout), fabric.device,
                         f"a training step of --batch-size {cfg.batch_size} at --size {cfg.size}",
                         advice=MEMORY_ADVICE)
    start, trained = load_checkpoint(run, task, optimizers) if cfg.resume else (0, 0.0)
    if fabric.is_global_zero:
        (run / "previews").mkdir(parents=True, exist_ok=True)
    streams = _streams(task, cfg, start, fabric)
    if fabric.is_global_zero:  # nothing refuses the run after this: what the data scans skipped is news now
        for crops in task.datasets.values():
            crops.show_warnings()
    if cfg.settle:
        _settle(module, optimizer, streams, fabric, layout, cfg.settle)
    log = None
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=start, disable=cfg.quiet or not fabric.is_global_zero, unit="step",
               dynamic_ncols=True)
    began, step, saved, losses, last = time.perf_counter(), start, start, {}, time.perf_counter()
    out: dict[str, torch.Tensor] = {}

    def finite_losses() -> dict[str, float]:
        read = _read_losses(out)
        if not all(math.isfinite(v) for v in read.values()):
            raise DivergenceError(f"the loss became non-finite by step {step}; the checkpoint of step {saved} is "
                                  f"kept: resume from it with a lower --lr, or clip gradients with --clip")
        return read

    # Any exception, or a second signal, mid-step leaves the last checkpoint as it was: the state in memory may be
    # half a step ahead of `step`. A stop request ends the loop at a step boundary instead, and is saved below.
    with signals.stop_requests() as stop, contextlib.closing(bar):
        while step < cfg.steps and not stop:
            if cfg.time_limit and time.perf_counter() - began > cfg.time_limit:
                break
            batch = _next_batch(streams, fabric, layout)
            factor = min(1.0, (step + 1) / cfg.warmup if cfg.warmup else 1.0) / (1 + cfg.lr_decay * step)
            lr = cfg.lr * factor
            for group in optimizer.param_groups:
                group["lr"] = lr
            out = module(**batch)
            fabric.backward(out["total"])
            if cfg.clip:
                fabric.clip_gradients(module, optimizer, max_norm=cfg.clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if critic is not None:
                out.update(_critic_steps(task.adversary, critic, optimizers["critic"], fabric, batch,
                                         out["output"].detach(), factor, cfg.seed, step))
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                losses = finite_losses()
                bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items() if "." not in k}, refresh=False)
                if fabric.is_global_zero:
                    log = log or _Log(run, start, list(losses))
                    now = time.perf_counter()
                    log.write({"step": step, "lr": lr, "seconds_per_step": round((now - last) / cfg.log_every, 4),
                               **{k: round(v, 6) for k, v in losses.items()}})
                    last = now
            if step % cfg.preview_every == 0 and fabric.is_global_zero:
                _preview(batch, out["output"], run / "previews" / f"step_{step:07d}.png")
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                finite_losses()
                if fabric.is_global_zero:
                    save_checkpoint(run, task, optimizers, step, cfg, trained + time.perf_counter() - began)
                saved = step
        if out:
            losses = finite_losses()
        seconds = trained + time.perf_counter() - began
        if fabric.is_global_zero and step > saved:
            save_checkpoint(run, task, optimizers, step, cfg, seconds)
    if stop:
        raise Interrupted(stop[0], f"stopped by {signals.name(stop[0])} at step {step} of {cfg.steps}; the checkpoint "
                                   f"in {run} continues it with --resume")
    if step >= cfg.steps and fabric.is_global_zero:
        export_weights(task, run, cfg, step, seconds, hardware(fabric.device))
    return {"segment_steps": step - start, "step": step, "losses": losses, "seconds": round(seconds, 1),
            "hardware": hardware(fabric.device)}
