"""The `brushwork` command. Every BrushworkError becomes one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from tqdm import tqdm

from . import api, evaluation, io, metrics
from .backbones import describe_backbones
from .errors import BrushworkError, ConfigError, ImageError, OutputError
from .methods import Step, get_method, method_names
from .train.loop import TrainConfig
from .version import __version__


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


def _loop_options(parser: argparse.ArgumentParser, **defaults) -> None:
    """The shared training loop's options, with a method's own defaults."""
    base = TrainConfig(**defaults)
    for name, kind, text in [("out", str, "run directory"), ("steps", int, "total training steps"),
                             ("batch-size", int, "images per step"), ("size", int, "random crop size"),
                             ("short-side", int, "images are resized to this short side before cropping"),
                             ("lr", float, "Adam learning rate"), ("lr-decay", float, "lr / (1 + decay · step)"),
                             ("clip", float, "max gradient norm (0 = off)"),
                             ("precision", str, "32 | bf16-mixed | 16-mixed (mixed precision needs a GPU)"),
                             ("device", str, "auto | cpu | cuda"), ("devices", int, "GPUs to use (DDP)"),
                             ("workers", int, "data loader processes"),
                             ("data", str, "disk (DataLoader workers) | device (decoded once, kept and cropped on "
                                           "the device) | auto (device on GPUs)"),
                             ("channels-last", str, "auto (on for GPUs) | on | off"),
                             ("seed", int, "seed for data and weights"),
                             ("checkpoint-every", int, "steps between checkpoints (also saved on exit)"),
                             ("preview-every", int, "steps between preview grids"),
                             ("log-every", int, "steps between metrics.csv rows"),
                             ("time-limit", float, "stop and checkpoint after this many seconds (0 = none)")]:
        default = getattr(base, name.replace("-", "_"))
        parser.add_argument(f"--{name}", type=kind, default=default, help=f"{text} (default {default})")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="brushwork", description="Neural style transfer: paint a photo in a painting's style.")
    parser.add_argument("--version", action="version", version=f"brushwork {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    s = sub.add_parser("stylize", help="stylize a content image with one or more style images")
    s.add_argument("content", help="content image, or a folder of them (then -o is an output folder)")
    s.add_argument("styles", nargs="*", metavar="style", help="style image(s); several are blended (none for "
                                                             "--method fast, whose model carries the style)")
    s.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .tif); a .json sidecar is "
                                                         "written beside it")
    s.add_argument("--method", default="optimize", choices=method_names())
    s.add_argument("--preset", default="default", help="default | fast | quality")
    s.add_argument("--size", type=int, help="long side of the output in pixels (default 512)")
    s.add_argument("--backbone", help="feature network, e.g. vgg16-hed; join several with +")
    s.add_argument("--weights", help="weights file for the backbone (vgg19, vgg19-normalised)")
    s.add_argument("--content-weight", type=float)
    s.add_argument("--style-weight", type=float)
    s.add_argument("--tv-weight", type=float)
    s.add_argument("--content-layers", type=_names, help="comma-separated layer names")
    s.add_argument("--style-layers", type=_names, help="comma-separated layer names")
    s.add_argument("--style-loss", help="gram (default) | mean_std | wasserstein")
    s.add_argument("--iterations", type=int, help="iterations at the coarsest scale; each finer scale runs fewer")
    s.add_argument("--scales", type=int, help="number of coarse-to-fine scales (1 = single scale)")
    s.add_argument("--scale-factor", type=float, help="size ratio between scales (default 2)")
    s.add_argument("--optimizer", help="lbfgs (default) | adam")
    s.add_argument("--lr", type=float, help="step size (lbfgs default 1, adam default 0.02)")
    s.add_argument("--pyramid-levels", type=int, help="optimize a Laplacian pyramid of N levels; 1 = raw pixels "
                   "(default: the backbone's choice)")
    s.add_argument("--init", help="content (default) | recolored (the content in the style's colours) | noise | "
                                  "style | PATH")
    s.add_argument("--pooling", help="max (default) | avg, for VGG backbones")
    s.add_argument("--style-scale", type=float, help="style image size relative to the output (default 1)")
    s.add_argument("--style-blend", type=_floats, help="blend weights, one per style, e.g. 0.7,0.3")
    s.add_argument("--mask", nargs="+", dest="masks", help="one mask image per style: white = that style's region")
    s.add_argument("--preserve-color", help="luminance | histogram")
    s.add_argument("--model", help="adain: a decoder (shipped name or file); fast: a style model (shipped name or "
                                   "file)")
    s.add_argument("--runtime", help="fast, adain: torch (default) | onnx, to run a model exported with "
                                     "`brushwork export` through onnxruntime")
    s.add_argument("--alpha", type=float, help="adain: style strength from 0 (content) to 1 (full style, default)")
    s.add_argument("--seed", type=int)
    s.add_argument("--device", help="auto (default) | cpu | cuda")
    s.add_argument("--save-every", type=int, default=0, metavar="N", help="also save the image every N iterations")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

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

    t = sub.add_parser("train", help="train a feed-forward model")
    methods = t.add_subparsers(dest="train_method", required=True, parser_class=Parser)
    a = methods.add_parser("adain", help="train an AdaIN decoder on folders of photos and paintings")
    a.add_argument("--content-dir", required=True, help="photos, read recursively")
    a.add_argument("--style-dir", required=True, help="paintings, read recursively")
    a.add_argument("--backbone", default="vgg16-hed", help="the frozen encoder (default vgg16-hed)")
    a.add_argument("--weights", help="weights file for the encoder")
    a.add_argument("--style-weight", type=float, default=10.0, help="style loss weight (paper: 10)")
    _loop_options(a)
    f = methods.add_parser("fast", help="train per-style networks (Johnson et al.), one per style image")
    f.add_argument("--style", required=True, nargs="+", help="the style image; several train together, one network "
                                                             "each, in RUN/NAME.safetensors")
    f.add_argument("--arch", default="classic", help="classic (Johnson et al.) | mobile (CPU real time)")
    f.add_argument("--content-dir", required=True, help="photos, read recursively")
    f.add_argument("--backbone", default="vgg16-hed", help="the frozen loss network (default vgg16-hed)")
    f.add_argument("--weights", help="weights file for the loss network")
    f.add_argument("--style-size", type=int, help="long side of the style image (default: --size)")
    f.add_argument("--content-weight", type=float, default=1.0)
    f.add_argument("--style-weight", type=float, default=3.0, help="relative to content, as in optimize (3)")
    f.add_argument("--tv-weight", type=float, default=1.0)
    _loop_options(f, batch_size=4)

    b = sub.add_parser("backbones", help="list backbones, their layers and whether their weights are present")
    b.add_argument("--json", action="store_true")
    sub.add_parser("methods", help="list methods and their presets")
    sub.add_parser("models", help="list the trained models that ship with brushwork, per method")
    x = sub.add_parser("export", help="export a fast or adain model to ONNX or TorchScript")
    x.add_argument("model", help="a shipped model name or a model file (.safetensors)")
    x.add_argument("--format", required=True, help="onnx | torchscript")
    x.add_argument("-o", "--output", required=True, help="the exported file")
    return parser


STYLIZE_OPTIONS = ("size", "backbone", "weights", "content_weight", "style_weight", "tv_weight", "content_layers",
                   "style_layers", "style_loss", "iterations", "scales", "scale_factor", "optimizer", "lr",
                   "pyramid_levels", "init", "pooling", "style_scale", "style_blend", "preserve_color", "seed",
                   "device", "model", "alpha", "runtime")


def _intermediate_saver(output: Path, every: int):
    def save(step: Step) -> None:
        if step.step % every == 0 and step.step != step.total:
            io.save_image(step.image, output.with_name(f"{output.stem}_{step.step:05d}{output.suffix}"))
    return save


def _stylize_folder(args: argparse.Namespace, options: dict) -> int:
    """Every image of a folder into an output folder (NAME.png plus its sidecar); a bad image is reported and
    skipped, and the exit code says whether any was."""
    source, out_dir = Path(args.content), Path(args.output)
    if args.masks or args.save_every:
        raise ConfigError("--mask and --save-every apply to one image, not to a folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file: give an output folder when the content is a folder")
    if not out_dir.parent.is_dir():
        raise OutputError(f"output directory does not exist: {out_dir.parent}")
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in io.IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(f"no images in {source}")
    out_dir.mkdir(exist_ok=True)
    failed = 0
    for path in tqdm(files, disable=args.quiet, unit="image", dynamic_ncols=True):
        try:
            api.stylize_file(path, args.styles, out_dir / f"{path.stem}.png", method=args.method,
                             preset=args.preset, quiet=True, **options)
        except ImageError as e:
            failed += 1
            print(f"brushwork: skipped {path}: {e}", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {len(files) - failed} image(s) to {out_dir}" + (f", skipped {failed}" if failed else ""))
    return 2 if failed else 0


def cmd_stylize(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if args.save_every < 0:
        raise ConfigError("--save-every must be >= 0")
    options = {name: getattr(args, name) for name in STYLIZE_OPTIONS if getattr(args, name) is not None}
    if Path(args.content).is_dir():
        return _stylize_folder(args, options)
    callback = _intermediate_saver(output, args.save_every) if args.save_every else None
    result = api.stylize_file(args.content, args.styles, output, method=args.method, preset=args.preset,
                              masks=args.masks, callback=callback, quiet=args.quiet or None, **options)
    if not args.quiet:
        seconds = result.stats["seconds"]["total"]
        print(f"wrote {output} ({result.image.shape[-1]}×{result.image.shape[-2]}, {seconds:.1f} s) and "
              f"{io.sidecar_path(output)}")
    return 0


METRIC_HEADERS = {"ssim": "ssim", "ms_ssim": "ms_ssim", "content": "content", "lpips_unweighted": "lpips_unw",
                  "gram": "gram", "mean_std": "mean_std", "wasserstein": "w2", "color": "color_lab"}


def cmd_eval(args: argparse.Namespace) -> int:
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

    def print_row(row: dict) -> None:
        cells = "".join(f"{row[k]:>11.4f}" for k in metrics.PAIR_METRICS)
        print(f"{label_of[row['output']]:<{width}}{cells}", flush=True)

    if not args.json:
        print("higher is better: ssim, ms_ssim; lower is better: the others")
        print(f"{'pair' if args.pairs else 'output':<{width}}" + "".join(f"{METRIC_HEADERS[k]:>11}"
                                                                      for k in metrics.PAIR_METRICS))
    report = evaluation.evaluate_triples(triples, args.backbone, args.weights, args.size,
                                         on_row=None if args.json else print_row)
    for note in report.notes:
        print(f"brushwork: note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    made = ", ".join(report.made_with) or "unknown (no sidecars)"
    print(f"graded with {report.backbone}; outputs made with {made}")
    scores = report.set_scores
    if "frechet" in scores:
        print(f"set of {scores['outputs']} outputs against {scores['styles']} style(s): "
              f"frechet {scores['frechet']:.4f}, art_fid {scores['art_fid']:.4f}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import FastStyle, adain_task, fast_task, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    cfg.validate()
    if args.train_method == "adain":
        task = adain_task(args.content_dir, args.style_dir, cfg, args.backbone, args.style_weight, args.weights)
    else:
        styles = [FastStyle(Path(p).stem, p, args.content_weight, args.style_weight, args.tv_weight, args.style_size)
                  for p in args.style]
        task = fast_task(styles, args.content_dir, cfg, args.backbone, args.arch, args.weights)
    summary = train(task, cfg)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in summary["losses"].items())
    state = "finished" if summary["step"] >= cfg.steps else "stopped; continue with --resume"
    print(f"{cfg.out}: step {summary['step']}/{cfg.steps} ({state}), {summary['segment_steps']} steps this run, "
          f"{losses}")
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    rows = describe_backbones()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = "present" if row["weights_present"] else "absent"
        print(f"{row['name']}  [weights {state}]  {row['description']}")
        print(f"  weights: {row['weights']}")
        print(f"  content layers: {', '.join(row['content_layers'])}; style layers: {', '.join(row['style_layers'])}")
        print(f"  layers: {' '.join(row['layers'])}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    for name in method_names():
        spec = get_method(name)
        print(f"{name}: {spec.description}; presets: {', '.join(spec.presets)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model

    out = export_model(args.model, args.format, args.output)
    print(f"wrote {out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .methods import adain, fast
    from .weights import read_safetensors

    rows = [("adain", name, path) for name, path in adain.PRETRAINED.items()]
    rows += [("fast", name, path) for name, path in fast.shipped_models().items()]
    for method, name, path in rows:
        if not path.is_file():
            print(f"{method}: {name}  [not shipped in this version: it needs GPU training]")
            continue
        meta = read_safetensors(path)[1]
        recipe = ", ".join(f"{k} {v}" for k, v in meta.items() if k not in ("format", "method"))
        print(f"{method}: {name}  [{path.name}] {recipe}")
    if not fast.shipped_models():
        print("fast: no styles ship in this version (training needs a GPU); train one with `brushwork train fast`")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"stylize": cmd_stylize, "eval": cmd_eval, "train": cmd_train, "backbones": cmd_backbones,
               "methods": cmd_methods, "models": cmd_models, "export": cmd_export}[args.command]
    try:
        return handler(args)
    except BrushworkError as e:
        print(f"brushwork: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("brushwork: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
