"""Export feed-forward models to ONNX and TorchScript with dynamic batch, height and width, carrying their metadata
(method, model name, recipe, brushwork version); `read_metadata` (from runtime.py) reads it back.

fast models take `image` (N×3×H×W RGB in [0,1]) and return `output`; adain takes `content`, `style` (any sizes) and
`alpha` (a 0-d float), and returns `output`. Outputs are clamped to [0,1]."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError, OutputError, WeightsError
from .runtime import read_metadata
from .version import __version__
from .weights import read_safetensors

__all__ = ["FORMATS", "export_model", "read_metadata", "resolve"]

FORMATS = ("onnx", "torchscript")
OPSET = 17


class Clamped(nn.Module):
    """The network as exported: its forward pass with the output clamped to [0, 1]. The adain network arrives
    from load_net with its encoder cut at the AdaIN layer, so the file stays small."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(*inputs).clamp(0, 1)


def resolve(model: str) -> tuple[str, Path]:
    """(method, safetensors file) for a shipped model name or a model file, from the file's metadata."""
    from .methods import adain as adain_method, fast as fast_method

    if model in adain_method.PRETRAINED:
        return "adain", adain_method.resolve_model(model)
    if model in fast_method.shipped_models():
        return "fast", fast_method.resolve_model(model)
    path = Path(model)
    if not path.is_file():
        raise WeightsError(f"unknown model '{model}': not a shipped model name or a file")
    method = read_safetensors(path)[1].get("method")
    if method not in ("adain", "fast"):
        raise WeightsError(f"{path} is not a brushwork adain or fast model (its metadata names no method)")
    return method, path


def _graph(method: str, path: Path) -> tuple[nn.Module, tuple, dict[str, str]]:
    from .methods import adain as adain_method, fast as fast_method

    meta = read_safetensors(path)[1]
    if method == "fast":
        net, _ = fast_method.load_net(str(path))
        return Clamped(net).eval(), (torch.rand(1, 3, 64, 64),), meta
    net = adain_method.load_net(str(path))
    return Clamped(net).eval(), (torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.tensor(1.0)), meta


def export_model(model: str, fmt: str, output: str | os.PathLike) -> Path:
    """Write `model` (a shipped name or a file) as ONNX or TorchScript to `output`, atomically."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'; choose from {', '.join(FORMATS)}")
    out = Path(output)
    if not out.parent.is_dir():
        raise OutputError(f"output directory does not exist: {out.parent}")
    method, path = resolve(model)
    graph, example, meta = _graph(method, path)
    info = {**meta, "method": method, "model": Path(model).stem if Path(model).is_file() else model,
            "brushwork_version": __version__, "format": fmt}
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shapes; the graphs are checked at two sizes
            if fmt == "torchscript":
                traced = torch.jit.trace(graph, example, check_trace=False)
                torch.jit.save(traced, tmp, _extra_files={"brushwork.json": json.dumps(info)})
            else:
                _onnx(graph, example, method, tmp, info)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _onnx(graph: nn.Module, example: tuple, method: str, path: str, info: dict[str, str]) -> None:
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'brushwork[export]'") from None
    dims = {0: "batch", 2: "height", 3: "width"}
    if method == "fast":
        names, axes = ["image"], {"image": dims, "output": dims}
    else:
        names = ["content", "style", "alpha"]
        axes = {"content": dims, "style": {0: "style_batch", 2: "style_height", 3: "style_width"}, "output": dims}
    torch.onnx.export(graph, example, path, dynamo=False, opset_version=OPSET, input_names=names,
                      output_names=["output"], dynamic_axes=axes)
    proto = onnx.load(path)
    for key, value in info.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, path)
