"""Train every release recipe on a lent GPU machine, in a few short commands, and bring the weights back.

On the GPU machine (the kit travels with `carry=["kit"]`; build it here with `make weights-kit`):

  python3 tools/release.py start --time-limit 420      copy code, recipes and kit to local disk, start one detached
                                                       process per group of recipes (all fast styles of one
                                                       architecture train together), return at once
  python3 tools/release.py status                      per run: state, step, steps/s, ETA, losses; GPU load
  python3 tools/release.py collect --out $OUT          fp16 weights (with bf16 optimizer moments to continue
                                                       from), metrics.csv and a preview grid per model, packed
                                                       into tar files of at most 15 MiB (≤ 8 files back)
  python3 tools/release.py stop                        checkpoint and stop every run (weights so far: *.partial)

Back here:

  python tools/release.py unpack DIR                   models into brushwork/models/, logs and previews into
                                                       out/release/ (partial weights only with --allow-partial)

Each command there returns in seconds: training runs in processes started with setsid, which outlive the call, from
a copy on the machine's local disk (a new call replaces the working tree, and the carried kit with it). Runs stop
and checkpoint by themselves at --time-limit; `start --resume` continues them on the same machine, and `start
--continue-from DIR` on the next machine, from the weights an earlier `collect` brought back (their step count and
wall time go on, and so do their optimizers' second moments, which `collect` brings beside the weights; weights
without them settle a fresh optimizer at lr 0 first). `--dry-run` trains each group for a few steps at 64 px on the
CPU, style images scaled alike: the test suite runs it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the GPU machine runs this from the working tree, with brushwork not installed
DEFAULT_WORK = Path("/tmp/brushwork-release")
WORK_PARTS = ("code", "kit", "runs", "continue")  # what start makes in --work: all a new start may remove
DRY_RUN = {"steps": 4, "batch_size": 2, "size": 64, "precision": "32", "device": "cpu", "workers": 0,
           "log_every": 1, "preview_every": 4, "checkpoint_every": 2}
RUN_DEFAULTS = {"quiet": True, "workers": 4, "log_every": 25, "checkpoint_every": 1000, "preview_every": 1000}
PACK_MB = 15.0
SETTLE, DRY_RUN_SETTLE = 100, 2  # lr-0 steps that fill a fresh optimizer's moments: weights without their own


def _group_id(group) -> str:
    first = group[0]
    return f"{first.method}-{first.model['arch']}" if first.method == "fast" else first.name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a finished child that nobody reaped is a zombie: not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return True


def _runs(work: Path) -> list[Path]:
    return sorted(p.parent for p in (work / "runs").glob("*/group.json"))


def cmd_start(args: argparse.Namespace) -> int:
    from brushwork.train.loop import all_have_moments
    from brushwork.train.recipes import group_recipes, load_recipes

    work, kit = args.work, args.kit
    if not (kit / "manifest.json").is_file():
        raise SystemExit(f"release: error: {kit} is not a kit (no manifest.json); build it with `make weights-kit`")
    if args.continue_from and not args.continue_from.is_dir():
        raise SystemExit(f"release: error: --continue-from {args.continue_from}: no such folder")
    running = [r.name for r in _runs(work) if (r / "pid").is_file() and _alive(int((r / "pid").read_text()))]
    if running:
        raise SystemExit(f"release: error: runs still going in {work}: {', '.join(running)} (status, or stop)")
    if work.exists() and not args.resume:
        strays = sorted(p.name for p in work.iterdir() if p.name not in WORK_PARTS) if work.is_dir() else [work.name]
        if strays:
            raise SystemExit(f"release: error: --work {work} holds other files ({', '.join(strays[:3])}) and a new "
                             f"release empties it: give a new folder, or an earlier release's")
        shutil.rmtree(work)
    code = work / "code"
    shutil.rmtree(code, ignore_errors=True)
    for part in ("brushwork", "recipes", "tools"):
        shutil.copytree(ROOT / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
    if not (work / "kit").is_dir():
        shutil.copytree(kit, work / "kit")
    manifest = json.loads((work / "kit" / "manifest.json").read_text())
    overrides = dict(DRY_RUN) if args.dry_run else {}
    overrides["short_side"] = manifest["short_side"]
    if args.device:
        overrides["device"] = args.device
    if args.time_limit:
        overrides["time_limit"] = args.time_limit
    for item in args.set or []:
        overrides.update(_setting(item))
    recipes = load_recipes(code / "recipes", args.only)
    for spec in args.variant or []:
        recipes.append(_variant(spec, recipes))
    if args.dry_run:
        recipes = [_dry_run_style(r, overrides["size"]) for r in recipes]
    for r in recipes:
        crop = overrides.get("size", r.crop)
        if crop > manifest["short_side"]:
            raise SystemExit(f"release: error: {r.name} crops {crop} px but the kit's images are "
                             f"{manifest['short_side']} px on the short side; rebuild the kit")
    _check_layers(recipes, manifest)
    started, ids = [], set()
    for group in group_recipes(recipes):
        run_id = _group_id(group)
        run_id = next(f"{run_id}-{i}" for i in range(1, 99) if f"{run_id}-{i}" not in ids) if run_id in ids else run_id
        ids.add(run_id)
        run = work / "runs" / run_id
        run.mkdir(parents=True, exist_ok=True)
        carried = _continued(group, args.continue_from, work / "continue" / run_id) if args.continue_from else {}
        bare = bool(carried) and not all_have_moments(carried.values())
        settle = (DRY_RUN_SETTLE if args.dry_run else SETTLE) if bare else 0
        (run / "group.json").write_text(json.dumps({"recipes": [r.to_dict() for r in group], "overrides": overrides,
                                                    "continue": carried, "settle": settle}, indent=1))
        for stale in ("done.json", "failed.txt"):
            (run / stale).unlink(missing_ok=True)
        log = open(run / "log.txt", "a")
        env = {**os.environ, "PYTHONPATH": str(code), "PYTHONUNBUFFERED": "1"}
        if args.dry_run:  # CPU processes side by side: one thread each, or OpenMP's spinning threads fight
            env["OMP_NUM_THREADS"] = "1"
        proc = subprocess.Popen([sys.executable, str(code / "tools" / "release.py"), "run", str(run)], cwd=work,
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        (run / "pid").write_text(str(proc.pid))
        how = "" if not args.continue_from else " (continues from " + (
            f"{args.continue_from}{', weights only' if bare else ''})" if carried
            else f"nothing: {args.continue_from} has none of its weights)")
        started.append(f"{run.name} (pid {proc.pid}){how}: {', '.join(r.name for r in group)}")
    print(f"started {len(started)} run(s) in {work}:\n  " + "\n  ".join(started))
    if args.wait:
        while any(_state(r)[0] == "running" for r in _runs(work)):
            time.sleep(1)
        return cmd_status(args)
    return 0


def _dry_run_style(recipe, crop: int):
    """A fast recipe whose style image is seen at the dry run's scale: `style_size` in the recipe's own ratio to its
    crop (512 px for 256 px crops: 128 px for 64 px ones). Gram targets of 512 px paintings, eight per fast group on
    one thread, were a quarter of a dry run's CPU time."""
    from dataclasses import replace

    style_size = recipe.model.get("style_size")
    if not style_size:
        return recipe
    scaled = max(crop, round(style_size * crop / recipe.crop))
    return replace(recipe, model={**recipe.model, "style_size": scaled})


