"""Release recipes: one TOML file per shipped model (recipes/*.toml) saying how it is trained, so that a model in
the README can be reproduced and a short loan of a GPU trains all of them from one command (tools/release.py).

    name = "starry_night"            # the model's name: brushwork/models/fast-NAME.safetensors
    method = "fast"                  # fast | adain | gan | transformer
    [train]                          # the shared loop's settings (TrainConfig)
    steps = 20000
    batch_size = 8
    ...
    [model]                          # the method's settings
    arch = "classic"
    style = "starry_night.jpg"       # fast: a file of the styles folder (../shared/data/pairs/style)
    ...

A gan recipe's `init` names the adain recipe it fine-tunes: in a release, its run waits for that one to end and
starts from its weights.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..backbones import Backbone, get_spec
from ..errors import ConfigError
from ..methods.adain import adain_task
from ..methods.fast import FastStyle, fast_task
from ..methods.gan import GANTrainOptions, gan_task
from ..methods.transformer import TransformerTrainOptions, transformer_task
from ..methods.fast_model import LAYER_SETS, loss_layers
from .loop import TrainConfig, TrainTask

LOOP_KEYS = ("steps", "batch_size", "size", "short_side", "lr", "lr_decay", "warmup", "clip", "precision", "seed")
MODEL_KEYS = {"adain": {"backbone": "vgg16-hed", "style_weight": 10.0},
              "gan": {"backbone": "vgg16-hed", "init": "adain-vgg16-hed", "style_weight": None, "gan_loss": "wgan-gp",
                      "adv_weight": 0.1, "critic_lr": 4e-4, "critic_steps": 1, "critic_width": 64, "scales": 3,
                      "gp_weight": None, "attention": False},
              "transformer": {"config": "small", "backbone": "vgg16-hed", "content_weight": 7.0, "style_weight": 10.0,
                              "identity_pixels": 70.0, "identity_features": 1.0},
              "fast": {"arch": "classic", "backbone": "vgg16-hed", "layers": "backbone", "style": None,
                       "style_size": None, "content_weight": 1.0, "style_weight": 30.0, "tv_weight": 1.0}}


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe: `train` holds TrainConfig fields, `model` the method's settings (defaults filled in)."""

    name: str
    method: str
    train: dict[str, Any]
    model: dict[str, Any]
    path: Path

    @property
    def group_key(self) -> tuple:
        """Recipes with equal keys train together in one process (fast styles sharing an architecture and loop)."""
        if self.method != "fast":
            return (self.method, self.name)
        return (self.method, self.model["arch"], self.model["backbone"], self.model["layers"],
                tuple(sorted(self.train.items())))

    @property
    def crop(self) -> int:
        """The training crop's side: the recipe's `size`, or the loop's own default."""
        return self.train.get("size", TrainConfig.size)

    def loss_layers(self, model: Backbone) -> list[str]:
        """The backbone layers this recipe's losses read (a training kit keeps `model` up to the deepest), from
        the same tables the training tasks use."""
        if self.method in ("adain", "gan", "transformer"):
            read = get_spec(self.model["backbone"]).adain_layers
        else:
            read = loss_layers(self.model["backbone"], model, self.model["layers"])
        return [read.content, *read.style]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "train": self.train, "model": self.model,
                "path": str(self.path)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        return cls(data["name"], data["method"], data["train"], data["model"], Path(data["path"]))

    @property
    def file_stem(self) -> str:
        """The shipped file's stem: brushwork/models/<stem>.safetensors."""
        return f"fast-{self.name}" if self.method == "fast" else self.name


def deepest_loss_layer(recipes: list[Recipe], model: Backbone) -> str:
    """The deepest layer of `model` that any of the recipes' losses read: where a training kit cuts its weights."""
    return max((layer for r in recipes for layer in r.loss_layers(model)), key=model.layer_names.index)


