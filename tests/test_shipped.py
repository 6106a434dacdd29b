"""Every model file that ships in brushwork/models/ stylizes a 128 px photo towards its style while keeping more of
the photo than the painting has, and its ONNX export matches torch. With no file shipped there is nothing to test
(the parameter set is empty); BRUSHWORK_TEST_MODELS=DIR runs the same checks on the files in DIR, such as a release's
weights before they ship."""

import os
from pathlib import Path

import pytest
import torch

from brushwork import api, io, metrics
from brushwork.backbones import create_backbone
from brushwork.export import export_model
from brushwork.weights import read_safetensors

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT.parent / "shared" / "data" / "pairs"
MODELS = Path(os.environ.get("BRUSHWORK_TEST_MODELS") or ROOT / "brushwork" / "models")
FILES = sorted(MODELS.glob("*.safetensors")) if MODELS.is_dir() else []
SIZE = 128

pytestmark = pytest.mark.skipif(not (PAIRS / "content" / "tubingen.jpg").is_file(), reason="needs ../shared pairs")


def _case(path: Path) -> tuple[str, Path, list[str]]:
    """(method, style image, the style arguments api.run takes: none for fast, whose model carries its style)."""
    meta = read_safetensors(path)[1]
    method = meta["method"]
    if method == "fast":
        return method, PAIRS / "style" / meta["style"], []
    style = PAIRS / "style" / "starry_night.jpg"
    return method, style, [str(style)]


def _small(path: Path) -> torch.Tensor:
    image = io.load_image(path)
    return io.resize(image, io.fit_long_side(*image.shape[-2:], SIZE))


@pytest.fixture(scope="module")
def grader():
    """The backbone that made none of the models (they all read vgg16-hed features)."""
    return create_backbone("efficientnet-lite0")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_shipped_model_stylizes_towards_its_style_and_keeps_the_photo(path, grader):
    method, style_file, styles = _case(path)
    photo_file = PAIRS / "content" / "tubingen.jpg"
    out = api.run(str(photo_file), *styles, method=method, model=str(path), size=SIZE).image
    photo = io.resize(_small(photo_file), out.shape[-2:])
    style = _small(style_file)
    towards = metrics.gram_distance(out, style, grader).item()
    before = metrics.gram_distance(photo, style, grader).item()
    assert towards < 0.8 * before, (towards, before)
    kept = metrics.content_distance(out, photo, grader).item()
    painting = metrics.content_distance(io.resize(style, out.shape[-2:]), photo, grader).item()
    assert kept < painting, (kept, painting)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_shipped_models_onnx_export_matches_torch(path, tmp_path):
    method, _, styles = _case(path)
    onnx = export_model(str(path), "onnx", tmp_path / f"{path.stem}.onnx")
    photo = str(PAIRS / "content" / "tubingen.jpg")
    reference = api.run(photo, *styles, method=method, model=str(path), size=96).image
    via_onnx = api.run(photo, *styles, method=method, model=str(onnx), runtime="onnx", size=96).image
    assert via_onnx.shape == reference.shape and (via_onnx - reference).abs().max() < 2e-3
