import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from brushwork.cli import build_parser, main, parse_args
from brushwork.methods import method_specs
from brushwork.options import help_text
from brushwork.train import TrainConfig

TINY = ["--size", "64", "--iterations", "4", "--scales", "1", "--quiet"]


def test_stylize_end_to_end_writes_image_and_sidecar(files, tmp_path):
    out = tmp_path / "out.png"
    rc = subprocess.run([sys.executable, "-m", "brushwork.cli", "stylize", str(files["content"]),
                         str(files["style_a"]), "-o", str(out), *TINY, "--seed", "7"], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    assert Image.open(out).size == (64, 48)
    meta = json.loads((tmp_path / "out.png.json").read_text())
    assert meta["seed"] == 7 and meta["config"]["size"] == 64 and meta["config"]["backbone"] == "vgg16-hed"
    assert meta["method"] == "optimize" and meta["versions"]["torch"]
    assert set(meta["losses"]) == {"total", "content", "style", "tv"}
    assert meta["seconds"]["total"] > 0 and meta["scales"][0]["iterations"] == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.png", "out.png.json"]


def test_masks_blends_colour_and_intermediates(files, tmp_path):
    out = tmp_path / "o.jpg"
    rc = main(["stylize", str(files["content"]), str(files["style_a"]), str(files["style_b"]), "-o", str(out),
               "--mask", str(files["mask_left"]), str(files["mask_right"]), "--style-blend", "0.7,0.3",
               "--preserve-color", "luminance", "--save-every", "2", *TINY])
    assert rc == 0 and Image.open(out).size == (64, 48)
    assert (tmp_path / "o_00002.jpg").exists()
    meta = json.loads((tmp_path / "o.jpg.json").read_text())
    assert meta["config"]["style_blend"] == [0.7, 0.3] and len(meta["masks"]) == 2


def test_backbones_and_methods_commands(capsys):
    assert main(["backbones"]) == 0
    text = capsys.readouterr().out
    assert "vgg16-hed  [weights present]" in text and "relu4_2" in text and "vgg19" in text
    assert "relu4_1 ×0.05, relu5_1 ×0" in text  # vgg16-hed's deep style layers, turned down for optimize
    assert main(["methods"]) == 0 and "optimize" in capsys.readouterr().out
    assert main(["methods", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["optimize"]["presets"]["fast"]["backbone"] == "efficientnet-lite0" and listed["optimize"]["masks"]
    assert not listed["fast"]["styles"] and listed["fast"]["models"] and listed["fast"]["trainable"]
    assert not listed["optimize"]["models"] and not listed["optimize"]["trainable"]


def _bad_cases(files, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    note = tmp_path / "note.txt"
    note.write_text("hello")
    c, a, b = str(files["content"]), str(files["style_a"]), str(files["style_b"])
    out = str(tmp_path / "o.png")
    return {
        "missing content": [c + ".missing", a, "-o", out],
        "corrupt style": [c, str(corrupt), "-o", out],
        "empty image": [str(empty), a, "-o", out],
        "unsupported format": [str(note), a, "-o", out],
        "mask count": [c, a, b, "-o", out, "--mask", str(files["mask_left"])],
        "mask aspect": [c, a, "-o", out, "--mask", a],
        "blend count": [c, a, b, "-o", out, "--style-blend", "1"],
        "blend negative": [c, a, b, "-o", out, "--style-blend", "1,-1"],
        "blend not numbers": [c, a, b, "-o", out, "--style-blend", "x,y"],
        "unknown backbone": [c, a, "-o", out, "--backbone", "resnet9000"],
        "unknown layer": [c, a, "-o", out, "--style-layers", "relu9_9"],
        "missing weights": [c, a, "-o", out, "--backbone", "vgg19-normalised"],
        "too small": [c, a, "-o", out, "--size", "8"],
        "too large": [c, a, "-o", out, "--size", "300000"],
        "missing output dir": [c, a, "-o", str(tmp_path / "nope" / "o.png")],
        "unsupported output": [c, a, "-o", str(tmp_path / "o.gif")],
        "overwrite input": [c, a, "-o", c],
        "unknown preset": [c, a, "-o", out, "--preset", "turbo"],
        "checkpoint dir is a file": [c, a, "-o", out, "--checkpoint-dir", str(note)],
    }


CASES = ["missing content", "corrupt style", "empty image", "unsupported format", "mask count", "mask aspect",
         "blend count", "blend negative", "blend not numbers", "unknown backbone", "unknown layer", "missing weights",
         "too small", "too large", "missing output dir", "unsupported output", "overwrite input", "unknown preset",
         "checkpoint dir is a file"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_line_and_exit_2(files, tmp_path, monkeypatch, capsys, case):
    monkeypatch.setenv("BRUSHWORK_HOME", str(tmp_path / "empty-cache"))
    before = {p: p.read_bytes() for p in Path(files["content"]).parent.iterdir() if p.is_file()}
    args = _bad_cases(files, tmp_path)[case]
    try:
        rc = main(["stylize", *TINY, *args])  # the case's own options come last and win
    except SystemExit as e:  # argparse's own checks exit through Parser.error
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("brushwork: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.png.json").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    for p, data in before.items():
        assert p.read_bytes() == data  # inputs untouched


def test_no_output_lands_on_an_input(files, tmp_path, capsys):
    """The image, its sidecar and the --save-every frames are all checked against every input, --init included,
    before any work: each case is refused in one line and leaves its files as they were."""
    c, a = str(files["content"]), str(files["style_a"])
    for name in ("init.png", "se_00001.png", "sc.png.json"):
        (tmp_path / name).write_bytes(Path(c if name != "sc.png.json" else a).read_bytes())
    (tmp_path / "d.png.json").mkdir()
    (tmp_path / "d.png").write_bytes(b"an earlier result")
    t = str(tmp_path)
    cases = {"the output is --init": ([c, a, "-o", f"{t}/init.png", "--init", f"{t}/init.png"], "overwrite an input"),
             "a frame is the content": ([f"{t}/se_00001.png", a, "-o", f"{t}/se.png", "--save-every", "1"],
                                        "--save-every would overwrite the input"),
             "the sidecar is the style": ([c, f"{t}/sc.png.json", "-o", f"{t}/sc.png"], "overwrite an input"),
             "the sidecar is a folder": ([c, a, "-o", f"{t}/d.png"], "d.png.json is a folder")}
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for case, (args, message) in cases.items():
        assert main(["stylize", *TINY, *args]) == 2, case
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (case, err)
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_console_script_reports_errors_without_traceback(tmp_path):
    rc = subprocess.run([sys.executable, "-m", "brushwork.cli", "stylize", str(tmp_path / "no.png"),
                         str(tmp_path / "no2.png"), "-o", str(tmp_path / "o.png")], capture_output=True, text=True)
    assert rc.returncode == 2
    assert rc.stderr.strip().count("\n") == 0 and "not found" in rc.stderr and "Traceback" not in rc.stderr


def test_flags_are_made_from_the_options_dataclasses(capsys):
    """Every option field with help text is a flag of `stylize` (and of `train METHOD` for training options); a
    field without help is API-only."""
    with pytest.raises(SystemExit):
        main(["stylize", "--help"])
    text = capsys.readouterr().out
    for spec in method_specs():
        for f in dataclasses.fields(spec.options):
            assert (f"--{f.name.replace('_', '-')} " in text) == bool(help_text(f)), f.name
    assert "--iteration-decay" not in text and "--style-weights" not in text
    args = build_parser().parse_args(["stylize", "c.png", "-o", "o.png", "--style-blend", "0.7,0.3", "--size", "9",
                                      "--content-layers", "relu1_1, relu2_1", "--quiet"])
    assert (args.style_blend, args.size, args.content_layers, args.quiet) == ([0.7, 0.3], 9, ["relu1_1", "relu2_1"],
                                                                                True)
    assert args.alpha is None and args.iterations is None  # unset, so the preset's value holds
    for spec in method_specs():
        if spec.training is not None:
            with pytest.raises(SystemExit):
                main(["train", spec.name, "--help"])
            text = capsys.readouterr().out
            for cls in (spec.training.options, TrainConfig):
                for f in dataclasses.fields(cls):
                    assert (f"--{f.name.replace('_', '-')} " in text) == bool(help_text(f)), f.name
            assert "--settle" not in text  # the release tool's, for weights continued without their moments


def test_images_may_follow_the_options(capsys):
    """`stylize photo.jpg -o out.png painting.jpg`: argparse alone closes the style list at the first option and
    calls the painting unrecognized; an unknown option is still refused, by its own name."""
    args = parse_args(["stylize", "c.png", "-o", "o.png", "a.png", "--size", "9", "b.png"])
    assert (args.content, args.styles, args.output, args.size) == ("c.png", ["a.png", "b.png"], "o.png", 9)
    args = parse_args(["eval", "--content", "c.png", "x.png", "--style", "s.png", "y.png"])
    assert args.outputs == ["x.png", "y.png"] and args.style == "s.png"
    assert parse_args(["video", "in.mp4", "-o", "o.mp4", "a.png"]).styles == ["a.png"]
    args = parse_args(["stylize", "c.png", "a.png", "b.png", "-o", "o.png", "--mask", "m.png", "--mask", "n.png"])
    assert args.masks == ["m.png", "n.png"]  # --mask once per style, as well as --mask M N
    for argv, unknown in ((["stylize", "c.png", "-o", "o.png", "a.png", "--colour", "3"], "--colour 3"),
                          (["export", "m", "--format", "onnx", "-o", "x.onnx", "n"], "n")):
        with pytest.raises(SystemExit) as stopped:
            parse_args(argv)
        assert stopped.value.code == 2
        assert capsys.readouterr().err == f"brushwork: error: unrecognized arguments: {unknown}\n"


def test_numbers_past_any_meaning_are_refused_in_one_line(files, tmp_path, capsys):
    """A 400-digit size, 2,000 scales of factor 2, a learning rate past float32: each overflowed somewhere with a
    traceback; now a ConfigError naming the option, before any work."""
    c, a, out = str(files["content"]), str(files["style_a"]), str(tmp_path / "o.png")
    cases = {"--size": "1" + "0" * 400, "--scales": "2000", "--lr": "1e300", "--scale-factor": "1e200",
             "--style-weight": "2e15"}
    for flag, value in cases.items():
        assert main(["stylize", c, a, "-o", out, *TINY, flag, value]) == 2, flag
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and flag in err, err
    assert not (tmp_path / "o.png").exists()
    assert main(["stylize", c, a, "-o", out, "--size", "64", "--iterations", "1", "--scales", "40", "--quiet"]) == 0


def test_names_the_file_system_refuses_are_one_line(files, tmp_path, capsys):
    """A file name too long for the file system (for an input, for an output, or for the output's temporary file
    only), and an output that is no regular file: exit 2 with one line, before any work."""
    c, a = str(files["content"]), str(files["style_a"])
    (tmp_path / "null.png").symlink_to("/dev/null")
    cases = {"input name too long": ([str(tmp_path / ("c" * 260 + ".png")), a, "-o", str(tmp_path / "o.png")],
                                     "File name too long"),
             "output name too long": ([c, a, "-o", str(tmp_path / ("o" * 260 + ".png"))], "too long a file name"),
             "temporary name too long": ([c, a, "-o", str(tmp_path / ("o" * 240 + ".png"))], "too long a file name"),
             "not a regular file": ([c, a, "-o", str(tmp_path / "null.png")], "is not a regular file")}
    before = sorted(p.name for p in tmp_path.iterdir())
    for case, (args, message) in cases.items():
        assert main(["stylize", *TINY, *args]) == 2, case
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (case, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_options_that_would_be_ignored_are_refused(files, tmp_path, capsys):
    """An option a command would silently ignore in this combination is a mistake worth one line."""
    c, a, out = str(files["content"]), str(files["style_a"]), str(tmp_path / "o.png")
    cases = {"--address without ray": (["batch", c, "--style", a, "-o", str(tmp_path / "b"), "--address",
                                        "10.0.0.1:6379"], "it needs --engine ray"),
             "an empty --checkpoint-dir": (["stylize", c, a, "-o", out, *TINY, "--checkpoint-dir", ""],
                                           "--checkpoint-dir names no folder"),
             "eval --video at a --size": (["eval", "--video", "--content", c, c, "--size", "64"],
                                          "it takes no --backbone, --weights or --size"),
             "--pooling avg on efficientnet": (["stylize", c, a, "-o", out, *TINY, "--backbone", "efficientnet-lite0",
                                                "--pooling", "avg"], "--pooling avg is for the VGG backbones"),
             "a critic setting without a critic": (
                 ["train", "fast", "--style", a, "--content-dir", str(Path(c).parent), "--out", str(tmp_path / "run"),
                  "--gan-loss", "hinge", "--quiet"], "--gan-loss sets up the critic, which trains only with")}
    for case, (args, message) in cases.items():
        assert main(args) == 2, case
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (case, err)
    assert not any((tmp_path / name).exists() for name in ("o.png", "b", "run"))
