import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from brushwork import ImageError, OutputError
from brushwork.io import fit_long_side, load_image, load_mask, save_image, save_json, square_cell, to_json


def test_formats_modes_and_exif(tmp_path):
    rgb = (np.arange(12 * 20 * 3) % 256).astype(np.uint8).reshape(12, 20, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    t = load_image(tmp_path / "a.png")
    assert t.shape == (1, 3, 12, 20) and t.dtype == torch.float32
    assert torch.allclose(t[0].permute(1, 2, 0), torch.from_numpy(rgb).float() / 255)

    Image.fromarray(np.full((5, 7), 65535, np.uint16)).save(tmp_path / "g16.png")
    assert torch.allclose(load_image(tmp_path / "g16.png"), torch.ones(1, 3, 5, 7))

    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black composites to white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert torch.allclose(load_image(tmp_path / "t.png"), torch.ones(1, 3, 4, 4))

    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (1, 3, 20, 12)

    Image.fromarray(np.full((6, 6), 128, np.uint8), "L").save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").shape == (1, 1, 6, 6)


@pytest.mark.parametrize("name,data,message", [
    ("missing.png", None, "not found"),
    ("empty.png", b"", "empty"),
    ("text.png", b"hello, not an image", "not an image"),
    ("cut.jpg", "truncated", "corrupt"),
])
def test_bad_images_raise_image_error(tmp_path, name, data, message):
    path = tmp_path / name
    if data == "truncated":
        Image.new("RGB", (64, 64), "red").save(tmp_path / "full.jpg")
        path.write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    elif data is not None:
        path.write_bytes(data)
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_tensors_and_arrays_read_as_their_dtype_says():
    """A uint8 tensor is 0–255, as a uint8 array is: clamping it as floats made every non-zero pixel white."""
    u8 = torch.tensor([[[0, 51, 255]]], dtype=torch.uint8).expand(3, 1, 3)
    assert torch.allclose(load_image(u8), torch.tensor([0.0, 0.2, 1.0]).expand(1, 3, 1, 3))
    assert torch.allclose(load_image(u8.permute(1, 2, 0).numpy()), load_image(u8))
    assert torch.allclose(load_image(torch.full((3, 2, 2), 0.25, dtype=torch.float64)), torch.full((1, 3, 2, 2), 0.25))
    u16 = np.array([[[0, 13107, 65535]]], dtype=np.uint16).repeat(3, 0).transpose(1, 2, 0)  # a 16-bit PNG's array
    assert torch.allclose(load_image(u16), torch.tensor([0.0, 0.2, 1.0]).expand(1, 3, 1, 3))
    assert torch.equal(load_image(np.ones((2, 2), bool)), torch.ones(1, 3, 2, 2))
    assert torch.equal(load_image(torch.full((1, 3, 2, 2), 1.2)), torch.ones(1, 3, 2, 2))  # a resampling overshoot
    mine, theirs = np.full((2, 2, 3), 1.2, np.float32), torch.full((1, 3, 2, 2), -0.1)
    load_image(mine), load_image(theirs)
    assert (mine == np.float32(1.2)).all() and (theirs == -0.1).all()  # the caller's own, never clamped in place


@pytest.mark.parametrize("src,message", [
    (torch.rand(2, 3, 8, 8), "a batch of 2"),
    (torch.rand(1, 4, 8, 8), "shape 3×H×W"),
    (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
    (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
    (None, "got NoneType"),
    (torch.randint(0, 256, (1, 3, 8, 8)), "uint8, uint16 or floats in \\[0, 1\\], got int64"),  # 0–255, as what?
    (np.zeros((8, 8, 3), np.int32), "got int32"),
    (torch.rand(1, 3, 8, 8) * 255, "divide by 255"),  # would clamp to white
    (np.random.default_rng(0).normal(0, 1, (8, 8, 3)) * 2, "got values from -"),  # ImageNet-normalized
    (b"\x89PNG", "got bytes"),
])
def test_images_in_memory_that_are_no_image_raise_image_error(src, message):
    with pytest.raises(ImageError, match=message):
        load_image(src)


@pytest.mark.parametrize("failure,message", [
    (OSError(28, "No space left on device"), "No space left on device"),
    (RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"), "I/O error"),
])
def test_a_write_that_fails_is_an_output_error_and_leaves_nothing(tmp_path, failure, message):
    """A full disk fails PIL's, safetensors' and ONNX's writers differently; each is one OutputError naming the
    file (safetensors' was a traceback in training and video), and the temporary file goes."""
    from brushwork.io import atomic_write

    def write(tmp):
        Path(tmp).write_bytes(b"half")
        raise failure

    with pytest.raises(OutputError, match=f"cannot write .*out.bin: .*{message}"):
        atomic_write(tmp_path / "out.bin", write)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="not a write"):  # other errors are not disguised
        atomic_write(tmp_path / "out.bin", lambda tmp: (_ for _ in ()).throw(ValueError("not a write")))
    assert not list(tmp_path.iterdir())


def test_save_is_atomic_and_checks_the_path(tmp_path):
    img = torch.rand(1, 3, 8, 10)
    for ext in (".png", ".jpg", ".tif"):
        out = save_image(img, tmp_path / f"o{ext}")
        assert Image.open(out).size == (10, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "o.png", "o.tif"]  # no temp files left
    with pytest.raises(OutputError, match="format"):
        save_image(img, tmp_path / "o.gif")
    with pytest.raises(OutputError, match="does not exist"):
        save_image(img, tmp_path / "nope" / "o.png")
    save_json({"a": 1}, tmp_path / "s.json")
    assert (tmp_path / "s.json").read_text().strip().startswith("{")
    mask = os.umask(0o022)
    try:
        assert stat.S_IMODE(save_image(img, tmp_path / "p.png").stat().st_mode) == 0o644  # not mkstemp's 0600
    finally:
        os.umask(mask)


def test_fit_long_side_keeps_aspect():
    assert fit_long_side(300, 400, 512) == (384, 512)
    assert fit_long_side(1000, 10, 100) == (100, 1)


def test_load_strict_says_which_tensors_do_not_fit():
    from torch import nn

    from brushwork.errors import WeightsError
    from brushwork.weights import load_strict

    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    good = {k: v.clone() + 1 for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    load_strict(net, good, "x", "the net")  # BatchNorm's batch counter may be absent, as torch allows
    assert torch.equal(net[0].weight, good["0.weight"])
    with pytest.raises(WeightsError, match=r"^m does not fit the net: tensors 1 missing \(first: 0.bias\), 1 "
                                           r"unexpected \(first: extra\)$"):
        load_strict(net, {**{k: v for k, v in good.items() if k != "0.bias"}, "extra": torch.zeros(1)}, "m",
                    "the net")
    with pytest.raises(WeightsError, match=r"1 tensors of another shape \(first: 0.weight\)"):
        load_strict(net, {**good, "0.weight": torch.zeros(2, 2)}, "m", "the net")


def test_square_cell_takes_the_centre_square():
    image = torch.zeros(1, 3, 40, 60)
    image[..., :, 10:50] = 1.0  # the centre 40×40 square is white, the side bands black
    cell = square_cell(image, 20)
    assert cell.shape == (1, 3, 20, 20) and cell.min() == 1.0
    assert square_cell(image.transpose(-1, -2), 20).shape == (1, 3, 20, 20)


def test_an_image_too_large_to_decode_is_refused_from_its_header(tmp_path, monkeypatch):
    """A PNG of zero rows compresses a 40,000-px square into a few MB: its decoding ran out of memory with a
    traceback. The header says its size, and the memory guard speaks before a pixel is decoded."""
    from brushwork import SizeError, resources

    path = tmp_path / "wide.png"
    Image.new("L", (300, 200)).save(path)
    free = 300 * 200 * 30  # below what decoding it takes
    monkeypatch.setattr(resources, "available_memory", lambda device: free)
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(SizeError, match=r"reading .*wide.png \(300×200 px\) needs about"):
        load_image(path)
    assert not decoded


def test_json_holds_null_where_a_number_is_not_finite(tmp_path):
    """json.dumps writes NaN and Infinity, which no JSON reader but Python's takes: a metric with nothing to measure
    or a diverged loss must not make a sidecar or `eval --json` unreadable."""
    data = {"loss": float("nan"), "rows": [{"w2": float("inf")}, 0.5], "name": "x"}
    assert json.loads(to_json(data)) == {"loss": None, "rows": [{"w2": None}, 0.5], "name": "x"}
    save_json(data, tmp_path / "s.json")
    text = (tmp_path / "s.json").read_text()
    assert "NaN" not in text and json.loads(text)["loss"] is None
