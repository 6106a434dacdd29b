import csv
import json
import textwrap

import pytest
import torch

from brushwork import api, losses
from brushwork.cli import main
from brushwork.errors import ConfigError, MaskError, WeightsError
from brushwork.io import save_image
from brushwork.methods.adain import AdaINStylizer, adain_task
from brushwork.methods.adain_model import AdaINNet, adain, save_decoder
from brushwork.weights import read_safetensors
from brushwork.train import TrainConfig, train
from brushwork.train.data import MIN_SIDE, SHOWN_SKIPS, RandomCrops, ResidentCrops, scan_images

from .conftest import dots, run_measuring, scene, stripes


def test_adain_gives_content_the_style_statistics():
    content, style = torch.randn(2, 8, 6, 5) * 3 + 1, torch.randn(2, 8, 9, 7) * 0.5 - 2
    mean, std = losses.mean_std(adain(content, style))
    s_mean, s_std = losses.mean_std(style)
    assert torch.allclose(mean, s_mean, atol=1e-4) and torch.allclose(std, s_std, atol=1e-3)
    flat = torch.ones(1, 4, 5, 5)  # zero variance: finite, and lands on the style's mean
    out = adain(flat, style[:1, :4])
    assert torch.isfinite(out).all() and torch.allclose(out.mean((2, 3)), losses.mean_std(style[:1, :4])[0])


def test_masked_adain_matches_each_region_to_its_own_style():
    content = torch.randn(1, 4, 8, 8)
    left = torch.zeros(1, 1, 8, 8)
    left[..., :4] = 1
    style = torch.randn(1, 4, 6, 6) * 2 + 5
    out = adain(content, style, left)
    mean, std = losses.mean_std(out, left)
    s_mean, s_std = losses.mean_std(style)
    assert torch.allclose(mean, s_mean, atol=1e-4) and torch.allclose(std, s_std, atol=1e-3)


@pytest.fixture
def decoder_file(tmp_path):
    """An untrained decoder: enough to check shapes, alpha, masks and the method's plumbing."""
    path = tmp_path / "decoder.safetensors"
    save_decoder(AdaINNet(seed=1).decoder, path, {"backbone": "vgg16-hed", "method": "adain"}, half=True)
    return path


def test_decoder_keeps_odd_sizes_and_alpha_zero_decodes_the_content(decoder_file):
    stylizer = AdaINStylizer(str(decoder_file), "cpu")
    style = stylizer.encode_style(stripes(40, 52, (1, 0.2, 0.1)))
    for h, w in [(37, 50), (64, 33)]:
        content = scene(h, w)
        assert stylizer.stylize(content, [style]).shape == (1, 3, h, w)
    content = scene(48, 64)
    padded = stylizer._pad(content)
    plain = stylizer.net.decoder(stylizer.net.encode(padded)[stylizer.net.layer])[..., :48, :64].clamp(0, 1)
    assert torch.allclose(stylizer.stylize(content, [style], alpha=0.0), plain, atol=1e-5)
    assert not torch.allclose(stylizer.stylize(content, [style], alpha=1.0), plain, atol=1e-3)


def test_adain_method_masks_blends_and_errors(decoder_file, files, tmp_path):
    out = tmp_path / "o.png"
    rc = main(["stylize", str(files["content"]), str(files["style_a"]), str(files["style_b"]), "-o", str(out),
               "--method", "adain", "--model", str(decoder_file), "--size", "64", "--alpha", "0.7",
               "--mask", str(files["mask_left"]), str(files["mask_right"]), "--preserve-color", "luminance",
               "--quiet"])
    assert rc == 0
    meta = json.loads((tmp_path / "o.png.json").read_text())
    assert meta["method"] == "adain" and meta["config"]["alpha"] == 0.7 and meta["seconds"]["total"] > 0
    result = api.run(files["content"], [files["style_a"], files["style_b"]], method="adain",
                     model=str(decoder_file), size=64, style_blend=[0.7, 0.3])
    assert result.image.shape == (1, 3, 48, 64)
    with pytest.raises(ConfigError, match="alpha"):
        api.run(files["content"], files["style_a"], method="adain", model=str(decoder_file), alpha=1.5)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) for adain: colour, --iterations \(an option of "
                                          r"optimize\)$"):
        api.run(files["content"], files["style_a"], method="adain", model=str(decoder_file), iterations=3, colour=1)
    with pytest.raises(MaskError):
        api.run(files["content"], [files["style_a"], files["style_b"]], method="adain", model=str(decoder_file),
                masks=[files["mask_left"]])
    with pytest.raises(WeightsError, match="not shipped"):
        api.run(files["content"], files["style_a"], method="adain")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightsError, match="not a safetensors model file"):
        read_safetensors(bad)


