import torch

from brushwork import losses
from brushwork.backbones import create_backbone

from .conftest import dots, rel_close, stripes


def test_gram_normalization_makes_style_loss_size_independent():
    """The same texture at two image sizes has (nearly) the same Gram matrices, so the style loss against a
    third image agrees; an unnormalized Gram would differ by the 4× ratio of positions."""
    vgg = create_backbone("vgg16-hed")
    small, large = stripes(64, 64, (0.9, 0.3, 0.1), period=8), stripes(128, 128, (0.9, 0.3, 0.1), period=8)
    other = dots(96, 96, (0.1, 0.3, 0.9))
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    fs, fl, fo = vgg(small, layers), vgg(large, layers), vgg(other, layers)
    for name in layers:
        target = losses.gram(fo[name])
        a, b = losses.gram_loss(fs[name], target), losses.gram_loss(fl[name], target)
        assert rel_close(float(a), float(b), 0.1), (name, float(a), float(b))
        assert float(a) > 0.1


def test_losses_are_zero_for_identical_inputs_and_scale_free():
    torch.manual_seed(0)
    f = torch.rand(2, 8, 5, 7)
    assert float(losses.content_loss(f, f)) == 0.0
    assert float(losses.gram_loss(f, losses.gram(f))) < 1e-12
    g = torch.rand(2, 8, 5, 7)
    base = float(losses.content_loss(f, g))
    assert rel_close(float(losses.content_loss(10 * f, 10 * g)), base, 1e-5)
    assert rel_close(float(losses.gram_loss(10 * f, losses.gram(10 * g))), float(losses.gram_loss(f, losses.gram(g))),
                     1e-4)
    for kind in losses.STYLE_LOSSES:
        assert float(losses.style_loss(f, losses.style_target(f, kind), kind)) < 1e-4
        assert float(losses.style_loss(f, losses.style_target(g + 1, kind), kind)) > 0.01


def test_wasserstein_loss_has_finite_gradients_and_matches_gaussians():
    torch.manual_seed(0)
    target = losses.style_target(torch.randn(1, 6, 16, 16) * 2 + 1, "wasserstein")
    f = torch.randn(1, 6, 16, 16, requires_grad=True)
    loss = losses.wasserstein2_loss(f, target)
    loss.backward()
    assert torch.isfinite(f.grad).all() and loss.item() > 0.1


def test_masked_statistics_only_see_their_region():
    f = torch.zeros(1, 2, 4, 4)
    f[..., :2] = 1.0
    left = torch.zeros(1, 1, 4, 4)
    left[..., :2] = 1.0
    mean, _ = losses.mean_std(f, left)
    assert torch.allclose(mean, torch.ones(1, 2))
    assert torch.allclose(losses.gram(f, 1 - left), torch.zeros(1, 2, 2))


def test_blend_of_a_style_with_itself_is_the_style():
    torch.manual_seed(0)
    f = torch.rand(1, 4, 6, 6)
    for kind in losses.STYLE_LOSSES:
        t = losses.style_target(f, kind)
        b = losses.blend_targets([t, t], [0.3, 0.7], kind)
        assert float(losses.style_loss(f, b, kind)) < 1e-4


def test_tv_falls_when_an_image_is_smoothed():
    torch.manual_seed(0)
    noisy = torch.rand(1, 3, 32, 32)
    smooth = torch.nn.functional.avg_pool2d(noisy, 3, 1, 1)
    assert float(losses.tv_loss(smooth)) < float(losses.tv_loss(noisy))


def test_gram_backward_matches_autograd_in_both_memory_layouts():
    """The hand-written Gram backward (one product, in the features' layout) is the exact gradient, and a
    channels-last feature map gets a channels-last gradient (no copy where it meets the network's gradient)."""
    for layout in (torch.contiguous_format, torch.channels_last):
        feat = torch.randn(2, 6, 5, 7, dtype=torch.double).contiguous(memory_format=layout).requires_grad_(True)
        assert torch.autograd.gradcheck(losses.gram, (feat,))
        target = torch.randn(2, 6, 6, dtype=torch.double)
        losses.gram_loss(feat, target).backward()
        reference = feat.detach().clone().requires_grad_(True)
        f = reference.reshape(2, 6, -1)
        g = f @ f.transpose(1, 2) / f.shape[-1]
        ((g - target).pow(2).flatten(1).sum(1) / target.pow(2).flatten(1).sum(1)).mean().backward()
        torch.testing.assert_close(feat.grad, reference.grad)
        assert feat.grad.is_contiguous(memory_format=layout)


def test_wasserstein_on_fewer_positions_than_channels_matches_the_full_covariance_form():
    """A small image's deep layers have fewer positions than channels; the loss then takes its eigenvalues from the
    P×P factor form, which must give the C×C form's value and gradient, masked or not."""
    torch.manual_seed(1)
    target = losses.style_target(torch.randn(1, 32, 8, 8) + 0.5, "wasserstein")
    mask = torch.zeros(1, 1, 4, 5)
    mask[..., :3] = 1.0
    for weight in (None, mask):
        values, grads = [], []
        for factored in (True, False):
            f = torch.randn(1, 32, 4, 5, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
            loss = losses.wasserstein2_loss(f, target, weight, factored=factored)
            loss.backward()
            values.append(loss.item())
            grads.append(f.grad)
        # the C×C form adds √eps for each of its C − P zero eigenvalues: a constant, 3e-4 of the value here
        assert abs(values[0] - values[1]) < 1e-3 * values[1]
        assert ((grads[0] - grads[1]).norm() / grads[1].norm()) < 1e-3


def test_style_losses_from_moments_equal_the_direct_ones_and_moments_add_over_parts():
    """A picture's moments are the sum of its parts', and every style loss scored from them is the direct loss:
    what lets the optimize method score the whole picture's style while it works on one tile."""
    torch.manual_seed(0)
    feat = torch.rand(1, 16, 12, 10) * 2
    weight = torch.rand(1, 1, 12, 10)
    for kind in losses.STYLE_LOSSES:
        target = losses.style_target(torch.rand(1, 16, 20, 20) * 2, kind)
        for w in (None, weight):
            direct = losses.style_loss(feat, target, kind, w)
            parts = [losses.moments(feat[..., rows, :], kind, None if w is None else w[..., rows, :])
                     for rows in (slice(0, 5), slice(5, 12))]
            split = losses.moments_style_loss(parts[0] + parts[1], target, kind)
            assert rel_close(split.item(), direct.item(), 1e-4), (kind, w is None)
            assert rel_close(losses.moments_style_loss(losses.moments(feat, kind, w), target, kind).item(),
                             direct.item(), 1e-4)
    # and the gradient reaches the features of each part
    part = feat[..., :5, :].clone().requires_grad_(True)
    rest = losses.moments(feat[..., 5:, :], "wasserstein")
    target = losses.style_target(torch.rand(1, 16, 20, 20) * 2, "wasserstein")
    losses.moments_style_loss(losses.moments(part, "wasserstein") + rest, target, "wasserstein").backward()
    assert torch.isfinite(part.grad).all() and part.grad.abs().sum() > 0
