"""The `brushwork` command. Every BrushworkError becomes one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import typing
from collections import Counter
from pathlib import Path
from typing import Any

from .errors import BrushworkError, ConfigError, ImageError, Interrupted, OutputError, SizeError, out_of_memory
from .lazy import lazy
from .methods import Step, get_method, method_names, method_specs
from .options import check_values, field_type, help_text, label
from .train import TrainConfig, train
from .train.loop import check_run
from .version import __version__
from .video.options import VideoOptions

# What a run needs is imported when it starts: `--help`, `methods` and a bad argument answer without torch.
api = lazy("brushwork.api")
backbones = lazy("brushwork.backbones")
evaluation = lazy("brushwork.evaluation")
export = lazy("brushwork.export")
io = lazy("brushwork.io")
metrics = lazy("brushwork.metrics")
video = lazy("brushwork.video")
weights = lazy("brushwork.weights")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"brushwork: error: {message}\n")


def _flag_kind(hint: Any, f: dataclasses.Field) -> dict[str, Any]:
    """argparse settings for a field's type: flags for bools, comma-separated lists unless the field asks for
    separate values (nargs), and the plain type otherwise."""
    kind = field_type(hint)
    if kind is bool:
        return {"action": "store_true"}
    if typing.get_origin(kind) is list:
        item = typing.get_args(kind)[0]
        if "nargs" in f.metadata:
            return {"type": item, "nargs": f.metadata["nargs"]}
        return {"type": _floats if item is float else _names}
    return {"type": kind}


def _cli_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """The fields of an options dataclass that are flags (those with help text), with their resolved types."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if help_text(f)]


def _default(f: dataclasses.Field) -> Any:
    return None if f.default is dataclasses.MISSING else f.default


def _with_default(text: str, default: Any) -> str:
    return text if default is None or default is False else f"{text} (default {default})"


def add_option_flags(parser: argparse.ArgumentParser, cls: type, **defaults: Any) -> None:
    """One flag per option field of `cls`, with the field's default (or the one given here) and help text."""
    for f, hint in _cli_fields(cls):
        default = defaults.get(f.name, _default(f))
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        parser.add_argument(label(f), dest=f.name, required=required, **_flag_kind(hint, f),
                            default=None if required else default, help=_with_default(help_text(f), default))


