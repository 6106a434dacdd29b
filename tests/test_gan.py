"""The gan method and its training: the adversarial losses and gradient penalty, the critic's step, exact resume of
both networks, export of the generator alone, and `train fast --adv-weight`. Tiny settings: critic width 8, two
scales, 64×48 images."""

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from brushwork import api, losses
from brushwork.cli import main
from brushwork.errors import ConfigError
from brushwork.export import export_model
from brushwork.io import save_image
from brushwork.methods.adain_model import AdaINNet, save_decoder
from brushwork.methods.gan import GANTrainOptions, gan_task
from brushwork.methods.gan_model import CriticObjective, MultiScaleCritic, adversarial_term
from brushwork.train import TrainConfig, train
from brushwork.weights import read_safetensors

from .conftest import dots, scene, stripes

KINDS = list(losses.GAN_LOSSES)
REAL, FAKE = stripes(48, 64, (1.0, 0.3, 0.1), period=4).expand(2, -1, -1, -1), scene(48, 64).expand(2, -1, -1, -1)


def _linear_critic() -> MultiScaleCritic:
    """The tiny critic with every leaky ReLU's slope set to 1: an affine map, whose gradient is the same
    everywhere."""
    critic = MultiScaleCritic(width=8, scales=2, seed=1)
    for m in critic.modules():
        if isinstance(m, torch.nn.LeakyReLU):
            m.negative_slope = 1.0
    return critic


def test_the_gradient_penalty_equals_its_analytic_value_for_a_linear_critic():
    w = torch.randn(1, 3, 48, 64, generator=torch.Generator().manual_seed(0)) * 0.01
    eps = torch.tensor([0.2, 0.9]).view(2, 1, 1, 1)
    penalty = losses.gradient_penalty(lambda x: (x * w).sum((1, 2, 3)), REAL, FAKE, eps)
    assert penalty.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)
    critic = _linear_critic()
    x = torch.zeros(1, 3, 48, 64, requires_grad=True)
    grad, = torch.autograd.grad(critic.score(x).sum(), x)  # the map's one gradient, taken far from the samples
    penalty = losses.gradient_penalty(critic.score, REAL, FAKE, eps)
    assert penalty.item() == pytest.approx((grad.norm().item() - 1) ** 2, rel=1e-4)
    penalty.backward()  # the penalty trains the critic: its graph reaches the weights (not the biases, which
    weights = [p for p in critic.parameters() if p.dim() > 1]  # leave a linear map's gradient as it is)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in weights)


def test_the_adversarial_losses_reward_what_each_side_wants():
    high, low = torch.full((4, 1, 3, 3), 2.0), torch.full((4, 1, 3, 3), -2.0)
    for kind in KINDS:  # a critic that scores real high and fake low is doing well; a generator scored high too
        assert losses.critic_loss(high, low, kind) < losses.critic_loss(low, high, kind)
        assert losses.generator_loss(high, kind) < losses.generator_loss(low, kind)
    assert losses.critic_loss(high, low, "hinge").item() == 0.0
    assert losses.critic_loss(torch.ones(2), torch.zeros(2), "lsgan").item() == 0.0
    with pytest.raises(ValueError, match="unknown GAN loss"):
        losses.critic_loss(high, low, "nsgan")


@pytest.mark.parametrize("kind", KINDS)
def test_one_critic_step_lowers_the_critic_loss_on_a_fixed_batch(kind):
    critic = MultiScaleCritic(width=8, scales=2, seed=0)
    objective = CriticObjective(critic, kind, 10.0 if kind == "wgan-gp" else 0.0)
    maps = critic(REAL)
    assert [m.shape[-2:] for m in maps] == [(9, 11), (6, 7)]  # one score per patch, at two scales
    optimizer = torch.optim.Adam(critic.parameters(), 1e-4, betas=(0.0, 0.9))
    before = objective(REAL, FAKE, seed=3)
    before["total"].backward()
    optimizer.step()
    after = objective(REAL, FAKE, seed=3)  # the same batch and interpolation points
    assert after["total"].item() < before["total"].item()
    assert set(before) == {"total", "critic", "gp", "wasserstein"}


def test_the_adversarial_term_is_weighted_relative_to_the_style_term():
    critic = MultiScaleCritic(width=8, scales=2, seed=0)
    out = FAKE.clone().requires_grad_(True)
    style_term = 123.0 * (out - REAL).square().mean()
    for weight in (0.1, 0.5):
        adv, logged = adversarial_term(out, style_term, critic, "wgan-gp", weight)
        g_adv, = torch.autograd.grad(adv, out, retain_graph=True)
        g_style, = torch.autograd.grad(style_term, out, retain_graph=True)
        assert g_adv.norm().item() == pytest.approx(weight * g_style.norm().item(), rel=1e-4)
        assert logged["adv_scale"].item() > 0 and not logged["adv_scale"].requires_grad
    adv, logged = adversarial_term(out, style_term, critic, "hinge", 0.0)
    assert adv.item() == 0.0 and not adv.requires_grad  # no adversarial term: nothing reaches the critic


