"""Export feed-forward models to ONNX and TorchScript with dynamic batch, height and width, carrying their metadata
(method, model name, recipe, brushwork version); `read_metadata` (from runtime.py) reads it back.

Each method's registry entry says which models ship, how one loads and what its graph takes (its ExportSignature):
fast models take `image` (N×3×H×W RGB in [0,1]); adain takes `content`, `style` (any sizes) and `alpha` (a 0-d
float). Every graph returns `output`, clamped to [0,1]."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError, WeightsError
from .io import atomic_write, check_output_path
from .methods import ExportSignature, MethodSpec, method_specs
from .runtime import read_metadata
from .version import __version__
from .weights import read_safetensors

__all__ = ["FORMATS", "export_model", "read_metadata", "resolve"]

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pts", ".ts")}
OPSET = 17


class Clamped(nn.Module):
    """The network as exported: its forward pass with the output clamped to [0, 1]. The adain network arrives
    from load_net with its encoder cut at the AdaIN layer, so the file stays small."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(*inputs).clamp(0, 1)


def resolve(model: str) -> tuple[MethodSpec, Path]:
    """(method, safetensors file) for a shipped model name or a model file, from the file's metadata."""
    exporters = [spec for spec in method_specs() if spec.models is not None]
    for spec in exporters:
        if model in spec.models.shipped():
            return spec, spec.models.resolve(model)
    path = Path(model)
    if not path.is_file():
        raise WeightsError(f"unknown model '{model}': not a shipped model name or a file")
    method = read_safetensors(path)[1].get("method")
    spec = next((s for s in exporters if s.name == method), None)
    if spec is None:
        names = " or ".join(s.name for s in exporters)
        raise WeightsError(f"{path} is not a brushwork {names} model (its metadata names no such method)")
    return spec, path


def export_model(model: str, fmt: str, output: str | os.PathLike) -> Path:
    """Write `model` (a shipped name or a file) as ONNX or TorchScript to `output`, atomically."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'; choose from {', '.join(FORMATS)}")
    out = check_output_path(output, suffixes=SUFFIXES[fmt])
    spec, path = resolve(model)
    graph = Clamped(spec.models.load(str(path))).eval()
    signature = spec.models.signature
    example = signature.example()
    info = {**read_safetensors(path)[1], "method": spec.name,
            "model": Path(model).stem if Path(model).is_file() else model, "brushwork_version": __version__,
            "format": fmt}
    def write(tmp: str) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shapes; the graphs are checked at two sizes
            if fmt == "torchscript":
                traced = torch.jit.trace(graph, example, check_trace=False)
                torch.jit.save(traced, tmp, _extra_files={"brushwork.json": json.dumps(info)})
            else:
                _onnx(graph, example, signature, tmp, info)

    atomic_write(out, write)
    return out


def _onnx(graph: nn.Module, example: tuple, signature: ExportSignature, path: str, info: dict[str, str]) -> None:
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'brushwork[export]'") from None
    torch.onnx.export(graph, example, path, dynamo=False, opset_version=OPSET, input_names=list(signature.names),
                      output_names=["output"], dynamic_axes=signature.dynamic_axes)
    proto = onnx.load(path)
    for key, value in info.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, path)