def add_stylize_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per option of any method, unset by default so that presets apply. An option that not every method
    has says which ones take it, and how each reads it where they differ."""
    specs = method_specs()
    seen: dict[str, list[tuple[str, dataclasses.Field, Any]]] = {}
    for spec in specs:
        for f, hint in _cli_fields(spec.options):
            seen.setdefault(f.name, []).append((spec.name, f, hint))
    for name, entries in seen.items():
        texts: dict[str, list[str]] = {}
        for method, f, _ in entries:
            texts.setdefault(_with_default(help_text(f), _default(f)), []).append(method)
        everyone = len(entries) == len(specs) and len(texts) == 1
        text = next(iter(texts)) if everyone else "; ".join(f"{', '.join(m)}: {t}" for t, m in texts.items())
        _, f, hint = entries[0]
        parser.add_argument(label(f), dest=name, default=None, help=text, **_flag_kind(hint, f))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="brushwork", description="Neural style transfer: paint a photo in a painting's style.")
    parser.add_argument("--version", action="version", version=f"brushwork {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    s = sub.add_parser("stylize", help="stylize a content image with one or more style images")
    s.add_argument("content", help="content image, or a folder of them (then -o is an output folder)")
    carriers = ", ".join(spec.name for spec in method_specs() if not spec.capabilities.styles)
    s.add_argument("styles", nargs="*", metavar="style", help=f"style image(s); several are blended (none for "
                                                             f"{carriers}, whose model carries the style)")
    s.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .tif); a .json sidecar is "
                                                         "written beside it")
    s.add_argument("--method", default="optimize", choices=method_names())
    presets = "; ".join(f"{spec.name}: {' | '.join(spec.presets)}" for spec in method_specs())
    s.add_argument("--preset", default="default", help=f"a bundle of options that explicit ones override ({presets})")
    s.add_argument("--mask", nargs="+", action="extend", dest="masks",
                   help="one mask image per style (repeatable): white = that style's region")
    s.add_argument("--save-every", type=int, default=0, metavar="N", help="also save the image every N iterations")
    add_stylize_flags(s)

    v = sub.add_parser("video", help="stylize a video, consistently from frame to frame (frame rate, aspect ratio "
                                     "and audio kept)")
    v.add_argument("input", help="the source video (.mp4, .mov, .mkv, ...)")
    v.add_argument("styles", nargs="*", metavar="style", help="style image(s), as for stylize")
    v.add_argument("-o", "--output", required=True, help="the output video (.mp4, .mov, .mkv, .m4v); a .json "
                                                         "sidecar is written beside it")
    v.add_argument("--method", default="optimize", choices=method_names())
    v.add_argument("--preset", default="default", help="a bundle of options that explicit ones override")
    v.add_argument("--mask", nargs="+", action="extend", dest="masks",
                   help="one mask image per style, for every frame (repeatable)")
    add_stylize_flags(v)
    add_option_flags(v, VideoOptions)

    e = sub.add_parser("eval", help="grade stylized images: content and style fidelity, set-level scores")
    e.add_argument("outputs", nargs="*", metavar="output", help="stylized image(s); with --pairs, also folders "
                                                               "of images named CONTENT__STYLE.png")
    e.add_argument("--content", help="the content image the outputs were made from")
    e.add_argument("--style", help="the style image the outputs were made with")
    e.add_argument("--pairs", metavar="DIR", help="a folder with content/ and style/; outputs named "
                                                  "CONTENT__STYLE.png are looked up there (default: DIR itself)")
    e.add_argument("--backbone", help="grading backbone (default: one that made none of the outputs, "
                                      "from their sidecars)")
    e.add_argument("--weights", help="weights file for the grading backbone")
    e.add_argument("--size", type=int, help="grade at this long side (default: the content's size)")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.add_argument("--video", action="store_true", help="the outputs are videos made from the video --content: "
                                                       "report their flicker (warping error) against the source's")

    t = sub.add_parser("train", help="train a feed-forward model")
    methods = t.add_subparsers(dest="train_method", required=True, parser_class=Parser)
    for spec in method_specs():
        if spec.training is not None:
            m = methods.add_parser(spec.name, help=spec.training.help)
            add_option_flags(m, spec.training.options)
            add_option_flags(m, TrainConfig, **spec.training.loop_defaults)

    b = sub.add_parser("backbones", help="list backbones, their layers and whether their weights are present")
    b.add_argument("--json", action="store_true")
    m = sub.add_parser("methods", help="list methods and their presets")
    m.add_argument("--json", action="store_true", help="print the list as JSON (each preset with its settings)")
    shipped = sub.add_parser("models", help="list the trained models that ship with brushwork, per method")
    shipped.add_argument("--json", action="store_true", help="print the list as JSON (each model's metadata)")
    exporters = ", ".join(spec.name for spec in method_specs() if spec.models is not None)
    x = sub.add_parser("export", help=f"export a trained model ({exporters}) to ONNX or TorchScript")
    x.add_argument("model", help="a shipped model name or a model file (.safetensors)")
    x.add_argument("--format", required=True, help="onnx | torchscript")
    x.add_argument("-o", "--output", required=True, help="the exported file")
    bt = sub.add_parser("batch", help="stylize a folder, glob or manifest of images, here or on a Ray cluster "
                                      "(resumable; needs brushwork[cluster])")
    bt.add_argument("source", help="a folder, a glob (dir/*.jpg) or a manifest (.csv or .parquet with a content "
                                   "column, an optional style column, and option columns); local or s3://, gs://")
    bt.add_argument("-o", "--output", required=True, help="output folder (local or s3://, gs://)")
    bt.add_argument("--style", nargs="+", dest="styles", help="style image(s): each content is stylized with each")
    bt.add_argument("--method", default="optimize", choices=method_names())
    bt.add_argument("--preset", default="default", help="a bundle of options that explicit ones override")
    bt.add_argument("--engine", default="local", choices=["local", "ray"], help="in this process, or on Ray")
    bt.add_argument("--address", help="the Ray cluster to join (auto: the running one; default: a new local one)")
    bt.add_argument("--workers", type=int, default=2, help="Ray actors, each holding a loaded model (default 2)")
    bt.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each Ray actor takes (default 0)")
    bt.add_argument("--batch-size", type=int, default=4, help="rows handed to an actor at a time (default 4)")
    add_stylize_flags(bt)

    u = sub.add_parser("ui", help="a local web page for stylizing one image at a time (needs brushwork[ui])")
    u.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    u.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    u.add_argument("--styles", help="a folder of style images to pick from in the page")
    u.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload accepted (default 20)")
    return parser


def _stylize_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line (None means unset, so the preset's value holds)."""
    names = {f.name for spec in method_specs() for f, _ in _cli_fields(spec.options)}
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _intermediate_saver(output: Path, every: int, inputs: list) -> typing.Callable[[Step], None]:
    """Every `every`-th iteration as OUTPUT_00010.png beside the output; refused before any work where one of
    those names is an input."""
    frame = re.compile(rf"{re.escape(output.stem)}_\d{{5,}}{re.escape(output.suffix)}")
    for src in map(Path, inputs):
        if frame.fullmatch(src.name) and src.resolve().parent == output.resolve().parent:
            raise OutputError(f"--save-every would overwrite the input {src}: give the output another name")

    def save(step: Step) -> None:
        if step.step % every == 0 and step.step != step.total:
            io.save_image(step.image, output.with_name(f"{output.stem}_{step.step:05d}{output.suffix}"))
    return save