@pytest.fixture
def train_dirs(tmp_path):
    content, style = tmp_path / "content", tmp_path / "style" / "nested"
    content.mkdir()
    style.mkdir(parents=True)
    save_image(scene(72, 96), content / "a.png")
    save_image(scene(80, 80).flip(-1), content / "b.jpg")
    (content / "broken.jpg").write_bytes(b"not an image")
    save_image(scene(20, 20), content / "tiny.png")
    save_image(stripes(80, 96, (1.0, 0.3, 0.1), period=4), style / "s.png")
    save_image(dots(90, 80, (0.1, 0.2, 1.0)), style / "d.png")
    return content, tmp_path / "style"


def test_skipped_training_images_are_named_a_few_at_a_time_and_none_usable_is_one_error(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(8):
        save_image(scene(20, 30), folder / f"tiny{i}.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ConfigError, match=r"no usable images in .*; all 9 found were skipped, e\.g\. .*broken\.jpg: "
                                          r"not a readable image"):
        scan_images(folder, MIN_SIDE)
    assert capsys.readouterr().err == ""  # the error alone says it: no warning per file before it
    save_image(scene(72, 96), folder / "good.png")
    files, lines = scan_images(folder, MIN_SIDE)
    assert files == [folder / "good.png"] and capsys.readouterr().err == ""  # the loop shows them as it starts
    assert len(lines) == SHOWN_SKIPS + 1 and "broken.jpg: not a readable image" in lines[0]
    assert all("is smaller than 64 px" in line for line in lines[1:SHOWN_SKIPS])
    assert lines[-1].endswith(f"skipping 4 more in {folder}, unreadable or too small (1 kept)")


def _cfg(out, steps, **kw):
    settings = {"batch_size": 2, "size": 32, "short_side": 48, "workers": 0, "checkpoint_every": 100,
                "preview_every": 4, "log_every": 1, "quiet": True, **kw}
    return TrainConfig(out=str(out), steps=steps, **settings)


def _totals(run):
    with (run / "metrics.csv").open() as f:
        return [float(r["total"]) for r in csv.DictReader(f)]


def test_training_lowers_the_loss_and_resumes_exactly(train_dirs, tmp_path, capsys):
    content, style = train_dirs
    whole = _cfg(tmp_path / "whole", 8, lr=1e-3)
    train(adain_task(str(content), str(style), whole), whole)
    err = capsys.readouterr().err
    assert "broken.jpg: not a readable image" in err and "tiny.png: 20×20 is smaller" in err
    first = _cfg(tmp_path / "split", 5, lr=1e-3)
    train(adain_task(str(content), str(style), first), first)
    second = _cfg(tmp_path / "split", 8, lr=1e-3, resume=True, workers=1)
    summary = train(adain_task(str(content), str(style), second), second)
    assert summary["segment_steps"] == 3 and summary["step"] == 8
    assert _totals(tmp_path / "split") == pytest.approx(_totals(tmp_path / "whole"), rel=1e-5)
    run = tmp_path / "whole"
    assert (run / "adain.safetensors").is_file() and (run / "previews" / "step_0000004.png").is_file()
    tensors, meta = read_safetensors(run / "adain.safetensors")
    assert meta["steps"] == "8" and meta["backbone"] == "vgg16-hed"
    assert all((run / "checkpoint" / f).stat().st_size <= 16 * 2 ** 20 for f in ("model.safetensors",
                                                                                 "optimizer-000.safetensors"))


MEASURE_STEP = textwrap.dedent("""
    import json, sys
    from brushwork.methods.adain import adain_task
    from brushwork.train import TrainConfig, loop, train

    content, style, out = sys.argv[1:4]
    cfg = TrainConfig(out=out, steps=1, batch_size=4, size=192, short_side=192, workers=0, quiet=True)
    task = adain_task(content, style, cfg)
    estimates, step_bytes = [], loop.step_bytes
    loop.step_bytes = lambda *args: estimates.append(step_bytes(*args)) or estimates[-1]
    reset_peak()
    train(task, cfg)
    print(json.dumps({"measured": peak(), "estimate": estimates[0]}))
""")


def test_the_training_memory_guard_estimates_a_step_near_its_measured_peak(train_dirs, tmp_path):
    """The guard refuses a --batch-size that cannot fit (tests/test_bad_inputs.py); here its estimate is checked
    against the peak resident memory of a fresh process that trains one step: 0.75 to 1.4 times it, so it neither
    lets through a batch that the machine kills nor refuses one that fits with room to spare."""
    content, style = train_dirs
    p = run_measuring(MEASURE_STEP, content, style, tmp_path / "run")
    assert 0.75 < p["estimate"] / p["measured"] < 1.4, p


def test_device_resident_data_resumes_exactly_and_crops_what_it_holds(train_dirs, tmp_path):
    content, style = train_dirs
    whole = _cfg(tmp_path / "whole", 6, lr=1e-3, data="device", channels_last="on")
    train(adain_task(str(content), str(style), whole), whole)
    first = _cfg(tmp_path / "split", 4, lr=1e-3, data="device", channels_last="on")
    train(adain_task(str(content), str(style), first), first)
    second = _cfg(tmp_path / "split", 6, lr=1e-3, data="device", channels_last="on", resume=True)
    train(adain_task(str(content), str(style), second), second)
    assert _totals(tmp_path / "split") == pytest.approx(_totals(tmp_path / "whole"), rel=1e-5)
    crops = RandomCrops(scan_images(content, MIN_SIDE)[0], 32, 48, seed=3)
    resident = ResidentCrops(crops)
    assert resident.data.shape[1:] == (48, 48, 3) and resident.data.dtype == torch.uint8
    batch = resident.batch(5, 4)
    assert batch.shape == (4, 3, 32, 32) and batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch, resident.batch(5, 4)) and not torch.equal(batch, resident.batch(9, 4))
    stream = resident.stream(2, first_step=3)
    assert torch.equal(next(stream), resident.batch(6, 2))
    windows = resident.data.permute(0, 3, 1, 2).float().div(255).unfold(2, 32, 1).unfold(3, 32, 1)
    for crop in batch:  # every crop is a 32×32 window of one of the decoded images
        assert (windows - crop[None, :, None, None]).abs().amax(dim=(1, 4, 5)).min() < 1e-6


def test_the_decoder_learns_to_reconstruct(train_dirs, tmp_path):
    content, style = train_dirs
    cfg = _cfg(tmp_path / "learn", 30, lr=1e-3)
    train(adain_task(str(content), str(style), cfg), cfg)
    totals = _totals(tmp_path / "learn")
    assert sum(totals[-5:]) < 0.5 * sum(totals[:5]), totals


def test_train_cli_errors(train_dirs, tmp_path, capsys):
    content, style = train_dirs
    base = ["train", "adain", "--content-dir", str(content), "--style-dir", str(style), "--out", str(tmp_path / "r")]
    assert main([*base, "--precision", "bf16-mixed", "--device", "cpu"]) == 2
    assert "mixed precision is for GPUs" in capsys.readouterr().err
    if not torch.cuda.is_available():  # --device auto without a GPU is the CPU too (it trained in bf16 there)
        assert main([*base, "--precision", "bf16-mixed"]) == 2
        assert "mixed precision is for GPUs" in capsys.readouterr().err
    assert main([*base, "--devices", str(torch.cuda.device_count() + 2)]) == 2
    assert "asks for more GPUs than" in capsys.readouterr().err
    assert main([*base[:3], str(tmp_path / "none"), *base[4:]]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main([*base, "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
