import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from brushwork import losses, metrics
from brushwork.backbones import create_backbone
from brushwork.color import rgb_to_lab
from brushwork.errors import BackboneError, SizeError

from .conftest import dots, scene, stripes

BACKBONES = ["vgg16-hed", "efficientnet-lite0"]


def textured(h: int = 72, w: int = 96) -> torch.Tensor:
    """A 'photo' with edges, smooth regions and fine texture, so every metric has something to see."""
    return (0.75 * scene(h, w) + 0.25 * dots(h, w, (0.2, 0.1, 0.6), period=6)).clamp(0, 1)


def painting(h: int = 64, w: int = 64) -> torch.Tensor:
    return (0.6 * stripes(h, w, (1.0, 0.5, 0.1)) + 0.4 * dots(h, w, (0.1, 0.2, 1.0))).clamp(0, 1)


def noisy(img: torch.Tensor, level: float) -> torch.Tensor:
    return (img + level * torch.randn(img.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)


def blurred(img: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = math.ceil(3 * sigma)
    g = torch.exp(-torch.arange(-radius, radius + 1.0) ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).repeat(3, 1, 1, 1)
    padded = F.pad(img, (radius, radius, radius, radius), mode="reflect")
    return F.conv2d(F.conv2d(padded, g.view(3, 1, 1, -1), groups=3), g.view(3, 1, -1, 1), groups=3)


def feature_metrics(backbone):
    return {"content": lambda a, b: metrics.content_distance(a, b, backbone),
            "lpips_unweighted": lambda a, b: metrics.lpips_unweighted(a, b, backbone),
            "gram": lambda a, b: metrics.gram_distance(a, b, backbone),
            "mean_std": lambda a, b: metrics.mean_std_distance(a, b, backbone),
            "wasserstein": lambda a, b: metrics.wasserstein_distance(a, b, backbone)}


def distances(backbone) -> dict:
    """Every metric as a distance: 0 for identical inputs, larger for more different ones."""
    return {**feature_metrics(backbone), "color": metrics.color_distance,
            "1-ssim": lambda a, b: 1 - metrics.ssim(a, b), "1-ms_ssim": lambda a, b: 1 - metrics.ms_ssim(a, b)}


@pytest.mark.parametrize("name", BACKBONES)
def test_identical_inputs_score_their_minimum(name):
    x = textured()
    for label, fn in distances(create_backbone(name)).items():
        assert float(fn(x, x)[0]) == pytest.approx(0, abs=1e-4), label


@pytest.mark.parametrize("name", BACKBONES)
def test_distances_are_symmetric(name):
    x, y = textured(), noisy(blurred(textured(), 1.0), 0.05)
    for label, fn in distances(create_backbone(name)).items():
        assert float(fn(x, y)[0]) == pytest.approx(float(fn(y, x)[0]), rel=1e-3, abs=1e-6), label


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("corrupt,levels", [(noisy, (0.03, 0.08, 0.16, 0.3)), (blurred, (0.6, 1.2, 2.4, 4.0))])
def test_distances_grow_as_one_input_is_corrupted(name, corrupt, levels):
    x = textured()
    for label, fn in distances(create_backbone(name)).items():
        values = [float(fn(corrupt(x, level), x)[0]) for level in levels]
        assert all(a < b for a, b in zip(values, values[1:])), (label, values)


def reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al.'s SSIM written out window by window: explicit weighted sums, no convolutions."""
    coords = np.arange(11) - 5
    g = np.exp(-coords ** 2 / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_an_independent_computation():
    rng = np.random.default_rng(3)
    a = rng.random((20, 24))
    b = np.clip(0.7 * a + 0.3 * rng.random((20, 24)), 0, 1)
    to_rgb = lambda g: torch.tensor(g, dtype=torch.float32)[None, None].expand(1, 3, -1, -1)  # grey: Y = value
    assert float(metrics.ssim(to_rgb(a), to_rgb(b))[0]) == pytest.approx(reference_ssim(a, b), abs=1e-5)
    # flat images: only the luminance term is left, (2μaμb + C1) / (μa² + μb² + C1)
    flat_a, flat_b = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.6)
    expected = (2 * 0.2 * 0.6 + 1e-4) / (0.2 ** 2 + 0.6 ** 2 + 1e-4)
    assert float(metrics.ssim(flat_a, flat_b)[0]) == pytest.approx(expected, rel=1e-5)


def test_ms_ssim_scales():
    x, y = textured(), noisy(textured(), 0.1)
    assert float(metrics.ms_ssim(x, y, scales=1)[0]) == pytest.approx(float(metrics.ssim(x, y)[0]), rel=1e-5)
    auto = float(metrics.ms_ssim(x, y)[0])
    assert auto == pytest.approx(float(metrics.ms_ssim(x, y, scales=3)[0]))  # 72 px: 72, 36, 18 hold a window
    with pytest.raises(SizeError, match="at least 88 px"):
        metrics.ms_ssim(x, y, scales=4)
    with pytest.raises(SizeError):
        metrics.ssim(x[..., :8, :8], y[..., :8, :8])
    with pytest.raises(SizeError, match="same size"):
        metrics.ssim(x, y[..., :64, :])


def test_batched_metrics_match_one_by_one():
    backbone = create_backbone("vgg16-hed")
    batch = torch.cat([textured(), noisy(textured(), 0.1), blurred(textured(), 2.0)])
    style = painting()
    together = metrics.gram_distance(batch, style, backbone)
    alone = torch.cat([metrics.gram_distance(img[None], style, backbone) for img in batch])
    assert torch.allclose(together, alone, rtol=1e-4)
    assert metrics.ssim(batch, textured().expand(3, -1, -1, -1)).shape == (3,)


def test_style_distances_rank_a_closer_texture_first():
    backbone = create_backbone("vgg16-hed")
    style = painting()
    near, far = painting(72, 96), textured()
    for label, fn in feature_metrics(backbone).items():
        if label in ("gram", "mean_std", "wasserstein"):
            assert float(fn(near, style)[0]) < float(fn(far, style)[0]) / 3, label


def test_lab_and_color_distance_units():
    lab = rgb_to_lab(torch.tensor([[1.0, 1, 1], [1, 0, 0], [0, 0, 0]]).view(3, 3, 1, 1)).flatten(1)
    assert torch.allclose(lab, torch.tensor([[100.0, 0, 0], [53.24, 80.09, 67.20], [0, 0, 0]]), atol=0.02)
    a, b = torch.full((1, 3, 16, 16), 0.3), torch.full((1, 3, 20, 12), 0.3)
    b[:, 0] = 0.5
    delta = float((rgb_to_lab(a[..., :1, :1]) - rgb_to_lab(b[..., :1, :1])).norm())
    assert float(metrics.color_distance(a, b)[0]) == pytest.approx(delta, rel=0.15)
    shuffled = textured().flatten(2)[..., torch.randperm(72 * 96)].view(1, 3, 72, 96)
    assert float(metrics.color_distance(textured(), shuffled)[0]) < 1e-3  # where colours are does not matter


def test_gaussian_w2_and_frechet_closed_forms():
    # one dimension: (μa − μb)² + (σa − σb)²
    w2 = losses.gaussian_w2(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([3.0]), torch.tensor([[9.0]]))
    assert float(w2) == pytest.approx(4 + 1)
    feats = torch.randn(20, 8, generator=torch.Generator().manual_seed(1)).double()
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0, abs=1e-8)
    assert metrics.frechet_distance(feats, feats + 0.5) == pytest.approx(8 * 0.25, rel=1e-6)
    assert metrics.frechet_distance(feats[:10], feats[10:]) > 0.1
    assert metrics.art_fid(0.5, 3.0) == pytest.approx(6.0)


@pytest.mark.parametrize("name", BACKBONES)
def test_frechet_of_a_real_set_with_itself_is_zero(name):
    backbone = create_backbone(name)
    images = [textured(), painting(), blurred(textured(64, 80), 1.5)]
    feats = metrics.pooled_features(images, backbone)
    assert feats.shape == (3, {"vgg16-hed": 512, "efficientnet-lite0": 1280}[name])
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0, abs=1e-6 * float(feats.pow(2).sum()))
    other = metrics.pooled_features([noisy(img, 0.2) for img in images], backbone)
    assert metrics.frechet_distance(feats, other) > 1e-3 * float(feats.pow(2).sum())


