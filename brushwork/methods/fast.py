"""The `fast` method (Johnson et al. 2016): one trained transformation network per style, one forward pass per
image. Models are safetensors files with their recipe in the metadata: shipped ones by name, or any trained with
`brushwork train fast`."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, WeightsError
from ..options import option
from ..resources import resolve_device
from ..runtime import check_runtime, onnx_session, read_metadata
from ..weights import read_safetensors
from .base import Callback, Capabilities, CommonOptions, MethodSpec, Result, register_method
from .fast_model import ARCHS, build_net
from .prepare import output_size, prepare

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
PREFIX = "fast-"


def shipped_models() -> dict[str, Path]:
    """Shipped fast models by style name (brushwork/models/fast-NAME.safetensors)."""
    return {p.stem[len(PREFIX):]: p for p in sorted(MODELS_DIR.glob(f"{PREFIX}*.safetensors"))}


@dataclass
class FastOptions(CommonOptions):
    """Every knob of the fast method; the style lives in the model."""

    model: str | None = option(None, "a style model: a shipped name or a file from `brushwork train fast`")
    runtime: str = option("torch", "torch | onnx, to run a model exported with `brushwork export` through "
                                   "onnxruntime")


def resolve_model(model: str | None) -> Path:
    shipped = shipped_models()
    if model is None:
        names = ", ".join(shipped) or "none ship in this version"
        raise ConfigError(f"--method fast needs --model: a shipped style ({names}) or a file from "
                          f"`brushwork train fast`")
    if model in shipped:
        return shipped[model]
    path = Path(model)
    if not path.is_file():
        names = ", ".join(shipped) or "none ship in this version"
        raise WeightsError(f"unknown fast model '{model}': not a shipped style ({names}) or a file")
    return path


@functools.lru_cache(maxsize=4)
def load_net(path: str) -> tuple[torch.nn.Module, dict[str, str]]:
    """The network a model file describes (its `arch` and `width` metadata), with its weights, frozen."""
    tensors, meta = read_safetensors(path)
    arch = meta.get("arch", "classic")
    if arch not in ARCHS:
        raise WeightsError(f"{path} is a '{arch}' fast network, which this version does not know")
    net = build_net(arch, int(meta.get("width", 32)))
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{path} does not fit the fast {arch} network: {str(e).splitlines()[0]}") from None
    return net.eval().requires_grad_(False), meta


def run(content: torch.Tensor, styles: list[torch.Tensor], opts: FastOptions,
        masks: list[torch.Tensor] | None = None, callback: Callback | None = None) -> Result:
    """Stylize `content` (1×3×H×W in [0,1]) with a trained per-style network."""
    check_runtime(opts.runtime)
    started = time.perf_counter()
    prep = prepare(SPEC, opts, content, styles, masks)
    device = resolve_device(opts.device)
    path = resolve_model(opts.model)
    work = prep.work_at(output_size(content, opts.size))
    if opts.runtime == "onnx":
        output = torch.from_numpy(onnx_session(str(path), opts.device).run(None, {"image": work.numpy()})[0])
        meta = read_metadata(path)
    else:
        net, meta = load_net(str(path))
        with torch.no_grad():
            output = net.to(device)(work.to(device))
    output = prep.finish(output)
    seconds = {"total": round(time.perf_counter() - started, 3)}
    return Result(output, opts, seconds, backbone=meta.get("backbone"), device=str(device),
                  details={"model": str(path), "model_metadata": meta})


SPEC = register_method(MethodSpec("fast", "Johnson et al. 2016: one trained network per style, one pass",
                                  FastOptions, {"default": {}}, run,
                                  Capabilities(styles=False, masks=False, color_modes=("luminance",))))