def _stylize_folder(args: argparse.Namespace, options: dict) -> int:
    """Every image of a folder into an output folder (NAME.png plus its sidecar); a bad image is reported and
    skipped, and the exit code says whether any was."""
    io.check_folder_named(args.output)
    source, out_dir = Path(args.content), Path(args.output)
    if args.masks or args.save_every:
        raise ConfigError("--mask and --save-every apply to one image, not to a folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file: give an output folder when the content is a folder")
    if not out_dir.exists() and out_dir.suffix.lower() in io.IMAGE_SUFFIXES:
        raise ConfigError(f"{out_dir} names an image, but the content is a folder: give an output folder")
    if not out_dir.parent.is_dir():
        raise OutputError(f"output directory does not exist: {out_dir.parent}")
    if out_dir.resolve() == source.resolve():
        raise ConfigError(f"{out_dir} is the content folder: give another output folder")
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in io.IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(f"no images in {source}")
    stems = Counter(p.stem for p in files)  # x.jpg and x.png: x.jpg.png and x.png.png, or one result is lost
    made = not out_dir.exists()
    out_dir.mkdir(exist_ok=True)
    failed = 0
    from tqdm import tqdm

    try:
        for path in tqdm(files, disable=args.quiet, unit="image", dynamic_ncols=True):
            name = f"{path.stem}.png" if stems[path.stem] == 1 else f"{path.name}.png"
            try:
                api.stylize_file(path, args.styles, out_dir / name, method=args.method, preset=args.preset,
                                 **{**options, "quiet": True})
            except (ImageError, SizeError) as e:  # this image's fault: the others go on
                failed += 1
                print(f"brushwork: skipped {path}: {e}", file=sys.stderr)
    except BaseException:
        if made and not any(out_dir.iterdir()):  # an option every image refuses: leave no empty folder behind
            out_dir.rmdir()
        raise
    summary = f"wrote {len(files) - failed} image(s) to {out_dir}" + (f", skipped {failed}" if failed else "")
    if failed or not args.quiet:
        print(summary, file=sys.stderr if failed else sys.stdout)
    return 2 if failed else 0


def cmd_stylize(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if args.save_every < 0:
        raise ConfigError("--save-every must be >= 0")
    options = _stylize_options(args)
    folder = Path(args.content).is_dir()
    for path in [*([] if folder else [args.content]), *args.styles, *(args.masks or [])]:
        io.check_input_file(path)
    if folder:
        return _stylize_folder(args, options)
    inputs = [args.content, *args.styles, *(args.masks or []), *([options["init"]] if "init" in options else [])]
    io.check_output_path(args.output, tuple(inputs), sidecar=True)
    callback = _intermediate_saver(output, args.save_every, inputs) if args.save_every else None
    result = api.stylize_file(args.content, args.styles, output, method=args.method, preset=args.preset,
                              masks=args.masks, callback=callback, **options)
    if not args.quiet:
        seconds = result.stats["seconds"]["total"]
        print(f"wrote {output} ({result.image.shape[-1]}×{result.image.shape[-2]}, {seconds:.1f} s) and "
              f"{io.sidecar_path(output)}")
    return 0


METRIC_HEADERS = {"ssim": "ssim", "ms_ssim": "ms_ssim", "content": "content", "lpips_unweighted": "lpips_unw",
                  "gram": "gram", "mean_std": "mean_std", "wasserstein": "w2", "color": "color_lab"}


def cmd_video(args: argparse.Namespace) -> int:
    options = _stylize_options(args)
    opts = VideoOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(VideoOptions)})
    for path in [*args.styles, *(args.masks or [])]:
        io.check_input_file(path)
    result = video.stylize_video(args.input, args.styles or None, args.output, method=args.method,
                                 preset=args.preset, masks=args.masks, video=opts, **options)
    if not args.quiet:
        seconds = result.stats["seconds"]
        rate = result.frames / seconds["frames"] if seconds["frames"] else float("nan")
        cuts = f", scene cuts at frames {', '.join(map(str, result.stats['cuts']))}" if result.stats["cuts"] else ""
        print(f"wrote {result.output} ({result.frames} frames, {result.size[1]}×{result.size[0]}, "
              f"{rate:.2f} frames/s{cuts}) and {io.sidecar_path(result.output)}")
    return 0


