"""The `gan` method: AdaIN's encoder and decoder (the generator) fine-tuned against a multi-scale PatchGAN critic
that has seen real paintings, so that textures look painted rather than averaged. Inference is adain's, with the
same controls (alpha, blends, masks, colour, tiling, video); the shipped file holds the generator's decoder only,
and export writes the generator only. `brushwork train gan` starts from an AdaIN decoder (`--init`) and adds the
adversarial term to the paper's content and style losses; the critic trains beside it in the shared loop."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, WeightsError
from ..lazy import lazy
from ..options import option
from . import adain
from .base import Callback, MethodSpec, Models, Result, Temporal, Training, register_method

if TYPE_CHECKING:
    import torch

    from ..train.loop import TrainConfig, TrainTask

loop = lazy("brushwork.train.loop")
losses = lazy("brushwork.losses")
adain_model = lazy("brushwork.methods.adain_model")
model_lib = lazy("brushwork.methods.gan_model")
weights_io = lazy("brushwork.weights")

PRETRAINED = {"gan-vgg16-hed": adain.MODELS_DIR / "gan-vgg16-hed.safetensors"}
DEFAULT_MODEL = "gan-vgg16-hed"
FORMAT = "brushwork-gan-generator/1"
MIN_CRITIC_SIDE = 16  # px: the coarsest pyramid level the critic judges (its patch net's three halvings: 2×2)


@dataclass
class GANOptions(adain.AdaINOptions):
    """Every knob of the gan method: adain's, with a generator for the model."""

    model: str = option(DEFAULT_MODEL, "a generator: a shipped name or a file from `brushwork train gan`")


def shipped_models() -> dict[str, Path]:
    """The generators this version names; a file may be absent when it is not shipped yet."""
    return dict(PRETRAINED)


def resolve_model(model: str) -> Path:
    """A shipped generator's file by name, or a path to one trained with `brushwork train gan`."""
    return adain.resolve_named(model, PRETRAINED, "gan", "generator")


def run(content: torch.Tensor, styles: list[torch.Tensor], opts: GANOptions,
        masks: list[torch.Tensor] | None = None, callback: Callback | None = None,
        temporal: Temporal | None = None) -> Result:
    """Stylize `content` (1×3×H×W in [0,1]) with a trained generator, exactly as adain does with its decoder."""
    adain.validate(opts)
    return adain.stylize_with(SPEC, resolve_model(opts.model), content, styles, opts, masks, temporal)


@dataclass
class GANTrainOptions:
    """`brushwork train gan`'s own options (the loop's are TrainConfig)."""

    content_dir: str = option(help="photos, read recursively")
    style_dir: str = option(help="paintings, read recursively: the critic's real samples")
    init: str = option("auto", "the decoder to start from: an adain (or gan) model name or file; auto = the "
                               "shipped adain decoder of --backbone when it ships; none = from scratch")
    backbone: str = option("vgg16-hed", "the frozen encoder")
    weights: str | None = option(None, "weights file for the encoder")
    style_weight: float | None = option(None, "style loss weight (default: the --init decoder's, else 10)")
    gan_loss: str = option("wgan-gp", "wgan-gp | hinge | lsgan")
    adv_weight: float = option(0.1, "the adversarial term's gradient on the output, relative to the style "
                                    "term's (0 = no adversarial term)")
    critic_lr: float = option(4e-4, "the critic's Adam learning rate (four times the generator's: TTUR)")
    critic_steps: int = option(1, "critic updates per generator step")
    critic_width: int = option(64, "channels of the critic's first layer")
    scales: int = option(3, "image-pyramid scales the critic judges")
    gp_weight: float | None = option(None, "gradient penalty weight (default: 10 with wgan-gp, else 0)")
    attention: bool = option(False, "a self-attention block before the decoder (starts as the identity)")


