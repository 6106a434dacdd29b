"""Small synthetic images, so the suite is fast and does not depend on shared data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file

from brushwork.io import save_image
from brushwork.methods import fast_model
from brushwork.methods.adain_model import AdaINNet, save_decoder
from brushwork.methods.transformer_model import StyTr2, TransformerConfig


def stripes(h: int, w: int, rgb: tuple[float, float, float], period: int = 6) -> torch.Tensor:
    """Diagonal stripes of one colour on black: a strong, simple texture."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    on = (((x + y) // (period // 2)) % 2).float()
    return (on[None, None] * torch.tensor(rgb).view(1, 3, 1, 1)).clamp(0, 1)


def dots(h: int, w: int, rgb: tuple[float, float, float], period: int = 8) -> torch.Tensor:
    """Round dots of one colour on white."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    d = ((x % period - period / 2) ** 2 + (y % period - period / 2) ** 2).float().sqrt()
    on = (d < period / 3).float()[None, None]
    return on * torch.tensor(rgb).view(1, 3, 1, 1) + (1 - on)


def scene(h: int = 48, w: int = 64) -> torch.Tensor:
    """A smooth 'photo': a sky gradient, a ground colour and a bright disc."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.3 + 0.4 * x, 0.5 + 0.3 * y, 0.9 - 0.5 * y])
    ground = (y > 0.6).float()
    img = img * (1 - ground) + ground * torch.tensor([0.35, 0.55, 0.2]).view(3, 1, 1)
    disc = (((x - 0.3) ** 2 + (y - 0.3) ** 2).sqrt() < 0.12).float()
    img = img * (1 - disc) + disc * torch.tensor([1.0, 0.9, 0.3]).view(3, 1, 1)
    return img[None].clamp(0, 1)


@pytest.fixture
def content() -> torch.Tensor:
    return scene()


@pytest.fixture
def red_stripes() -> torch.Tensor:
    return stripes(64, 64, (1.0, 0.1, 0.1))


@pytest.fixture
def blue_dots() -> torch.Tensor:
    return dots(64, 64, (0.1, 0.2, 1.0))


@pytest.fixture
def files(tmp_path, content, red_stripes, blue_dots):
    """The synthetic images written as PNG files, plus left/right masks for the content."""
    paths = {"content": tmp_path / "content.png", "style_a": tmp_path / "a.png", "style_b": tmp_path / "b.png",
             "mask_left": tmp_path / "left.png", "mask_right": tmp_path / "right.png"}
    save_image(content, paths["content"])
    save_image(red_stripes, paths["style_a"])
    save_image(blue_dots, paths["style_b"])
    h, w = content.shape[-2:]
    left = torch.zeros(1, 3, h, w)
    left[..., : w // 2] = 1
    save_image(left, paths["mask_left"])
    save_image(1 - left, paths["mask_right"])
    return paths


def rel_close(a: float, b: float, tol: float) -> bool:
    return math.isclose(a, b, rel_tol=tol)


def random_fast_net(seed: int = 0) -> torch.nn.Module:
    """A fast network with random affine instance-norm parameters too, so that the statistics matter."""
    torch.manual_seed(seed)
    net = fast_model.build_net("classic")
    for m in net.modules():
        if isinstance(m, fast_model.InstanceNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return net.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Untrained adain decoder and fast network files: what tiling and video must get right whatever the
    weights."""
    root = tmp_path_factory.mktemp("models")
    decoder = root / "decoder.safetensors"
    save_decoder(AdaINNet(seed=1).decoder, decoder, {"backbone": "vgg16-hed", "method": "adain"})
    fast = root / "fast.safetensors"
    save_file({k: v.contiguous() for k, v in random_fast_net().state_dict().items()}, str(fast),
              metadata={"arch": "classic", "width": "32", "method": "fast"})
    gan = root / "gan.safetensors"
    save_decoder(attentive_decoder(), gan, {"backbone": "vgg16-hed", "method": "gan", "attention": "1"})
    transformer = root / "transformer.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_transformer().state_dict().items()}, str(transformer),
              metadata={"method": "transformer", "backbone": "vgg16-hed", **TINY_TRANSFORMER.to_metadata()})
    return {"adain": decoder, "fast": fast, "gan": gan, "transformer": transformer}


TINY_TRANSFORMER = TransformerConfig(dim=32, heads=4, content_layers=1, style_layers=1, decoder_layers=1, ffn=64)


def tiny_transformer(seed: int = 0) -> torch.nn.Module:
    """An untrained d-32 transformer whose output spreads around mid-grey, so that it neither clamps nor sits
    flat: its pictures change with the content, as a trained one's do."""
    torch.manual_seed(seed)
    net = StyTr2(TINY_TRANSFORMER)
    with torch.no_grad():
        last = [m for m in net.cnn.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.weight *= 8
        last.bias += 0.5
    return net.eval()


def attentive_decoder(seed: int = 1) -> torch.nn.Module:
    """A decoder whose self-attention is switched on (γ = 0.5), so that what it attends to matters."""
    decoder = AdaINNet(seed=seed, attention=True).decoder
    with torch.no_grad():
        decoder.attention.gamma.fill_(0.5)
    return decoder


def textured(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """The scene with blotchy texture at several scales, so optical flow has something to hold on to."""
    g = torch.Generator().manual_seed(seed)
    noise = sum(torch.nn.functional.interpolate(torch.rand(1, 3, h // k, w // k, generator=g), size=(h, w),
                                                mode="bilinear", align_corners=False) / k for k in (2, 4, 8))
    return (0.6 * torch.nn.functional.interpolate(scene(48, 64), size=(h, w), mode="bilinear",
                                                  align_corners=False) + 0.4 * noise / 0.875).clamp(0, 1)


@pytest.fixture
def folders(tmp_path):
    """Two small folders to train on: photos (content) and paintings (style)."""
    content, style = tmp_path / "content", tmp_path / "style"
    content.mkdir()
    style.mkdir()
    save_image(scene(72, 96), content / "a.png")
    save_image(scene(80, 80).flip(-1), content / "b.png")
    save_image(stripes(80, 96, (1.0, 0.3, 0.1), period=4), style / "s.png")
    save_image(dots(90, 80, (0.1, 0.2, 1.0)), style / "d.png")
    return content, style


# The head of a script that measures a run's peak resident memory in a fresh process: reset_peak() once the model is
# loaded (the peak so far, from imports and loading, is not the run's), peak() after the run.
PEAK_PROBE = textwrap.dedent("""
    def _status(key):
        line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
        return int(line.split()[1]) * 1024

    def reset_peak():
        global _base
        open("/proc/self/clear_refs", "w").write("5")
        _base = _status("VmRSS")

    def peak():
        return _status("VmHWM") - _base
""")


def run_measuring(script: str, *args) -> dict:
    """Run PEAK_PROBE + script in a fresh Python with args, and return the JSON object it prints last."""
    out = subprocess.run([sys.executable, "-c", PEAK_PROBE + script, *map(str, args)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