def _check_layers(recipes, manifest: dict) -> None:
    """Every recipe reads only layers the kit's cut weights hold: the kit is cut for the recipes it was built
    from, and a variant (`--variant NAME=starry_night:layers="johnson"`) may read deeper."""
    from brushwork.backbones import get_spec
    from brushwork.train.recipes import deepest_loss_layer

    models: dict = {}
    for r in recipes:
        backbone = r.model["backbone"]
        entry = manifest["weights"].get(backbone)
        if entry is None:
            raise SystemExit(f"release: error: {r.name} trains on {backbone}, which the kit has no weights for; "
                             f"rebuild the kit")
        model = models.setdefault(backbone, get_spec(backbone).architecture())
        names = model.layer_names
        deepest = deepest_loss_layer([r], model)
        if names.index(deepest) > names.index(entry["cut_after"]):
            raise SystemExit(f"release: error: {r.name} reads {backbone}'s {deepest}, past the kit's cut after "
                             f"{entry['cut_after']}; rebuild the kit with a recipe that reads it in recipes/")


def _continued(group, source: Path, dest: Path) -> dict[str, str]:
    """The weights a group continues from: each recipe's file in `source` (an earlier release's collected or
    unpacked files, final or .partial), copied beside the run with its optimizer moments when they are there; none
    when `source` has none of them."""
    from brushwork.train.loop import copy_exported

    found = {}
    for r in group:
        files = [source / f"{r.file_stem}{suffix}.safetensors" for suffix in ("", ".partial")]
        hit = next((f for f in files if f.is_file()), None)
        if hit is not None:
            found[r.file_stem] = hit
    if found and len(found) < len(group):
        missing = sorted({r.file_stem for r in group} - set(found))
        raise SystemExit(f"release: error: {source} holds weights for some of a group but not {', '.join(missing)}; "
                         f"a group continues all together or starts afresh")
    dest.mkdir(parents=True, exist_ok=True)
    copied = {}
    for stem, f in found.items():
        copied[stem] = str(copy_exported(f, dest / f"{stem}.safetensors"))
    return copied


