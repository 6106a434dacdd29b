import copy
import csv
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from brushwork import api
from brushwork.cli import main
from brushwork.errors import ConfigError, MaskError, SizeError, WeightsError
from brushwork.io import save_image
from brushwork.methods import fast_model
from brushwork.methods.fast import FastStyle, fast_task
from brushwork.backbones import create_backbone
from brushwork.methods.fast_model import FastTraining, build_net, loss_layers
from brushwork.train import TrainConfig, train
from brushwork.train.loop import checkpoint_from_weights, export_moments, moments_path, read_exports
from brushwork.weights import read_safetensors

from .conftest import dots, scene, stripes


@pytest.mark.parametrize("arch", ["classic", "mobile"])
def test_transform_nets_keep_any_size(arch):
    net = build_net(arch).eval()
    for h, w in [(33, 47), (64, 50), (17, 9)]:
        assert net(torch.rand(1, 3, h, w)).shape == (1, 3, h, w)


def test_the_mobile_net_is_a_fraction_of_the_classic_one():
    count = {arch: sum(p.numel() for p in build_net(arch).parameters()) for arch in ("classic", "mobile")}
    assert count["classic"] > 1_600_000 and count["mobile"] < 80_000
    with pytest.raises(ConfigError, match="unknown fast architecture"):
        build_net("tiny")


