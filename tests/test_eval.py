import json

import pytest

from brushwork.cli import main
from brushwork.evaluation import evaluate_triples, made_with, pair_triples
from brushwork.io import resize, save_image, save_json, sidecar_path

from .test_metrics import blurred, noisy, painting, textured


@pytest.fixture
def eval_files(tmp_path):
    """A content, a style, a noisy output made (per its sidecar) with vgg16-hed, and a blurred one at 2× size."""
    paths = {k: tmp_path / f"{k}.png" for k in ("content", "style", "noisy", "big")}
    save_image(textured(64, 80), paths["content"])
    save_image(painting(), paths["style"])
    save_image(noisy(textured(64, 80), 0.1), paths["noisy"])
    save_json({"config": {"backbone": "vgg16-hed"}}, sidecar_path(paths["noisy"]))
    save_image(resize(blurred(textured(64, 80), 1.0), (128, 160)), paths["big"])
    return paths


def test_eval_json_grades_with_another_backbone_and_matches_sizes(eval_files, capsys):
    rc = main(["eval", "--content", str(eval_files["content"]), "--style", str(eval_files["style"]),
               str(eval_files["noisy"]), str(eval_files["big"]), "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backbone"] == "efficientnet-lite0" and report["made_with"] == ["vgg16-hed"]
    noisy_row, big_row = report["rows"]
    assert 0 < noisy_row["ssim"] < 0.9 and noisy_row["content"] > 0.01
    assert 0 < big_row["ssim"] < 1 and big_row["lpips_unweighted"] > 0.01
    assert any("big.png: output is 160×128, content 80×64: graded at 80×64" in n for n in report["notes"])
    assert report["set"]["outputs"] == 2 and report["set"]["frechet"] > 0
    assert report["set"]["art_fid"] == pytest.approx((1 + report["set"]["mean_lpips_unweighted"])
                                                     * (1 + report["set"]["frechet"]), rel=1e-4)


def test_every_methods_sidecar_names_the_backbone_that_made_it(tmp_path):
    """adain and fast record their backbone at the sidecar's top level (their config has none), so eval grades
    them with another one; sidecars from before that kept it in optimize's config only."""
    out = tmp_path / "o.png"
    save_image(textured(64, 80), out)
    save_json({"method": "adain", "backbone": "vgg16-hed", "config": {"model": "m", "alpha": 1.0}}, sidecar_path(out))
    assert made_with(out) == "vgg16-hed"
    report = evaluate_triples([(out, out, out)])
    assert report.backbone == "efficientnet-lite0" and report.made_with == ["vgg16-hed"]
    save_json({"config": {"backbone": "efficientnet-lite0"}}, sidecar_path(out))
    assert made_with(out) == "efficientnet-lite0"
    save_json({"method": "fast", "backbone": None, "config": {}}, sidecar_path(out))
    assert made_with(out) is None


def test_eval_table_and_an_identical_output(eval_files, capsys):
    rc = main(["eval", "--content", str(eval_files["content"]), "--style", str(eval_files["style"]),
               str(eval_files["content"]), "--backbone", "vgg16-hed"])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    header, row = out[1].split(), out[2].split()
    assert header == ["output", "ssim", "ms_ssim", "content", "lpips_unw", "gram", "mean_std", "w2", "color_lab"]
    assert row[1:5] == ["1.0000", "1.0000", "0.0000", "0.0000"] and float(row[5]) > 0.1
    assert out[3] == "graded with vgg16-hed; outputs made with unknown (no sidecars)"


@pytest.fixture
def pairs_dir(tmp_path):
    root = tmp_path / "pairs"
    (root / "content").mkdir(parents=True)
    (root / "style").mkdir()
    outputs = tmp_path / "outs"
    outputs.mkdir()
    save_image(textured(64, 80), root / "content" / "town.png")
    save_image(blurred(textured(64, 64), 2.0), root / "content" / "my__photo.jpg")
    save_image(painting(), root / "style" / "stripes.png")
    save_image(painting(80, 64).flip(-1), root / "style" / "mirror.png")
    for c, s in [("town", "stripes"), ("town", "mirror"), ("my__photo", "stripes")]:
        save_image(noisy(textured(64, 80) if c == "town" else textured(64, 64), 0.05), outputs / f"{c}__{s}.png")
    return root, outputs


def test_eval_pairs_prints_rows_and_set_scores(pairs_dir, capsys):
    root, outputs = pairs_dir
    rc = main(["eval", "--pairs", str(root), str(outputs)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "my__photo × stripes" in out and "town × mirror" in out
    assert "set of 3 outputs against 2 style(s): frechet" in out
    triples = pair_triples(root, [outputs])
    assert sorted((c.name, s.name) for _, c, s in triples) == [
        ("my__photo.jpg", "stripes.png"), ("town.png", "mirror.png"), ("town.png", "stripes.png")]
    report = evaluate_triples(triples, backbone="vgg16-hed")
    assert len(report.rows) == 3 and report.set_scores["styles"] == 2


@pytest.mark.parametrize("args,message", [
    (["eval", "--content", "{content}", "--style", "{style}", "{missing}"], "not found"),
    (["eval", "--content", "{content}", "--style", "{style}", "{noisy}", "{missing}"], "not found"),  # checked first
    (["eval", "--content", "{content}", "--style", "{style}", "{noisy}", "--backbone", "resnet"], "unknown backbone"),
    (["eval", "{noisy}"], "eval needs --content C --style S OUTPUT"),
    (["eval", "--pairs", "{tmp}", "--content", "{content}"], "leave out --content"),
    (["eval", "--pairs", "{tmp}"], "is not a folder"),
    (["eval", "--content", "{content}", "--style", "{style}", "{noisy}", "--size", "0"],
     "--size must be 1 to 40000 px"),
    (["eval", "--content", "{content}", "--style", "{style}", "{noisy}", "--size", "40", "--backbone",
      "efficientnet-lite0"], "noisy.png: efficientnet-lite0 needs images of at least 64 px"),
])
def test_eval_bad_input_is_one_line_and_exit_2(eval_files, tmp_path, capsys, args, message):
    fill = {**{k: str(v) for k, v in eval_files.items()}, "missing": str(tmp_path / "nope.png"), "tmp": str(tmp_path)}
    assert main([a.format(**fill) for a in args]) == 2
    out, err = capsys.readouterr()
    err = err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("brushwork: error:") and message in err[0], err
    assert out == ""  # not even the table's header


def test_eval_pairs_rejects_misnamed_outputs(pairs_dir, capsys):
    root, outputs = pairs_dir
    save_image(textured(), outputs / "town_stripes.png")
    assert main(["eval", "--pairs", str(root), str(outputs)]) == 2
    assert "not named CONTENT__STYLE" in capsys.readouterr().err


def test_python_api_accepts_tensors_and_paths(eval_files):
    import brushwork

    report = brushwork.evaluate(noisy(textured(64, 80), 0.1), eval_files["content"], painting(), backbone="vgg16-hed")
    assert isinstance(report, brushwork.EvalReport) and report.rows[0]["output"] == "Tensor"
    assert report.rows[0]["ssim"] < 0.9 and "frechet" not in report.set_scores
    # content and style both tensors, both needed at 80 px: each must stay itself
    content = textured(64, 80)
    same = brushwork.evaluate(content, content, painting(64, 80), backbone="vgg16-hed", size=80).rows[0]
    assert same["content"] == 0 and same["gram"] > 0.1
