"""VGG16 and VGG19 feature extractors (Simonyan & Zisserman 2014) and loaders for the weight layouts people have:
HED's Keras VGG16 (embedded), torchvision's VGG19, and the Caffe-normalised VGG19 of Gatys and of AdaIN."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from ..errors import WeightsError
from .base import Backbone

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

    def __init__(self, depth: int, preprocess: str = "caffe", pooling: str = "max", padding: str = "zeros"):
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
    from ..weights import read_safetensors

    tensors, _ = read_safetensors(path)
    params = []
    for name in conv_names(depth):
        if f"{name}.weight" not in tensors:
            break
        params.append((tensors[f"{name}.weight"], tensors[f"{name}.bias"]))
    if not params:
        raise WeightsError(f"{path} holds no VGG conv weights (conv1_1.weight, ...)")
    return params