def test_the_loss_layers_are_the_optimize_defaults_or_the_papers():
    hed = create_backbone("vgg16-hed")
    assert loss_layers("vgg16-hed", hed) == ("relu2_2", ("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
                                             (1.0, 0.6, 0.3, 0.05))
    assert loss_layers("vgg16-hed", hed, "johnson")[:2] == ("relu2_2", ("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
    with pytest.raises(ConfigError, match="unknown fast loss layers 'deep'"):
        loss_layers("vgg16-hed", hed, "deep")
    photo, style = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    for layers, shares in (("backbone", [1.0, 0.6, 0.3, 0.05]), ("johnson", [1.0] * 4)):
        loss = FastTraining({"s": build_net("mobile")}, {"s": style}, {"s": (1.0, 10.0, 1.0)}, "vgg16-hed",
                            layers=layers)
        assert loss.layer_shares == pytest.approx([w / sum(shares) for w in shares])
        assert set(loss(photo)) >= {"total", "content", "style", "tv"}


def test_the_styles_meet_a_backbone_an_earlier_training_moved(monkeypatch):
    """Training moves the process's cached backbone (to the GPU there); a second task in the same process, as in
    bench/bench_train.py, must read its styles wherever the backbone now is (here the meta device stands in)."""
    moved = copy.deepcopy(create_backbone("vgg16-hed")).to("meta")
    monkeypatch.setattr(fast_model, "create_backbone", lambda *_: moved)
    loss = FastTraining({"s": build_net("mobile")}, {"s": torch.rand(1, 3, 48, 48)}, {"s": (1.0, 10.0, 1.0)},
                        "vgg16-hed")
    assert loss.gram_0_0.is_meta


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A fast model after a short CPU run on tiny images: (run dir, the style image)."""
    tmp_path = tmp_path_factory.mktemp("fast")
    content = tmp_path / "photos"
    content.mkdir()
    for i in range(3):
        save_image(scene(72, 96) * (0.7 + 0.15 * i), content / f"p{i}.png")
    style = tmp_path / "stripes.png"
    save_image(stripes(64, 64, (1.0, 0.2, 0.1), period=4), style)
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=25, batch_size=2, size=32, short_side=40, lr=2e-3,
                      workers=0, log_every=1, checkpoint_every=100, preview_every=25, quiet=True)
    train(fast_task([FastStyle("stripes", str(style), style_weight=3.0)], str(content), cfg), cfg)
    return tmp_path / "run", style


def test_training_lowers_the_loss_and_the_model_stylizes(trained, files, tmp_path):
    run, style = trained
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    first, last = rows[:3], rows[-3:]
    for key in ("total", "style"):
        assert sum(float(r[key]) for r in last) < 0.7 * sum(float(r[key]) for r in first), key
    model = run / "fast.safetensors"
    out = tmp_path / "o.png"
    assert main(["stylize", str(files["content"]), "-o", str(out), "--method", "fast", "--model", str(model),
                 "--size", "61", "--preserve-color", "luminance", "--quiet"]) == 0
    meta = json.loads((tmp_path / "o.png.json").read_text())
    assert meta["method"] == "fast" and meta["model_metadata"]["steps"] == "25" and meta["styles"] == []
    image = api.run(files["content"], method="fast", model=str(model), size=64).image
    assert image.shape == (1, 3, 48, 64)


def test_fast_method_errors(trained, files, tmp_path):
    model = str(trained[0] / "fast.safetensors")
    with pytest.raises(ConfigError, match="needs --model"):
        api.run(files["content"], method="fast")
    with pytest.raises(WeightsError, match="unknown fast model"):
        api.run(files["content"], method="fast", model="no_such_style")
    with pytest.raises(ConfigError, match="carries its own style"):
        api.run(files["content"], files["style_a"], method="fast", model=model)
    with pytest.raises(MaskError):
        api.run(files["content"], method="fast", model=model, masks=[files["mask_left"]])
    with pytest.raises(ConfigError, match="histogram"):
        api.run(files["content"], method="fast", model=model, preserve_color="histogram")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 20)
    assert main(["stylize", str(files["content"]), "-o", str(tmp_path / "x.png"), "--method", "fast",
                 "--model", str(corrupt)]) == 2
    with pytest.raises(ConfigError, match="at least one style"):
        api.run(files["content"], method="optimize")


def test_models_command_lists_what_ships(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "adain: adain-vgg16-hed" in out and "fast:" in out


def test_a_folder_is_stylized_image_by_image(trained, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    save_image(scene(40, 56), photos / "one.jpg")
    save_image(scene(50, 50), photos / "two.png")
    (photos / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "styled"
    rc = main(["stylize", str(photos), "-o", str(out), "--method", "fast", "--model",
               str(trained[0] / "fast.safetensors"), "--size", "48"])
    assert rc == 2  # one image was bad: reported, skipped, and the exit code says so
    assert sorted(p.name for p in out.iterdir()) == ["one.png", "one.png.json", "two.png", "two.png.json"]
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.png" in captured.err
    assert "wrote 2 image(s) to" in captured.err and ", skipped 1" in captured.err


def test_a_folder_keeps_every_result_and_its_inputs(trained, tmp_path, capsys):
    """x.jpg and x.png both get a result; an image too thin for the network is skipped like a broken one; the
    content folder is never the output folder; a folder every image refuses is not left behind."""
    photos = tmp_path / "photos"
    photos.mkdir()
    save_image(scene(40, 56), photos / "x.jpg")
    save_image(scene(50, 50), photos / "x.png")
    save_image(scene(2, 300), photos / "thin.png")
    model = str(trained[0] / "fast.safetensors")
    out = tmp_path / "styled"
    assert main(["stylize", str(photos), "-o", str(out), "--method", "fast", "--model", model, "--size", "48"]) == 2
    assert sorted(p.name for p in out.glob("*.png")) == ["x.jpg.png", "x.png.png"]
    assert "skipped" in capsys.readouterr().err
    before = sorted(p.name for p in photos.iterdir())
    assert main(["stylize", str(photos), "-o", str(photos), "--method", "fast", "--model", model, "--quiet"]) == 2
    assert capsys.readouterr().err.strip().endswith("is the content folder: give another output folder")
    assert sorted(p.name for p in photos.iterdir()) == before
    assert main(["stylize", str(photos), "-o", str(tmp_path / "new"), "--method", "fast", "--model", model,
                 "--tile", "-1", "--quiet"]) == 2
    assert not (tmp_path / "new").exists()


def test_an_output_thinner_than_the_network_is_refused(trained):
    model = str(trained[0] / "fast.safetensors")
    for photo, size in ((scene(48, 64), 7), (scene(2, 300), 64)):
        with pytest.raises(SizeError, match="below the network's minimum of 8 px"):
            api.stylize(photo, method="fast", model=model, size=size)
    out = api.run(scene(9, 600), method="fast", model=model, size=600, thumbnail=64)  # its thumbnail: 1 px high
    assert out.image.shape[-2:] == (9, 600) and "thumbnail" not in out.details


def test_train_cli_refuses_unknown_loss_layers_in_one_line(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    save_image(scene(64, 72), photos / "p0.png")
    save_image(stripes(48, 48, (1.0, 0.2, 0.1)), tmp_path / "stripes.png")
    assert main(["train", "fast", "--style", str(tmp_path / "stripes.png"), "--content-dir", str(photos),
                 "--layers", "deep", "--out", str(tmp_path / "run"), "--steps", "1", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == ("brushwork: error: unknown fast loss layers 'deep'; "
                                               "choose from backbone, johnson")
    assert not (tmp_path / "run").exists()


def test_train_cli_trains_several_mobile_styles_together(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        save_image(scene(64, 72) * (0.8 + 0.1 * i), photos / f"p{i}.png")
    save_image(stripes(48, 48, (1.0, 0.2, 0.1), period=4), tmp_path / "stripes.png")
    save_image(dots(48, 48, (0.1, 0.2, 1.0)), tmp_path / "dots.png")
    run = tmp_path / "run"
    assert main(["train", "fast", "--style", str(tmp_path / "stripes.png"), str(tmp_path / "dots.png"),
                 "--content-dir", str(photos), "--arch", "mobile", "--out", str(run), "--steps", "3",
                 "--batch-size", "2", "--size", "32", "--short-side", "64", "--workers", "0", "--log-every", "1",
                 "--quiet"]) == 0
    for name in ("stripes", "dots"):
        meta = read_safetensors(run / f"{name}.safetensors")[1]
        assert meta["arch"] == "mobile" and meta["steps"] == "3" and meta["style"].endswith(f"{name}.png")
        assert meta["layers"] == "backbone" and meta["style_weight"] == "30.0"
    with (run / "metrics.csv").open() as f:
        header = next(csv.reader(f))
    assert {"stripes.style", "dots.style", "style", "total"} <= set(header)
    out = tmp_path / "o.png"
    assert main(["stylize", str(photos / "p0.png"), "-o", str(out), "--method", "fast", "--model",
                 str(run / "dots.safetensors"), "--size", "40", "--quiet"]) == 0


def test_a_run_continued_from_weights_settles_its_fresh_optimizer_first(trained, tmp_path):
    """A fresh Adam's first step moves every weight by about the learning rate, whatever the gradient: settling
    (lr-0 steps that fill its moments) makes the first real update the size the gradients warrant."""
    run, style = trained
    moved = {}
    for settle in (0, 6):
        cfg = TrainConfig(out=str(tmp_path / f"settle{settle}"), steps=26, batch_size=2, size=32, short_side=40,
                          lr=2e-3, workers=0, log_every=1, checkpoint_every=100, preview_every=100, quiet=True,
                          resume=True, settle=settle)
        task = fast_task([FastStyle("stripes", str(style), style_weight=3.0)], str(run.parent / "photos"), cfg)
        (net, _), = task.exports.values()
        tensors, meta = read_safetensors(run / "fast.safetensors")
        net.load_state_dict(tensors)
        before = {k: v.clone() for k, v in net.state_dict().items() if k.endswith("weight") and v.dim() == 4}
        checkpoint_from_weights(tmp_path / f"settle{settle}", task, cfg, int(meta["steps"]), float(meta["seconds"]))
        summary = train(task, cfg)
        assert summary["step"] == 26 and summary["segment_steps"] == 1
        after = net.state_dict()
        moved[settle] = sum((after[k] - v).abs().mean().item() for k, v in before.items()) / len(before)
    assert moved[0] > 0.9 * 2e-3, moved
    assert moved[6] < 0.8 * moved[0], moved


def test_a_run_continued_with_its_exported_moments_steps_as_its_checkpoint_would(trained, tmp_path):
    """export_moments passes the Adam second moments on beside the weights (bf16): the continued optimizer holds
    them, with zero first moments, so its first update is a fraction of the fresh Adam's full learning rate, as the
    exact resume's is."""
    run, style = trained
    source = tmp_path / "source"
    shutil.copytree(run, source)

    def task_for(out):
        cfg = TrainConfig(out=str(out), steps=26, batch_size=2, size=32, short_side=40, lr=2e-3, workers=0,
                          log_every=1, checkpoint_every=100, preview_every=100, quiet=True, resume=True)
        return fast_task([FastStyle("stripes", str(style), style_weight=3.0)], str(run.parent / "photos"), cfg), cfg

    written = export_moments(task_for(source)[0], source)
    assert written == [moments_path(source / "fast.safetensors")] == [source / "fast.moments.safetensors"]
    optimizer_state = load_file(str(source / "checkpoint" / "optimizer-000.safetensors"))
    moved = {}
    for way in ("fresh", "moments", "exact"):
        task, cfg = task_for(tmp_path / way)
        (net, _), = task.exports.values()
        if way == "exact":
            shutil.copytree(source / "checkpoint", tmp_path / way / "checkpoint")
            task.trainable.load_state_dict(load_file(str(source / "checkpoint" / "model.safetensors")))
        else:
            weights = source / "fast.safetensors"
            if way == "fresh":
                weights = shutil.copy2(weights, tmp_path / "bare.safetensors")
            step, seconds, moments = read_exports(task, {"fast": weights})
            assert step == 25 and bool(moments) == (way == "moments")
            checkpoint_from_weights(tmp_path / way, task, cfg, step, seconds, moments)
        if way == "moments":
            state = load_file(str(tmp_path / way / "checkpoint" / "optimizer-000.safetensors"))
            assert torch.allclose(state["0.exp_avg_sq"], optimizer_state["0.exp_avg_sq"], rtol=1e-2, atol=0)
            assert not state["0.exp_avg"].any() and state["0.step"].item() == optimizer_state["0.step"].item() == 25
        before = {k: v.clone() for k, v in net.state_dict().items() if k.endswith("weight") and v.dim() == 4}
        assert train(task, cfg)["segment_steps"] == 1
        after = net.state_dict()
        moved[way] = sum((after[k] - v).abs().mean().item() for k, v in before.items()) / len(before)
    assert moved["fresh"] > 0.9 * 2e-3 and moved["exact"] < 0.6 * moved["fresh"], moved
    assert moved["moments"] < 0.6 * moved["fresh"], moved
    save_file({"body.1.weight": torch.ones(1)}, str(tmp_path / "bare.moments.safetensors"))
    with pytest.raises(WeightsError, match="does not hold the moments of"):
        read_exports(task, {"fast": tmp_path / "bare.safetensors"})