@pytest.mark.parametrize("kind", KINDS)
def test_no_nan_in_200_tiny_steps(kind):
    """The whole game (generator step with the relative adversarial term, then a critic step) with a tiny
    generator in place of the AdaIN decoder, at learning rates higher than any recipe's."""
    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.Conv2d(8, 3, 3, padding=1), torch.nn.Sigmoid())
    critic = MultiScaleCritic(width=8, scales=2, seed=0)
    objective = CriticObjective(critic, kind, 10.0 if kind == "wgan-gp" else 0.0)
    g_opt = torch.optim.Adam(generator.parameters(), 1e-3)
    c_opt = torch.optim.Adam(critic.parameters(), 4e-3, betas=(0.0, 0.9))
    real, content = REAL[:1], FAKE[:1]
    for step in range(200):
        out = generator(content)
        style_term = sum(torch.nn.functional.mse_loss(a, b) for a, b in zip(losses.mean_std(out),
                                                                             losses.mean_std(real)))
        adv, logged = adversarial_term(out, style_term, critic, kind, 0.5)
        total = torch.nn.functional.mse_loss(out, content) + style_term + adv
        total.backward()
        g_opt.step()
        g_opt.zero_grad()
        c_opt.zero_grad()
        critic_losses = objective(real, out.detach(), step)
        critic_losses["total"].backward()
        c_opt.step()
        c_opt.zero_grad()
        values = torch.stack([total, *logged.values(), *critic_losses.values()]).detach()
        assert torch.isfinite(values).all(), (step, values)
    assert all(torch.isfinite(p).all() for p in [*generator.parameters(), *critic.parameters()])
    assert critic_losses["wasserstein"].item() > 0  # the critic tells the painting from the generator's output


def _gan(folders, out, steps, **kw):
    cfg = TrainConfig(out=str(out), steps=steps, batch_size=2, size=32, short_side=48, workers=0, log_every=1,
                      checkpoint_every=100, preview_every=100, lr=1e-4, quiet=True, **kw)
    opts = GANTrainOptions(str(folders[0]), str(folders[1]), init="none", critic_width=8, scales=2)
    return cfg, gan_task(opts, cfg)


