"""The contract every registered method keeps, checked once for all of them: sizes and aspect ratios, masks, blends,
colour preservation, seeds, the sidecar, and bad input. A new method registers itself and adds a tiny setup to
TINY below; the tests then hold it to the same contract."""

import json

import pytest
import torch
from safetensors.torch import save_file

from brushwork import api, color
from brushwork.cli import main
from brushwork.errors import ConfigError, MaskError
from brushwork.io import fit_long_side, resize, save_image
from brushwork.methods import get_method, method_names
from brushwork.methods.adain_model import AdaINNet, save_decoder
from brushwork.methods.fast_model import build_net
from brushwork.methods.transformer_model import StyTr2, TransformerConfig

from .conftest import dots, scene, stripes


def _mid_grey(net: torch.nn.Module) -> torch.nn.Module:
    """An untrained network's output sits near 0 and would clamp; lift it to mid-grey, where colours fit."""
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.bias += 0.5
    return net


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Untrained models for the feed-forward methods: enough for the plumbing, which is what the contract is."""
    root = tmp_path_factory.mktemp("contract")
    save_decoder(_mid_grey(AdaINNet(seed=3).decoder), root / "adain.safetensors",
                 {"method": "adain", "backbone": "vgg16-hed"})
    save_decoder(_mid_grey(AdaINNet(seed=4).decoder), root / "gan.safetensors",
                 {"method": "gan", "backbone": "vgg16-hed", "format": "brushwork-gan-generator/1"})
    torch.manual_seed(0)
    save_file(_mid_grey(StyTr2(TransformerConfig(32, 4, 1, 1, 1, 64))).state_dict(),
              str(root / "transformer.safetensors"), metadata={"method": "transformer", "backbone": "vgg16-hed",
                                                               **TransformerConfig(32, 4, 1, 1, 1, 64).to_metadata()})
    save_file(_mid_grey(build_net("mobile")).state_dict(), str(root / "fast.safetensors"),
              metadata={"method": "fast", "arch": "mobile", "width": "32", "backbone": "vgg16-hed"})
    return root


# Per method: the options that make it quick on tiny images, and the backbone that made its output.
TINY = {"optimize": (lambda root: {"iterations": 2, "scales": 1}, "vgg16-hed"),
        "adain": (lambda root: {"model": str(root / "adain.safetensors")}, "vgg16-hed"),
        "fast": (lambda root: {"model": str(root / "fast.safetensors")}, "vgg16-hed"),
        "gan": (lambda root: {"model": str(root / "gan.safetensors")}, "vgg16-hed"),
        "transformer": (lambda root: {"model": str(root / "transformer.safetensors")}, "vgg16-hed")}
METHODS = method_names()
RED, BLUE = stripes(64, 64, (1.0, 0.1, 0.1)), dots(56, 72, (0.1, 0.2, 1.0))


def _styles(method: str, *styles):
    return list(styles) if get_method(method).capabilities.styles else []


def _run(method: str, models, content: torch.Tensor, styles: list, size: int = 64, **options) -> torch.Tensor:
    options = {**TINY[method][0](models), "size": size, "quiet": True, **options}
    return api.run(content, styles, method=method, **options).image


def test_every_method_has_a_tiny_setup():
    assert set(TINY) == set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_output_keeps_the_contents_aspect_ratio_at_the_asked_size(method, models):
    for (h, w), size in (((48, 64), 64), ((70, 40), 56)):
        out = _run(method, models, scene(h, w), _styles(method, RED), size=size)
        assert out.shape == (1, 3, *fit_long_side(h, w, size)) and out.dtype == torch.float32
        assert out.device.type == "cpu" and 0 <= float(out.min()) and float(out.max()) <= 1


@pytest.mark.parametrize("method", METHODS)
def test_masks_are_checked_the_same_way_everywhere(method, models):
    content = scene(48, 64)
    styles = _styles(method, RED, BLUE)
    half = torch.zeros(1, 1, 24, 32)  # the content's aspect ratio at another resolution
    half[..., :16] = 1
    if not get_method(method).capabilities.masks:
        with pytest.raises(MaskError, match="masks need"):
            _run(method, models, content, styles, masks=[half])
        return
    assert _run(method, models, content, styles, masks=[half, 1 - half]).shape == (1, 3, 48, 64)
    with pytest.raises(MaskError, match="aspect ratio"):
        _run(method, models, content, styles, masks=[torch.ones(1, 1, 10, 50), torch.ones(1, 1, 10, 50)])
    with pytest.raises(MaskError, match="one mask per style"):
        _run(method, models, content, styles, masks=[half])
    with pytest.raises(MaskError, match="no pixels"):
        _run(method, models, content, styles, masks=[half, torch.zeros(1, 1, 24, 32)])


@pytest.mark.parametrize("method", METHODS)
def test_blend_weights_mix_the_styles(method, models):
    content = scene(48, 64)
    if not get_method(method).capabilities.styles:
        with pytest.raises(ConfigError, match="style-blend"):
            _run(method, models, content, [], style_blend=[1.0])
        return
    alone = _run(method, models, content, [RED])
    assert torch.allclose(_run(method, models, content, [RED, BLUE], style_blend=[1.0, 0.0]), alone, atol=1e-5)
    assert torch.allclose(_run(method, models, content, [RED, RED], style_blend=[0.5, 0.5]), alone, atol=1e-5)
    assert not torch.allclose(_run(method, models, content, [RED, BLUE], style_blend=[0.0, 1.0]), alone, atol=1e-3)
    with pytest.raises(ConfigError, match="1 weights for 2"):
        _run(method, models, content, [RED, BLUE], style_blend=[1.0])


@pytest.mark.parametrize("method", METHODS)
def test_colour_preservation(method, models):
    content = scene(48, 64)
    out = _run(method, models, content, _styles(method, RED), preserve_color="luminance")
    chroma_out, chroma_in = color.rgb_to_ycbcr(out)[:, 1:], color.rgb_to_ycbcr(resize(content, (48, 64)))[:, 1:]
    assert float((chroma_out - chroma_in).abs().median()) < 1e-3  # exact but where the clamp to [0, 1] moved it
    if "histogram" not in get_method(method).capabilities.color_modes:
        with pytest.raises(ConfigError, match="histogram"):
            _run(method, models, content, _styles(method, RED), preserve_color="histogram")
        return
    # histogram means: the styles get the content's colours before the transfer, and nothing else changes
    recoloured = _run(method, models, content, [color.match_color(RED, content)])
    assert torch.allclose(_run(method, models, content, [RED], preserve_color="histogram"), recoloured, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_image(method, models):
    content, styles = scene(48, 64), _styles(method, RED)
    first = api.run(content, styles, method=method, size=64, quiet=True, seed=5, **TINY[method][0](models))
    assert first.options.seed == 5 and first.seconds["total"] > 0
    assert torch.equal(first.image, _run(method, models, content, styles, seed=5))


@pytest.fixture
def inputs(tmp_path):
    paths = {"content": tmp_path / "c.png", "red": tmp_path / "red.png", "blue": tmp_path / "blue.png"}
    for key, image in (("content", scene(48, 64)), ("red", RED), ("blue", BLUE)):
        save_image(image, paths[key])
    return {k: str(v) for k, v in paths.items()}


@pytest.mark.parametrize("method", METHODS)
def test_the_sidecar_records_how_the_image_was_made(method, models, inputs, tmp_path):
    out = tmp_path / "o.png"
    styles = _styles(method, inputs["red"])
    api.stylize_file(inputs["content"], styles, out, method=method, size=64, seed=3, quiet=True,
                     **TINY[method][0](models))
    meta = json.loads((tmp_path / "o.png.json").read_text())
    assert meta["method"] == method and meta["preset"] == "default" and meta["seed"] == 3
    assert meta["backbone"] == TINY[method][1] and meta["device"] == "cpu"
    assert meta["config"]["size"] == 64 and meta["config"]["seed"] == 3 and meta["versions"]["torch"]
    assert meta["content"].endswith("c.png") and len(meta["styles"]) == len(styles) and meta["masks"] is None
    assert {"load", "save", "total"} <= set(meta["seconds"]) and isinstance(meta["losses"], dict)


def _cli_flags(method: str, models) -> list[str]:
    flags = []
    for key, value in TINY[method][0](models).items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return ["--method", method, "--size", "64", "--quiet", *flags]


@pytest.mark.parametrize("method", METHODS)
def test_bad_input_is_one_line_and_exit_2(method, models, inputs, tmp_path, capsys):
    c, out = inputs["content"], str(tmp_path / "o.png")
    styles = _styles(method, inputs["red"], inputs["blue"])
    cases = [[c + ".missing", *styles], [c, *styles, "--mask", inputs["red"], inputs["red"]],
             [c, *styles, "--style-blend", "1"], [c, *styles, "--size", "0"]]
    for case in cases:
        assert main(["stylize", "-o", out, *_cli_flags(method, models), *case]) == 2, case
        err = capsys.readouterr().err
        assert err.startswith("brushwork: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not list(tmp_path.glob("o.png*"))