def load_recipe(path: str | Path) -> Recipe:
    """Parse and check one recipe file; every mistake is a ConfigError that names the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read recipe {path}: {e}") from None
    method, name = data.get("method"), data.get("name")
    if method not in MODEL_KEYS:
        raise ConfigError(f"{path}: method must be one of {', '.join(MODEL_KEYS)}, got {method!r}")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{path}: name must be letters, digits, '-' and '_', got {name!r}")
    unknown = set(data) - {"name", "method", "train", "model"}
    unknown |= {f"train.{k}" for k in data.get("train", {}) if k not in LOOP_KEYS}
    unknown |= {f"model.{k}" for k in data.get("model", {}) if k not in MODEL_KEYS[method]}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    model = {**MODEL_KEYS[method], **data.get("model", {})}
    if method == "fast" and not model["style"]:
        raise ConfigError(f"{path}: a fast recipe needs model.style, a file in the styles folder")
    if method == "fast" and model["layers"] not in LAYER_SETS:
        raise ConfigError(f"{path}: model.layers must be one of {', '.join(LAYER_SETS)}, got {model['layers']!r}")
    train = dict(data.get("train", {}))
    TrainConfig(**train).validate()
    return Recipe(name, method, train, model, path)


def load_recipes(folder: str | Path, only: list[str] | None = None) -> list[Recipe]:
    """Every recipe of a folder, sorted by name; `only` keeps the named ones (an unknown name is an error)."""
    recipes = [load_recipe(p) for p in sorted(Path(folder).glob("*.toml"))]
    if not recipes:
        raise ConfigError(f"no recipes (*.toml) in {folder}")
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        raise ConfigError(f"{folder}: two recipes share a name")
    if only:
        missing = sorted(set(only) - set(names))
        if missing:
            raise ConfigError(f"no recipe named {', '.join(missing)}; the recipes are {', '.join(names)}")
        recipes = [r for r in recipes if r.name in only]
    return recipes


def variant(recipe: Recipe, name: str, settings: dict[str, str]) -> Recipe:
    """A copy of `recipe` under another name with some settings changed (values in TOML syntax, e.g. "0.5"):
    how a release tries a few loss weights side by side. A fast variant that keeps the loop settings trains in
    the same process as its siblings."""
    train, model = dict(recipe.train), dict(recipe.model)
    for key, text in settings.items():
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        if key in MODEL_KEYS[recipe.method]:
            model[key] = value
        elif key in LOOP_KEYS:
            train[key] = value
        else:
            raise ConfigError(f"{recipe.name} has no setting '{key}'")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"a variant's name must be letters, digits, '-' and '_', got {name!r}")
    TrainConfig(**train).validate()
    return replace(recipe, name=name, train=train, model=model)


def group_recipes(recipes: list[Recipe]) -> list[list[Recipe]]:
    """Recipes that can share one training process, in the order they first appear."""
    groups: dict[tuple, list[Recipe]] = {}
    for recipe in recipes:
        groups.setdefault(recipe.group_key, []).append(recipe)
    return list(groups.values())


def loop_config(group: list[Recipe], **overrides: Any) -> TrainConfig:
    """The group's TrainConfig (its recipes agree on it), with run settings such as out, device or workers."""
    known = {f.name for f in fields(TrainConfig)}
    bad = set(overrides) - known
    if bad:
        raise ConfigError(f"unknown loop settings {', '.join(sorted(bad))}")
    return replace(TrainConfig(**group[0].train), **overrides)


def build_task(group: list[Recipe], cfg: TrainConfig, content_dir: str | Path, style_dir: str | Path,
               styles_dir: str | Path, weights: dict[str, str] | None = None) -> TrainTask:
    """The TrainTask of a group: content photos from `content_dir`; adain, gan and transformer paintings from
    `style_dir`; fast style images by file name from `styles_dir`; backbone weight files by backbone name from
    `weights`. A gan recipe's `init` is a model name or file here (a release resolves a recipe name to that run's
    weights)."""
    weights = weights or {}
    first = group[0]
    backbone = first.model["backbone"]
    if first.method in ("gan", "transformer"):
        options, make = {"gan": (GANTrainOptions, gan_task),
                         "transformer": (TransformerTrainOptions, transformer_task)}[first.method]
        task = make(options(str(content_dir), str(style_dir), weights=weights.get(backbone), **first.model), cfg)
        (net, meta), = task.exports.values()
        task.exports = {first.file_stem: (net, {**meta, "recipe": first.path.name})}
        return task
    if first.method == "adain":
        task = adain_task(str(content_dir), str(style_dir), cfg, backbone, float(first.model["style_weight"]),
                          weights.get(backbone))
        task.exports = {first.file_stem: (task.exports["adain"][0], {**task.exports["adain"][1],
                                                                    "recipe": first.path.name})}
        return task
    styles = []
    for r in group:
        path = Path(styles_dir) / r.model["style"]
        if not path.is_file():
            raise ConfigError(f"{r.path}: style image {path} not found")
        styles.append(FastStyle(r.name, str(path), float(r.model["content_weight"]), float(r.model["style_weight"]),
                                float(r.model["tv_weight"]), r.model["style_size"]))
    task = fast_task(styles, str(content_dir), cfg, backbone, first.model["arch"], weights.get(backbone),
                     layers=first.model["layers"])
    by_name = {r.name: r for r in group}
    names = [s.name for s in styles]
    task.exports = {by_name[n].file_stem: (net, {**meta, "name": n, "style": by_name[n].model["style"],
                                                 "recipe": by_name[n].path.name})
                    for n, (net, meta) in zip(names, task.exports.values())}
    return task


def build_kit_task(group: list[Recipe], cfg: TrainConfig, kit: Path) -> TrainTask:
    """build_task on a release kit's layout (tools/weights_kit.py): data/content, data/style, styles, and each
    backbone's weights as weights/NAME.safetensors."""
    weights = {p.stem: str(p) for p in (kit / "weights").glob("*.safetensors")}
    return build_task(group, cfg, kit / "data" / "content", kit / "data" / "style", kit / "styles", weights)