def _rows(run):
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_a_short_gan_run_resumes_exactly_and_exports_the_generator_alone(folders, tmp_path):
    train(*reversed(_gan(folders, tmp_path / "whole", 4)))
    train(*reversed(_gan(folders, tmp_path / "split", 2)))
    summary = train(*reversed(_gan(folders, tmp_path / "split", 4, resume=True)))
    assert summary["segment_steps"] == 2
    whole, split = _rows(tmp_path / "whole"), _rows(tmp_path / "split")
    for key in ("total", "adv", "critic_total", "gp", "wasserstein"):  # both networks and both optimizers resumed
        assert [float(r[key]) for r in split] == pytest.approx([float(r[key]) for r in whole], rel=1e-5), key
    ckpt = tmp_path / "whole" / "checkpoint"
    assert json.loads((ckpt / "state.json").read_text())["parts"] == ["model", "critic"]
    for name in ("critic.safetensors", "critic-optimizer.json", "critic-optimizer-000.safetensors"):
        assert (ckpt / name).is_file(), name
    a, b = load_file(str(ckpt / "critic.safetensors")), load_file(str(tmp_path / "split" / "checkpoint" /
                                                                      "critic.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    generator = tmp_path / "whole" / "gan.safetensors"
    tensors, meta = read_safetensors(generator)
    assert set(tensors) == set(AdaINNet().decoder.state_dict())  # the decoder, no critic
    assert meta["method"] == "gan" and meta["gan_loss"] == "wgan-gp" and meta["gp_weight"] == "10.0"
    onnx = export_model(str(generator), "onnx", tmp_path / "gan.onnx")
    import onnx as onnx_lib

    graph = onnx_lib.load(str(onnx)).graph
    exported = sum(int(torch.tensor(list(t.dims)).prod()) for t in graph.initializer)
    net = AdaINNet().for_inference()
    assert exported == sum(p.numel() for p in [*net.encoder.parameters(), *net.decoder.parameters()])
    assert {p.key: p.value for p in onnx_lib.load(str(onnx)).metadata_props}["method"] == "gan"
    content = scene(40, 56)
    reference = api.run(content, stripes(40, 40, (1, 0.2, 0.1)), method="gan", model=str(generator),
                        size=56).image
    via_onnx = api.run(content, stripes(40, 40, (1, 0.2, 0.1)), method="gan", model=str(onnx), runtime="onnx",
                       size=56).image
    assert (via_onnx - reference).abs().max() < 1e-3


def test_a_gan_checkpoint_resumes_only_as_a_gan(folders, tmp_path):
    from brushwork.methods.adain import adain_task

    train(*reversed(_gan(folders, tmp_path / "run", 1)))
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=2, batch_size=2, size=32, short_side=48, workers=0,
                      quiet=True, resume=True)
    with pytest.raises(ConfigError, match="is a gan run, not adain"):
        train(adain_task(str(folders[0]), str(folders[1]), cfg), cfg)


def test_the_generator_starts_from_the_init_decoder(folders, tmp_path, capsys):
    decoder = tmp_path / "adain.safetensors"
    save_decoder(AdaINNet(seed=5).decoder, decoder, {"method": "adain", "backbone": "vgg16-hed",
                                                     "style_weight": "2.5"}, half=True)
    cfg = TrainConfig(out=str(tmp_path / "r"), steps=1, size=32, short_side=48)
    task = gan_task(GANTrainOptions(str(folders[0]), str(folders[1]), init=str(decoder), scales=2), cfg)
    start = load_file(str(decoder))
    assert all(torch.equal(v, start[k].float()) for k, v in task.trainable.state_dict().items())
    assert task.module.style_weight == 2.5 and task.exports["gan"][1]["init"] == "adain.safetensors"
    task = gan_task(GANTrainOptions(str(folders[0]), str(folders[1]), scales=2), cfg)  # auto, nothing shipped
    assert "starts from scratch" in capsys.readouterr().err and task.module.style_weight == 10.0


def test_attention_starts_as_the_identity_on_the_init_decoder(folders, tmp_path):
    decoder = tmp_path / "adain.safetensors"
    plain = AdaINNet(seed=5).decoder
    save_decoder(plain, decoder, {"method": "adain", "backbone": "vgg16-hed"})
    cfg = TrainConfig(out=str(tmp_path / "r"), steps=1, size=32, short_side=48)
    task = gan_task(GANTrainOptions(str(folders[0]), str(folders[1]), init=str(decoder), attention=True, scales=2),
                    cfg)
    features = torch.rand(1, 512, 6, 5)
    with torch.no_grad():
        assert torch.allclose(task.trainable(features), plain(features), atol=1e-6)
    assert any(k.startswith("attention.") for k in task.trainable.state_dict())


def test_train_gan_and_stylize_with_it_on_the_command_line(folders, files, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "gan", "--content-dir", str(folders[0]), "--style-dir", str(folders[1]),
                 "--out", str(run), "--init", "none", "--gan-loss", "hinge", "--critic-width", "8", "--scales", "2",
                 "--attention", "--steps", "2", "--batch-size", "1", "--size", "32", "--short-side", "48",
                 "--workers", "0", "--log-every", "1", "--quiet"]) == 0
    assert "step 2/2 (finished)" in capsys.readouterr().out
    tensors, meta = read_safetensors(run / "gan.safetensors")
    assert meta["gp_weight"] == "0.0" and meta["attention"] == "1"  # no penalty with hinge
    assert any(k.startswith("attention.") for k in tensors) and tensors["attention.gamma"].abs().item() > 0
    content, style = scene(40, 56), stripes(40, 40, (1, 0.2, 0.1))
    reference = api.run(content, style, method="gan", model=str(run / "gan.safetensors"), size=56).image
    onnx = export_model(str(run / "gan.safetensors"), "onnx", tmp_path / "attentive.onnx")
    via_onnx = api.run(content, style, method="gan", model=str(onnx), runtime="onnx", size=56).image
    assert (via_onnx - reference).abs().max() < 1e-3
    out = tmp_path / "o.png"
    assert main(["stylize", str(files["content"]), str(files["style_a"]), str(files["style_b"]), "-o", str(out),
                 "--method", "gan", "--model", str(run / "gan.safetensors"), "--size", "64", "--alpha", "0.8",
                 "--mask", str(files["mask_left"]), str(files["mask_right"]), "--quiet"]) == 0
    sidecar = json.loads((tmp_path / "o.png.json").read_text())
    assert sidecar["method"] == "gan" and sidecar["config"]["alpha"] == 0.8
    assert main(["models"]) == 0
    assert "gan: gan-vgg16-hed" in capsys.readouterr().out


def test_a_fast_network_trains_against_the_critic(folders, tmp_path, capsys):
    style = tmp_path / "style.png"
    save_image(stripes(60, 80, (1.0, 0.3, 0.1), period=4), style)
    run = tmp_path / "fast"
    base = ["train", "fast", "--content-dir", str(folders[0]), "--arch", "mobile", "--steps", "2",
            "--batch-size", "1", "--size", "32", "--short-side", "48", "--workers", "0", "--log-every", "1",
            "--quiet", "--adv-weight", "0.2", "--critic-width", "8", "--scales", "2", "--style-size", "48"]
    assert main([*base, "--style", str(style), "--out", str(run)]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"content", "style", "tv", "adv", "adv_scale", "critic", "gp", "wasserstein"} <= set(header)
    tensors, meta = read_safetensors(run / "fast.safetensors")
    assert meta["adv_weight"] == "0.2" and meta["gan_loss"] == "wgan-gp" and not any("nets" in k for k in tensors)
    assert (run / "checkpoint" / "critic.safetensors").is_file()
    capsys.readouterr()
    other = tmp_path / "other.png"
    save_image(dots(60, 80, (0.1, 0.2, 1.0)), other)
    assert main([*base, "--style", str(style), str(other), "--out", str(tmp_path / "two")]) == 2
    assert "trains one style at a time" in capsys.readouterr().err
