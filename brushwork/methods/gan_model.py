"""GAN building blocks: a multi-scale PatchGAN critic (pix2pixHD, Wang et al. 2018) without normalization layers,
so that WGAN-GP's gradient penalty stays valid; the critic's objective; and the adversarial term a generator adds
to its content and style losses, weighted relative to the style term.

The adversarial weight is relative (as VQGAN's adaptive weight, Esser et al. 2021): at every step the adversarial
loss is scaled so that its gradient on the generated image is `adv_weight` times the style term's gradient there.
So `--adv-weight 0.1` means the same thing whatever the loss network's units, the critic's scale or the loss kind,
and the critic can never drown out the style objective, however sharp it becomes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from .adain_model import AdaINNet


def _patch_net(width: int) -> nn.Sequential:
    """pix2pixHD's n_layers=3 PatchGAN: 4×4 convolutions, three of stride 2, leaky ReLU, no normalization; one
    score per overlapping patch (70×70 pixels at the first scale)."""
    chans = [3, width, 2 * width, 4 * width, 8 * width]
    layers: list[nn.Module] = []
    for i in range(4):
        layers += [nn.Conv2d(chans[i], chans[i + 1], 4, stride=2 if i < 3 else 1, padding=2),
                   nn.LeakyReLU(0.2)]
    layers.append(nn.Conv2d(chans[-1], 1, 4, padding=2))
    return nn.Sequential(*layers)


class MultiScaleCritic(nn.Module):
    """One PatchGAN per scale of an image pyramid (each level average-pooled to half the previous one): the fine
    scales judge brush strokes, the coarse ones the layout of colour. RGB in [0,1] in; `forward` returns each
    scale's map of patch scores, `score` one number per image (the sum over scales of the mean patch score)."""

    def __init__(self, width: int = 64, scales: int = 3, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the critic's initial weights are part of what a training seed reproduces
            self.nets = nn.ModuleList(_patch_net(width) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x * 2 - 1
        maps = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            maps.append(net(x))
        return maps

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return sum(m.flatten(1).mean(1) for m in self(x))


class CriticObjective(nn.Module):
    """forward(real, fake, seed) → what the critic minimizes ("total": the loss summed over scales, plus the
    gradient penalty times `gp_weight`), the loss alone ("critic"), the penalty ("gp") and the Wasserstein
    estimate E[D(real)] − E[D(fake)] ("wasserstein"). `seed` draws the penalty's interpolation points."""

    def __init__(self, critic: MultiScaleCritic, kind: str = "wgan-gp", gp_weight: float = 10.0):
        super().__init__()
        self.critic, self.kind, self.gp_weight = critic, kind, gp_weight

    def forward(self, real: torch.Tensor, fake: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
        fake = fake.detach()
        real_maps, fake_maps = self.critic(real), self.critic(fake)
        loss = sum(losses.critic_loss(r, f, self.kind) for r, f in zip(real_maps, fake_maps))
        gap = sum(r.mean() - f.mean() for r, f in zip(real_maps, fake_maps))
        gp = torch.zeros((), device=real.device)
        if self.gp_weight:
            g = torch.Generator().manual_seed(seed)
            eps = torch.rand(len(real), 1, 1, 1, generator=g).to(device=real.device, dtype=real.dtype)
            gp = losses.gradient_penalty(self.critic.score, real, fake, eps)
        total = loss + self.gp_weight * gp
        return {"total": total, "critic": loss.detach(), "gp": gp.detach(), "wasserstein": gap.detach()}


def adversarial_term(output: torch.Tensor, style_term: torch.Tensor, critic: MultiScaleCritic, kind: str,
                     weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The generator's adversarial loss, scaled so that its gradient on `output` is `weight` times that of
    `style_term` (both as norms; the scale is a constant of the step, not trained through), and what to log:
    the loss ("adv") and the scale ("adv_scale")."""
    if weight == 0:
        zero = torch.zeros((), device=output.device)
        return zero, {"adv": zero, "adv_scale": zero}
    adv = sum(losses.generator_loss(m, kind) for m in critic(output))
    g_style, = torch.autograd.grad(style_term, output, retain_graph=True)
    g_adv, = torch.autograd.grad(adv, output, retain_graph=True)
    scale = weight * g_style.float().norm() / g_adv.float().norm().clamp_min(1e-12)
    return scale.detach() * adv, {"adv": adv.detach(), "adv_scale": scale.detach()}


class GANTraining(nn.Module):
    """forward(content, style) → the AdaIN paper's losses plus the adversarial term, for the generator's step.
    The critic is held in a tuple, not as a submodule: it has its own optimizer and checkpoint (loop.Adversary)."""

    def __init__(self, net: AdaINNet, style_weight: float, critic: MultiScaleCritic, kind: str, adv_weight: float):
        super().__init__()
        self.net, self.style_weight, self.kind, self.adv_weight = net, style_weight, kind, adv_weight
        self.held = (critic,)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        out, content_loss, style_loss = self.net.objective(content, style)
        style_term = self.style_weight * style_loss
        adv, logged = adversarial_term(out, style_term, self.held[0], self.kind, self.adv_weight)
        return {"total": content_loss + style_term + adv, "content": content_loss.detach(),
                "style": style_loss.detach(), **logged, "output": out}