def _setting(item: str) -> dict:
    """KEY=VALUE → one loop setting for every run, typed like TrainConfig's field (precision=32, data=disk)."""
    from dataclasses import fields

    from brushwork.train.loop import TrainConfig

    key, sep, value = item.partition("=")
    kinds = {f.name: type(getattr(TrainConfig(), f.name)) for f in fields(TrainConfig)}
    if not sep or key not in kinds:
        raise SystemExit(f"release: error: --set takes KEY=VALUE with KEY a loop setting "
                         f"({', '.join(sorted(kinds))}), got {item!r}")
    kind = kinds[key]
    try:
        return {key: value.lower() in ("1", "true", "yes", "on") if kind is bool else kind(value)}
    except ValueError:
        wanted = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
        raise SystemExit(f"release: error: --set {item!r}: {key} takes {wanted}") from None


def _variant(spec: str, recipes: list):
    """NAME=RECIPE:KEY=VALUE,KEY=VALUE → a copy of RECIPE named NAME with those settings."""
    from brushwork.train.recipes import variant

    try:
        name, rest = spec.split("=", 1)
        base, settings = rest.split(":", 1)
        pairs = dict(item.split("=", 1) for item in settings.split(","))
    except ValueError:
        raise SystemExit(f"release: error: --variant takes NAME=RECIPE:KEY=VALUE[,KEY=VALUE], got {spec!r}") from None
    found = [r for r in recipes if r.name == base]
    if not found:
        raise SystemExit(f"release: error: --variant {spec!r}: no recipe named {base}")
    return variant(found[0], name, pairs)


def cmd_run(args: argparse.Namespace) -> int:
    """One group's training process (started by `start`): train, then mark the run done, stopped or failed."""
    from brushwork.train.loop import checkpoint_from_weights, export_moments, export_weights, read_exports
    from brushwork.train.recipes import Recipe, build_kit_task, loop_config

    run = args.run
    work = run.parent.parent
    spec = json.loads((run / "group.json").read_text())

    def stop(signum, frame):  # `stop` sends SIGTERM: unwind through the loop, which checkpoints on the way out
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        from brushwork.train import train

        group = [_after_init(Recipe.from_dict(r), work) for r in spec["recipes"]]
        seeded = (run / "train" / "checkpoint").is_dir()
        carried = spec.get("continue") or {}
        fresh = bool(carried) and not seeded
        cfg = loop_config(group, **{**RUN_DEFAULTS, **spec["overrides"], "out": str(run / "train"),
                                    "resume": seeded or fresh, "settle": spec.get("settle", 0) if fresh else 0})
        task = build_kit_task(group, cfg, work / "kit")
        if fresh:
            step, seconds, moments = read_exports(task, {stem: Path(f) for stem, f in carried.items()})
            how = "with their optimizer's second moments" if moments else f"weights only, {cfg.settle} settling steps"
            print(f"continuing from step {step} ({seconds:.0f} s trained before), {how}: "
                  f"{', '.join(carried.values())}", flush=True)
            checkpoint_from_weights(run / "train", task, cfg, step, seconds, moments)
        try:
            summary = train(task, cfg)
        except KeyboardInterrupt:  # the loop checkpointed on its way out, if it had taken a step
            state = run / "train" / "checkpoint" / "state.json"
            saved = json.loads(state.read_text()) if state.is_file() else {"step": 0, "seconds": 0.0}
            summary = {"step": saved["step"], "seconds": saved["seconds"], "stopped": True}
        summary["steps"] = cfg.steps
        suffix = ".partial" if summary["step"] < cfg.steps else ""
        if suffix:  # stopped early: export what there is, marked partial
            export_weights(task, run / "train", cfg, summary["step"], summary["seconds"],
                           summary.get("hardware", "unknown"), suffix=suffix)
        if (run / "train" / "checkpoint").is_dir():
            export_moments(task, run / "train", suffix)
        (run / "done.json").write_text(json.dumps(summary, indent=1))
    except BaseException:
        (run / "failed.txt").write_text(traceback.format_exc())
        return 1
    return 0