def test_pair_metrics_agree_with_the_single_metrics():
    backbone = create_backbone("efficientnet-lite0")
    out, content, style = noisy(textured(), 0.1), textured(), painting()
    values = metrics.pair_metrics(out, content, style, backbone)
    assert set(values) == {*metrics.PAIR_METRICS, "pooled"}
    assert float(values["gram"][0]) == pytest.approx(float(metrics.gram_distance(out, style, backbone)[0]), rel=1e-4)
    assert float(values["lpips_unweighted"][0]) == pytest.approx(
        float(metrics.lpips_unweighted(out, content, backbone)[0]), rel=1e-4)
    assert float(values["ssim"][0]) == pytest.approx(float(metrics.ssim(out, content)[0]))
    with pytest.raises(SizeError, match="at least 64 px"):
        metrics.pair_metrics(out[..., :48, :], content[..., :48, :], style, backbone)


def test_eval_backbone_is_never_the_one_that_made_the_images():
    assert metrics.eval_backbone_name(["vgg16-hed"]) == "efficientnet-lite0"
    assert metrics.eval_backbone_name(["efficientnet-lite0"]) == "vgg16-hed"
    assert metrics.eval_backbone_name([]) == "vgg16-hed"
    with pytest.raises(BackboneError, match="--backbone"):
        metrics.eval_backbone_name(["vgg16-hed+efficientnet-lite0"], ["vgg16-hed", "efficientnet-lite0"])
