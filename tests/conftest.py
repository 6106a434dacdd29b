"""Small synthetic images, so the suite is fast and does not depend on shared data."""

from __future__ import annotations

import math

import pytest
import torch

from brushwork.io import save_image


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