def _after_init(recipe, work: Path):
    """A gan recipe whose `init` names another run of this release waits for that run to end (the gan run's time
    limit counts from when it starts training), then starts from its weights: final, else partial."""
    from dataclasses import replace

    init = recipe.model.get("init")
    source = work / "runs" / str(init)
    if recipe.method != "gan" or not (source / "group.json").is_file():
        return recipe
    print(f"waiting for {init} to end: {recipe.name} fine-tunes its weights", flush=True)
    while _state(source)[0] == "running":
        time.sleep(5)
    from brushwork.train.recipes import Recipe

    stem = Recipe.from_dict(json.loads((source / "group.json").read_text())["recipes"][0]).file_stem
    for suffix in ("", ".partial"):
        trained = source / "train" / f"{stem}{suffix}.safetensors"
        if trained.is_file():
            print(f"{recipe.name} starts from {trained}", flush=True)
            return replace(recipe, model={**recipe.model, "init": str(trained)})
    raise RuntimeError(f"{init} ended ({_state(source)[0]}) without weights for {recipe.name} to start from")


def _last_rows(path: Path, count: int = 5) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))[-count:]


def _state(run: Path) -> tuple[str, dict]:
    if (run / "failed.txt").is_file():
        return "failed", {}
    if (run / "done.json").is_file():
        done = json.loads((run / "done.json").read_text())
        return ("finished" if done["step"] >= done["steps"] else "stopped"), done
    pid = int((run / "pid").read_text()) if (run / "pid").is_file() else 0
    return ("running" if pid and _alive(pid) else "died"), {}


def _gpu() -> str:
    """Mean GPU utilization over 2 s and memory in use, from nvidia-smi (absent on a CPU machine)."""
    query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"]
    samples = []
    try:
        for _ in range(5):
            samples.append([float(v) for v in subprocess.check_output(query, text=True).split(",")])
            time.sleep(0.4)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return "gpu: no nvidia-smi"
    util = sum(s[0] for s in samples) / len(samples)
    return f"gpu: {util:.0f}% busy (mean of {len(samples)} samples), {samples[-1][1]:.0f}/{samples[-1][2]:.0f} MiB"


def cmd_status(args: argparse.Namespace) -> int:
    runs = _runs(args.work)
    if not runs:
        print(f"no runs in {args.work}")
        return 1
    print(f"{'run':<20}{'state':<10}{'step':>13}{'steps/s':>9}{'elapsed':>9}{'eta':>8}  losses")
    for run in runs:
        state, done = _state(run)
        spec = json.loads((run / "group.json").read_text())
        rows = _last_rows(run / "train" / "metrics.csv")
        step = int(rows[-1]["step"]) if rows else done.get("step", 0)
        total = spec["overrides"].get("steps") or int(spec["recipes"][0]["train"].get("steps", 0))
        per_step = [float(r["seconds_per_step"]) for r in rows if float(r["seconds_per_step"]) > 0]
        rate = len(per_step) / sum(per_step) if per_step else 0.0
        started = (run / "group.json").stat().st_mtime
        ended = (run / "done.json").stat().st_mtime if done else time.time()
        elapsed = ended - started
        eta = f"{(total - step) / rate / 60:.1f}m" if rate and state == "running" else "-"
        losses = ", ".join(f"{k} {float(v):.3g}" for k, v in (rows[-1].items() if rows else [])
                           if k in ("total", "content", "style", "tv", "adv", "wasserstein"))
        print(f"{run.name:<20}{state:<10}{f'{step}/{total}':>13}{rate:>9.2f}{elapsed / 60:>8.1f}m{eta:>8}  {losses}")
        if state == "failed":
            print("  " + (run / "failed.txt").read_text().strip().splitlines()[-1])
    print(_gpu())
    return 0