def _eval_videos(args: argparse.Namespace) -> int:
    if not (args.content and args.outputs) or args.style or args.pairs:
        raise ConfigError("eval --video needs --content SOURCE_VIDEO OUTPUT_VIDEO [...] (no --style, no --pairs)")
    if args.backbone or args.weights or args.size is not None:
        raise ConfigError("eval --video measures flicker by optical flow at the videos' own size: it takes no "
                          "--backbone, --weights or --size")
    reports = [video.evaluate_video(out, args.content) for out in args.outputs]
    if args.json:
        print(io.to_json([r.as_dict() for r in reports]))
        return 0
    for report in reports:
        d = report.as_dict()
        print(f"{report.output}: warping error per frame pair (lower is steadier), output and source")
        for t, o, src in zip(report.pairs, report.output_errors, report.source_errors):
            print(f"  {t:>5} {o:>11.6f} {src:>11.6f}")
        cuts = f"; scene cuts at frames {', '.join(map(str, report.cuts))} left out" if report.cuts else ""
        if d["warping_error"] is None:
            print(f"no frame pair to measure over {report.frames} frames{cuts}: {report.output}")
            continue
        ratio = "" if d["relative_to_source"] is None else f": {d['relative_to_source']:.2f}× the source's"
        print(f"warping error {d['warping_error']:.6f} (source {d['source_warping_error']:.6f}{ratio}) over "
              f"{report.frames} frames{cuts}: {report.output}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.video:
        return _eval_videos(args)
    if args.pairs:
        if args.content or args.style:
            raise ConfigError("--pairs takes contents and styles from DIR; leave out --content and --style")
        triples = evaluation.pair_triples(args.pairs, args.outputs)
        labels = [f"{Path(c).stem} × {Path(s).stem}" for _, c, s in triples]
    else:
        if not (args.content and args.style and args.outputs):
            raise ConfigError("eval needs --content C --style S OUTPUT [OUTPUT ...], or --pairs DIR")
        triples = [(o, args.content, args.style) for o in args.outputs]
        labels = list(args.outputs)
    width = max(len(label) for label in labels + ["pair"])
    label_of = {str(o): label for (o, _, _), label in zip(triples, labels)}

    printed: list[dict] = []

    def print_row(row: dict) -> None:
        if not printed:  # the header comes with the first row: an input refused before it prints nothing
            print("higher is better: ssim, ms_ssim; lower is better: the others")
            print(f"{'pair' if args.pairs else 'output':<{width}}" + "".join(f"{METRIC_HEADERS[k]:>11}"
                                                                          for k in metrics.PAIR_METRICS))
        printed.append(row)
        cells = "".join(f"{row[k]:>11.4f}" for k in metrics.PAIR_METRICS)
        print(f"{label_of[row['output']]:<{width}}{cells}", flush=True)

    report = evaluation.evaluate_triples(triples, args.backbone, args.weights, args.size,
                                         on_row=None if args.json else print_row)
    for note in report.notes:
        print(f"brushwork: note: {note}", file=sys.stderr)
    if args.json:
        print(io.to_json(report.as_dict()))
        return 0
    for row in report.rows:
        if "seam" in row:
            print(f"seam score {row['seam']:.4f} (tile borders against their surroundings; 1 = invisible): "
                  f"{label_of[row['output']]}")
            for edge in row.get("seam_edges", []):
                print(f"  {edge['line']} {edge['at']} runs along an edge of the content, which scores "
                      f"{edge['content']:.4f} there (the output {edge['output']:.4f})")
            if row.get("seam_edges"):
                rest = row["seam_off_edges"]
                print(f"  seam score at the other lines: {rest:.4f}" if rest is not None else
                      "  every line runs along an edge of the content: judge these seams by eye")
    made = ", ".join(report.made_with) or "unknown (no sidecars)"
    print(f"graded with {report.backbone}; outputs made with {made}")
    scores = report.set_scores
    if "frechet" in scores:
        print(f"set of {scores['outputs']} outputs against {scores['styles']} style(s): "
              f"frechet {scores['frechet']:.4f}, art_fid {scores['art_fid']:.4f}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    training = get_method(args.train_method).training
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f, _ in _cli_fields(TrainConfig)})
    cfg.validate()
    check_run(cfg)
    opts = training.options(**{f.name: getattr(args, f.name) for f in dataclasses.fields(training.options)})
    check_values(opts)
    summary = train(training.task(opts, cfg), cfg)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in summary["losses"].items())
    state = "finished" if summary["step"] >= cfg.steps else "stopped; continue with --resume"
    print(f"{cfg.out}: step {summary['step']}/{cfg.steps} ({state}), {summary['segment_steps']} steps this run, "
          f"{losses}")
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    rows = backbones.describe_backbones()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = "present" if row["weights_present"] else "absent"
        print(f"{row['name']}  [weights {state}]  {row['description']}")
        print(f"  weights: {row['weights']}")
        style = ", ".join(f"{n} ×{w:g}" for n, w in row["style_weights"].items())
        print(f"  content layers: {', '.join(row['content_layers'])}; style layers (optimize's weights): {style}")
        print(f"  layers: {' '.join(row['layers'])}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    specs = [get_method(name) for name in method_names()]
    if args.json:
        print(json.dumps([{"name": spec.name, "description": spec.description, "presets": spec.presets,
                           "styles": spec.capabilities.styles, "masks": spec.capabilities.masks,
                           "models": spec.models is not None, "trainable": spec.training is not None}
                          for spec in specs], indent=2, default=str))
        return 0
    for spec in specs:
        print(f"{spec.name}: {spec.description}; presets: {', '.join(spec.presets)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out = export.export_model(args.model, args.format, args.output)
    print(f"wrote {out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    specs = [spec for spec in method_specs() if spec.models is not None]
    shipped = {spec.name: spec.models.shipped() for spec in specs}
    rows = [{"method": method, "name": name, "file": str(path) if path.is_file() else None,
             "metadata": weights.check_safetensors(path).get("__metadata__", {}) if path.is_file() else {}}
            for method, models in shipped.items() for name, path in models.items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for spec in specs:
        for row in (r for r in rows if r["method"] == spec.name):
            if row["file"] is None:
                print(f"{spec.name}: {row['name']}  [not shipped in this version: it needs GPU training]")
                continue
            recipe = ", ".join(f"{k} {v}" for k, v in row["metadata"].items() if k not in ("format", "method"))
            print(f"{spec.name}: {row['name']}  [{Path(row['file']).name}] {recipe}")
        if not shipped[spec.name]:
            how = f"; train one with `brushwork train {spec.name}`" if spec.training else ""
            print(f"{spec.name}: no models ship in this version (training needs a GPU){how}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from .cluster import batch

    options = {k: v for k, v in _stylize_options(args).items() if k != "quiet"}
    summary = batch(args.source, args.output, args.method, args.styles, args.preset, args.engine, args.address,
                    args.workers, args.gpus_per_worker, args.batch_size, bool(args.quiet), **options)
    print(summary.line(), file=sys.stderr if summary.failed else sys.stdout)
    return 2 if summary.failed else 0


def cmd_ui(args: argparse.Namespace) -> int:
    from . import ui

    ui.serve(args.host, args.port, args.styles, args.max_upload_mb)
    return 0


TRAILING = {"stylize": "styles", "video": "styles", "eval": "outputs"}  # list positionals that may follow options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """argparse's, but a command's trailing images may also come after options (`stylize photo.jpg -o out.png
    painting.jpg`), where argparse alone has already closed the list at the first option."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    dest = TRAILING.get(args.command)
    options = [i for i, e in enumerate(extra) if e.startswith("-")]
    if extra and (dest is None or options):
        parser.error(f"unrecognized arguments: {' '.join(extra[options[0] if dest else 0:])}")
    if extra:
        setattr(args, dest, [*getattr(args, dest), *extra])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler = {"stylize": cmd_stylize, "video": cmd_video, "eval": cmd_eval, "train": cmd_train,
               "backbones": cmd_backbones, "methods": cmd_methods, "models": cmd_models,
               "export": cmd_export, "ui": cmd_ui, "batch": cmd_batch}[args.command]
    try:
        with out_of_memory("use a smaller --size (or --batch-size in training)"):  # what the guard's estimates missed
            return handler(args)
    except BrushworkError as e:
        print(f"brushwork: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # what the early checks cannot foresee: a folder that turns read-only, a name too long
        where = f"{e.filename}: " if e.filename else ""
        print(f"brushwork: error: {where}{e.strerror or str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"brushwork: {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("brushwork: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
