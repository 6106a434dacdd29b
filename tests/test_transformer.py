"""The transformer method (StyTr²) at d 32 on 64×48 and 48×80 inputs: shapes for non-square inputs, the
positional encoding as a resize of one map, training that lowers the loss and resumes exactly, alpha, blends and
masks, and ONNX against torch."""

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from brushwork import api
from brushwork.cli import main
from brushwork.errors import ConfigError, WeightsError
from brushwork.export import export_model
from brushwork.methods import transformer_model
from brushwork.methods.transformer import TransformerStylizer, TransformerTrainOptions, transformer_task
from brushwork.methods.transformer_model import CONFIGS, PositionalEncoding, StyTr2, adaptive_mean
from brushwork.train import TrainConfig, train
from brushwork.weights import read_safetensors

from .conftest import TINY_TRANSFORMER, dots, scene, stripes, tiny_transformer

SIZES = [(48, 64), (80, 48)]  # 64×48 and 48×80, as (height, width)


@pytest.mark.parametrize("h,w", [*SIZES, (37, 50)])
def test_any_aspect_ratio_in_and_out(h, w):
    net = tiny_transformer()
    with torch.no_grad():
        out = net(scene(h, w), stripes(40, 72, (1.0, 0.2, 0.1)))
        assert out.shape == (1, 3, h, w)
        tokens, pos, grid = net.encode_content(torch.zeros(2, 3, (h + 7) // 8 * 8, (w + 7) // 8 * 8))
        assert grid == ((h + 7) // 8, (w + 7) // 8) and tokens.shape == pos.shape == (2, grid[0] * grid[1], 32)


def test_adaptive_mean_is_adaptive_average_pooling():
    x = torch.randn(2, 5, 37, 23)
    assert torch.allclose(adaptive_mean(x, 18), F.adaptive_avg_pool2d(x, 18), atol=1e-6)


def test_the_positional_encoding_at_two_sizes_is_a_resize_of_the_same_map():
    torch.manual_seed(0)
    cape = PositionalEncoding(16)
    small = torch.randn(1, 16, 36, 54)  # a token grid, and the same grid at twice the resolution
    large = small.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    grid_map = cape.map(small)
    assert grid_map.shape[-2:] == (18, 18) and torch.allclose(cape.map(large), grid_map, atol=1e-5)
    for tokens in (small, large):
        expected = F.interpolate(grid_map, size=tokens.shape[-2:], mode="bilinear", align_corners=False)
        assert torch.allclose(cape(tokens), expected, atol=1e-5)
    assert not torch.allclose(cape(small), cape(small.flip(-1)), atol=1e-3)  # it depends on the content


def test_the_small_config_is_about_5_m_parameters():
    sizes = {name: sum(p.numel() for p in StyTr2(cfg).parameters()) / 1e6 for name, cfg in CONFIGS.items()}
    assert 4.5 < sizes["small"] < 7 and sizes["paper"] > 30


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(transformer_model.CONFIGS, "tiny", TINY_TRANSFORMER)


def _run(folders, out, steps, **kw):
    settings = {"batch_size": 2, "size": 32, "short_side": 48, "workers": 0, "log_every": 1, "checkpoint_every": 100,
                "preview_every": 100, "lr": 2e-3, "warmup": 3, "quiet": True, **kw}
    cfg = TrainConfig(out=str(out), steps=steps, **settings)
    return transformer_task(TransformerTrainOptions(str(folders[0]), str(folders[1]), config="tiny"), cfg), cfg


def _rows(run):
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_training_lowers_the_loss_and_resumes_exactly(folders, tmp_path, tiny):
    train(*_run(folders, tmp_path / "whole", 30))
    rows = _rows(tmp_path / "whole")
    totals = [float(r["total"]) for r in rows]
    assert sum(totals[-5:]) < 0.7 * sum(totals[:5]), totals
    assert float(rows[0]["lr"]) == pytest.approx(2e-3 / 3, rel=1e-3)  # the warmup's first step
    assert {"content", "style", "identity_pixels", "identity_features"} <= set(rows[0])
    train(*_run(folders, tmp_path / "split", 4))
    train(*_run(folders, tmp_path / "split", 6, resume=True))
    split = [float(r["total"]) for r in _rows(tmp_path / "split")]
    assert split == pytest.approx(totals[:6], rel=1e-5)
    meta = read_safetensors(tmp_path / "whole" / "transformer.safetensors")[1]
    assert meta["method"] == "transformer" and meta["dim"] == "32" and meta["steps"] == "30"
    with safe_open(str(tmp_path / "whole" / "transformer.safetensors"), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())


def test_alpha_blends_and_masks(models):
    stylizer = TransformerStylizer(str(models["transformer"]), "cpu")
    content = scene(48, 64)
    red, blue = stylizer.encode_style(stripes(64, 64, (1.0, 0.1, 0.1))), stylizer.encode_style(dots(56, 72,
                                                                                                   (0.1, 0.2, 1.0)))
    full, other = stylizer.stylize(content, [red]), stylizer.stylize(content, [blue])
    with torch.no_grad():
        assert torch.allclose(full, stylizer.net(content, stripes(64, 64, (1.0, 0.1, 0.1))).clamp(0, 1), atol=1e-5)
        own = stylizer.net(content, content, 0.0).clamp(0, 1)  # alpha 0: the content stylized by itself
    assert torch.allclose(stylizer.stylize(content, [red], alpha=0.0), own, atol=1e-5)
    assert not torch.allclose(full, other, atol=1e-2)
    left = torch.zeros(1, 1, 48, 64)
    left[..., :32] = 1
    masked = stylizer.stylize(content, [red, blue], masks=[left, 1 - left])
    assert (masked - full)[..., 8:-8, 4:24].abs().mean() < (masked - other)[..., 8:-8, 4:24].abs().mean()
    assert (masked - other)[..., 8:-8, 40:60].abs().mean() < (masked - full)[..., 8:-8, 40:60].abs().mean()
    half = stylizer.stylize(content, [red, blue], weights=[0.5, 0.5])
    assert not torch.allclose(half, full, atol=1e-3) and not torch.allclose(half, other, atol=1e-3)


@pytest.mark.parametrize("h,w", SIZES)
def test_onnx_and_torch_agree(models, tmp_path, h, w):
    onnx = tmp_path / "t.onnx"
    if not onnx.is_file():
        export_model(str(models["transformer"]), "onnx", onnx)
    content, style = scene(h, w), stripes(40, 56, (1.0, 0.2, 0.1))
    common = dict(method="transformer", size=max(h, w), alpha=0.7)
    reference = api.run(content, style, model=str(models["transformer"]), **common).image
    via_onnx = api.run(content, style, model=str(onnx), runtime="onnx", **common).image
    assert via_onnx.shape == (1, 3, h, w) and (via_onnx - reference).abs().max() < 1e-3


def test_the_transformer_refuses_what_it_cannot_do(models, files, tmp_path, capsys):
    with pytest.raises(ConfigError, match="--tile 32 is too small"):
        api.run(scene(48, 64), stripes(32, 32, (1, 0, 0)), method="transformer", model=str(models["transformer"]),
                tile=32)
    with pytest.raises(WeightsError, match="not a transformer model"):
        api.run(scene(48, 64), stripes(32, 32, (1, 0, 0)), method="transformer", model=str(models["gan"]))
    with pytest.raises(WeightsError, match="not shipped"):
        api.run(scene(48, 64), stripes(32, 32, (1, 0, 0)), method="transformer")
    assert main(["train", "transformer", "--content-dir", str(tmp_path), "--style-dir", str(tmp_path), "--config",
                 "huge", "--out", str(tmp_path / "run")]) == 2
    assert "unknown transformer config 'huge'" in capsys.readouterr().err
    out = tmp_path / "o.png"
    assert main(["stylize", str(files["content"]), str(files["style_a"]), "-o", str(out), "--method", "transformer",
                 "--model", str(models["transformer"]), "--size", "64", "--quiet"]) == 0
    assert json.loads((tmp_path / "o.png.json").read_text())["method"] == "transformer"