def _split_metrics(source: Path, names: dict[str, str], out: Path) -> None:
    """One STEM.metrics.csv per model: a multi-style run logs NAME.content, NAME.style and NAME.tv per style
    (none for a run stopped before its first log row)."""
    if not source.is_file():
        return
    with source.open(newline="") as f:
        reader = csv.DictReader(f)
        rows, header = list(reader), reader.fieldnames or []
    base = ["step", "lr", "seconds_per_step"]
    for name, stem in names.items():
        own = {k: f"{name}.{k}" for k in ("content", "style", "tv") if f"{name}.{k}" in header}
        columns = own or {k: k for k in header if k not in base}
        with (out / f"{stem}.metrics.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(base + list(columns))
            writer.writerows([row[k] for k in base] + [row[v] for v in columns.values()] for row in rows)


def _preview(model: Path, kit: Path, out: Path, device: str, side: int) -> None:
    """The model on the kit's preview photos: a fast model's style image and outputs, or an arbitrary-style model
    (adain, gan, transformer) with the kit's style images, in one PNG of `side`-px cells."""
    import torch

    from brushwork import api, io
    from brushwork.weights import read_safetensors

    photos = [io.load_image(p) for p in sorted((kit / "preview").glob("*.jpg"))]
    if not photos:
        return
    fit = [io.resize(p, io.fit_long_side(*p.shape[-2:], side)) for p in photos]
    meta = read_safetensors(model)[1]
    weights = str(kit / "weights" / f"{meta.get('backbone', 'vgg16-hed')}.safetensors")
    if meta.get("method") in ("adain", "gan", "transformer"):
        styles = sorted((kit / "styles").glob("*.jpg"))[:4]
        encoder = {"weights": weights} if meta["method"] != "transformer" else {}  # it has its own encoders
        # the last column is alpha 0, the photo's own features decoded (the transformer: the photo stylized by
        # itself), which a trained model gives back: how far a decoder has come shows there first
        rows = [[p] + [api.run(p, s, method=meta["method"], model=str(model), size=side, device=device, alpha=a,
                               **encoder).image for s, a in [*((s, 1.0) for s in styles), (styles[0], 0.0)]]
                for p in fit]
        heads = [torch.ones_like(fit[0])] + [io.load_image(s) for s in styles] + [torch.ones_like(fit[0])]
        rows.insert(0, heads)
    else:
        style = kit / "styles" / meta.get("style", "")
        head = io.load_image(style) if style.is_file() else torch.ones_like(fit[0])
        rows = [[head] + fit, [torch.ones_like(fit[0])] + [api.run(p, method="fast", model=str(model), size=side,
                                                                    device=device).image for p in fit]]
    cells = [[io.square_cell(c, side) for c in row] for row in rows]
    grid = torch.cat([torch.cat(row, dim=-1) for row in cells], dim=-2)
    io.save_image(grid, out)


def cmd_collect(args: argparse.Namespace) -> int:
    from brushwork.train.loop import copy_exported
    from brushwork.train.recipes import Recipe

    if args.preview_size < 0:
        raise SystemExit(f"release: error: --preview-size {args.preview_size}: give a side in px, or 0 for none")
    if not _runs(args.work):
        raise SystemExit(f"release: error: no runs in {args.work}: nothing to collect")
    out = args.out
    staging = out / "release"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    report = []
    for run in _runs(args.work):
        state, done = _state(run)
        if state not in ("finished", "stopped"):
            report.append(f"{run.name}: {state}, nothing collected")
            continue
        spec = json.loads((run / "group.json").read_text())
        group = [Recipe.from_dict(r) for r in spec["recipes"]]
        suffix = "" if state == "finished" else ".partial"
        names = {r.name: r.file_stem + suffix for r in group}
        for r in group:
            source = run / "train" / f"{r.file_stem}{suffix}.safetensors"
            copy_exported(source, staging / source.name)  # its moments too: what the next loan continues with
            if args.preview_size:
                _preview(source, args.work / "kit", staging / f"{r.file_stem}{suffix}.preview.png", "auto",
                         args.preview_size)
        _split_metrics(run / "train" / "metrics.csv", names, staging)
        (staging / f"{run.name}.log.txt").write_text((run / "log.txt").read_text()[-20000:])
        report.append(f"{run.name}: {state} at step {done['step']}/{done['steps']}, {len(group)} model(s)")
    (staging / "collected.txt").write_text("\n".join(report) + "\n")
    files = sorted(staging.iterdir())
    if args.pack_mb:
        packs, current, size = [], [], 0
        for f in files:
            if current and size + f.stat().st_size > args.pack_mb * 2 ** 20:
                packs.append(current)
                current, size = [], 0
            current.append(f)
            size += f.stat().st_size
        packs.append(current)
        for i, pack in enumerate(packs, 1):
            with tarfile.open(out / f"release-{i}.tar", "w") as tar:
                for f in pack:
                    tar.add(f, arcname=f.name)
        shutil.rmtree(staging)
        print(f"wrote {len(packs)} tar file(s) to {out}")
    print("\n".join(report))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    for run in _runs(args.work):
        if _state(run)[0] == "running":
            os.kill(int((run / "pid").read_text()), signal.SIGTERM)
            print(f"{run.name}: asked to checkpoint and stop")
    return 0


def cmd_unpack(args: argparse.Namespace) -> int:
    source = args.source
    tars = sorted(source.glob("release-*.tar"))
    if not tars and not (source / "release").is_dir():
        raise SystemExit(f"release: error: {source} holds no release-*.tar nor release/: give the folder `collect "
                         f"--out` wrote")
    staging = args.logs
    staging.mkdir(parents=True, exist_ok=True)
    for tar in tars:
        with tarfile.open(tar) as t:
            t.extractall(staging, filter="data")
    if (source / "release").is_dir():
        shutil.copytree(source / "release", staging, dirs_exist_ok=True)
    models = args.models
    models.mkdir(parents=True, exist_ok=True)
    for f in sorted(staging.glob("*.safetensors")):
        if f.name.endswith(".moments.safetensors"):  # for a later loan's --continue-from; never shipped
            continue
        if f.name.endswith(".partial.safetensors") and not args.allow_partial:
            print(f"kept back {f.name}: it saw fewer steps than its recipe (--allow-partial to ship it)")
            continue
        shutil.copy2(f, models / f.name.replace(".partial", ""))
        print(f"{models / f.name.replace('.partial', '')}")
    print(f"logs and previews: {staging}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help=f"local working folder, which a new start empties: a new one or an earlier release's "
                             f"({DEFAULT_WORK})")
    common = argparse.ArgumentParser(add_help=False)  # --work also after the verb
    common.add_argument("--work", type=Path, default=argparse.SUPPRESS, help="local working folder")
    sub = parser.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("start", parents=[common])
    s.add_argument("--kit", type=Path, default=ROOT / "kit")
    s.add_argument("--only", nargs="+", help="recipe names to train (default: all)")
    s.add_argument("--device", help="cuda | cpu (default: the loop's auto)")
    s.add_argument("--time-limit", type=float, default=0.0, help="each run stops and checkpoints after this many "
                                                                 "seconds")
    s.add_argument("--resume", action="store_true", help="continue the runs in --work from their checkpoints")
    s.add_argument("--variant", action="append", metavar="NAME=RECIPE:KEY=VALUE,...",
                   help="also train a copy of RECIPE named NAME with other settings, e.g. "
                        "adain-sw05=adain-vgg16-hed:style_weight=0.5 (repeatable)")
    s.add_argument("--continue-from", type=Path, metavar="DIR",
                   help="start each group from its models' weights in DIR (files an earlier release collected), at "
                        "their step count, with fresh optimizers: training spread over machines that come and go")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a loop setting for every run, e.g. precision=32 or data=disk (repeatable)")
    s.add_argument("--dry-run", action="store_true", help="a few steps at 64 px on the CPU")
    s.add_argument("--wait", action="store_true", help="return when every run has ended, with the status")
    r = sub.add_parser("run", parents=[common])
    r.add_argument("run", type=Path)
    sub.add_parser("status", parents=[common])
    c = sub.add_parser("collect", parents=[common])
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--pack-mb", type=float, default=PACK_MB, help="tar files of at most this size (0: loose files)")
    c.add_argument("--preview-size", type=int, default=256, help="the preview grids' cell side in px (0: none)")
    sub.add_parser("stop", parents=[common])
    u = sub.add_parser("unpack", parents=[common])
    u.add_argument("source", type=Path, help="the folder `collect --out` wrote (tar files or loose)")
    u.add_argument("--allow-partial", action="store_true")
    u.add_argument("--models", type=Path, default=ROOT / "brushwork" / "models", help="where model files go")
    u.add_argument("--logs", type=Path, default=ROOT / "out" / "release", help="where logs and previews go")
    args = parser.parse_args()
    args.work = args.work.absolute()  # the runs' processes start in it: a relative path would be read twice over
    verbs = {"start": cmd_start, "run": cmd_run, "status": cmd_status, "collect": cmd_collect, "stop": cmd_stop,
             "unpack": cmd_unpack}
    return verbs[args.verb](args)


if __name__ == "__main__":
    sys.exit(main())