@dataclass
class CriticSettings:
    """How a network trains against the multi-scale critic: `train gan`'s settings, and `train fast --adv-weight`'s,
    whose options carry the same names."""

    adv_weight: float = 0.1
    gan_loss: str = "wgan-gp"
    critic_lr: float = 4e-4
    critic_steps: int = 1
    critic_width: int = 64
    scales: int = 3
    gp_weight: float | None = None

    @classmethod
    def of(cls, opts: object) -> "CriticSettings":
        """The settings of an options dataclass that has these fields."""
        return cls(**{f.name: getattr(opts, f.name) for f in fields(cls)})

    @property
    def penalty(self) -> float:
        """The gradient penalty's weight: as given, else WGAN-GP's λ = 10 for wgan-gp and none for the others."""
        if self.gp_weight is not None:
            return self.gp_weight
        return 10.0 if self.gan_loss == "wgan-gp" else 0.0

    def check(self, crop: int) -> None:
        """Reject impossible settings, and a pyramid whose coarsest level of a `crop` px crop is below
        MIN_CRITIC_SIDE: average pooling keeps a 1 px image at 1 px, so such levels judge nothing."""
        coarsest = math.ceil(crop / 2 ** max(self.scales - 1, 0))
        most = 1 + max(int(math.log2(crop / MIN_CRITIC_SIDE)), 0)
        checks = [(self.gan_loss in losses.GAN_LOSSES, f"--gan-loss must be one of {', '.join(losses.GAN_LOSSES)}"),
                  (self.adv_weight >= 0, "--adv-weight must be >= 0"),
                  (self.critic_lr > 0, "--critic-lr must be positive"),
                  (self.critic_steps >= 1, "--critic-steps must be at least 1"),
                  (self.critic_width >= 1 and self.scales >= 1, "--critic-width and --scales must be at least 1"),
                  (self.gp_weight is None or self.gp_weight >= 0, "--gp-weight must be >= 0"),
                  (coarsest >= MIN_CRITIC_SIDE, f"--scales {self.scales} halves a --size {crop} crop to {coarsest} px "
                                                f"at the coarsest, below the critic's {MIN_CRITIC_SIDE}: use at most "
                                                f"{most} or a larger --size")]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def build(self, seed: int) -> loop.Adversary:
        """A fresh critic and its objective, trained on the batch's "style" entry (paintings)."""
        critic = model_lib.MultiScaleCritic(self.critic_width, self.scales, seed)
        objective = model_lib.CriticObjective(critic, self.gan_loss, self.penalty)
        return loop.Adversary(objective, critic, "style", self.critic_lr, (0.0, 0.9), self.critic_steps)

    def metadata(self) -> dict[str, str]:
        """How a network was trained against its critic, for its model file."""
        return {"gan_loss": self.gan_loss, "adv_weight": str(self.adv_weight), "critic_width": str(self.critic_width),
                "scales": str(self.scales), "gp_weight": str(self.penalty)}


def initial_decoder(init: str, backbone: str) -> tuple[Path | None, dict, dict[str, str]]:
    """The decoder file --init names with its tensors and metadata, or (None, {}, {}) to start from scratch; `auto`
    takes the shipped AdaIN decoder of the backbone when it ships and says so either way."""
    if init == "none":
        return None, {}, {}
    if init == "auto":
        path = adain.PRETRAINED.get(f"adain-{backbone}")
        if path is None or not path.is_file():
            print(f"brushwork: note: no shipped adain-{backbone} decoder in this version: the generator starts "
                  f"from scratch (pass --init PATH to start from a trained one)", file=sys.stderr)
            return None, {}, {}
    elif init in PRETRAINED or init in adain.PRETRAINED:
        path = resolve_model(init) if init in PRETRAINED else adain.resolve_model(init)
    else:
        path = Path(init)
        if not path.is_file():
            names = ", ".join([*adain.PRETRAINED, *PRETRAINED])
            raise WeightsError(f"--init {init}: not a decoder file, a shipped name ({names}), auto or none")
    tensors, meta = weights_io.read_safetensors(path)
    if meta.get("backbone", "vgg16-hed") != backbone:
        raise ConfigError(f"--init {init} decodes {meta.get('backbone')} features, not --backbone {backbone}")
    return path, tensors, meta


def gan_task(opts: GANTrainOptions, cfg: TrainConfig) -> TrainTask:
    """A TrainTask for the generator (AdaIN encoder and decoder, the decoder trained) against a fresh critic."""
    critic = CriticSettings.of(opts)
    critic.check(cfg.size)
    loop.check_loss_weights(style_weight=opts.style_weight)
    init, init_tensors, init_meta = initial_decoder(opts.init, opts.backbone)
    style_weight = opts.style_weight if opts.style_weight is not None else float(init_meta.get("style_weight", 10))
    net = adain_model.AdaINNet(opts.backbone, opts.weights, seed=cfg.seed, attention=opts.attention)
    if init is not None:
        adain_model.load_decoder(net.decoder, init_tensors, f"--init {init}")
    adversary = critic.build(cfg.seed)
    module = model_lib.GANTraining(net, style_weight, adversary.critic, opts.gan_loss, opts.adv_weight)
    metadata = {"method": "gan", "backbone": opts.backbone, "layer": net.layer, "style_weight": str(style_weight),
                **critic.metadata(),
                "init": init.name if init is not None else "none", "attention": str(int(opts.attention)),
                "format": FORMAT}
    return loop.TrainTask("gan", module, net.decoder, adain.photo_and_painting_crops(opts.content_dir,
                                                                                     opts.style_dir, cfg),
                          {"gan": (net.decoder, metadata)}, adversary)


SPEC = register_method(MethodSpec(
    "gan", "AdaIN's generator sharpened by a multi-scale PatchGAN critic: painted textures in one pass", GANOptions,
    {"default": {}}, run,
    models=Models(shipped=shipped_models, resolve=resolve_model, load=adain.load_net, signature=adain.EXPORT),
    training=Training("fine-tune an AdaIN decoder against a multi-scale PatchGAN critic (WGAN-GP by default)",
                      GANTrainOptions, gan_task, loop_defaults={"steps": 8000})))
