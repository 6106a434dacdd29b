"""tools/gallery.py lays out every model beside the optimize method's result, within the README's budget."""

import sys
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

from brushwork.io import save_image
from brushwork.methods.adain_model import AdaINNet, save_decoder
from brushwork.methods.fast_model import MobileTransformNet, TransformNet

from .conftest import dots, scene, stripes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import gallery  # noqa: E402


def test_the_gallery_puts_each_model_beside_optimize(tmp_path):
    pairs, models = tmp_path / "pairs", tmp_path / "models"
    for folder in (pairs / "content", pairs / "style", models):
        folder.mkdir(parents=True)
    for i, name in enumerate(gallery.PHOTOS):
        save_image(scene(40, 56) * (0.7 + 0.2 * i), pairs / "content" / f"{name}.jpg")
    for name in (*gallery.ARBITRARY_STYLES, "mosaic"):
        save_image(stripes(48, 48, (1.0, 0.3, 0.1)) if name != "mosaic" else dots(48, 48, (0.1, 0.3, 1.0)),
                   pairs / "style" / f"{name}.jpg")
    torch.manual_seed(0)
    meta = {"method": "fast", "style": "mosaic.jpg", "width": "32"}
    save_file(TransformNet().state_dict(), str(models / "fast-mosaic.safetensors"), metadata=meta)
    save_file(MobileTransformNet().state_dict(), str(models / "fast-mosaic-mobile.safetensors"),
              metadata={**meta, "arch": "mobile"})
    save_decoder(AdaINNet(seed=1).decoder, models / "adain-vgg16-hed.safetensors",
                 {"method": "adain", "backbone": "vgg16-hed"})
    written = gallery.build(models, pairs, tmp_path / "gallery", 64, tmp_path / "cache", iterations=2)
    assert [p.name for p in written] == ["fast.jpg", "arbitrary.jpg"]
    # fast: one row per classic style; the style, then optimize, classic and mobile for each photo
    assert Image.open(written[0]).size == (64 * (1 + 3 * len(gallery.PHOTOS)), 64)
    # arbitrary: one row per style and photo; the style, the photo, optimize, then adain (the only one here)
    assert Image.open(written[1]).size == (64 * 4, 64 * len(gallery.ARBITRARY_STYLES) * len(gallery.PHOTOS))
    assert len(list((tmp_path / "cache").glob("*.png"))) == len(gallery.PHOTOS) * (1 + len(gallery.ARBITRARY_STYLES))
    assert sum(p.stat().st_size for p in written) < 2 * 2 ** 20
