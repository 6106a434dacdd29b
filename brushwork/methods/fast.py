"""The `fast` method (Johnson et al. 2016): one trained transformation network per style, one forward pass per
image. Models are safetensors files with their recipe in the metadata: shipped ones by name, or any trained with
`brushwork train fast`."""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import color
from ..errors import ConfigError, MaskError, WeightsError
from ..io import fit_long_side, resize
from ..resources import resolve_device
from ..weights import read_safetensors
from . import Callback, CommonOptions, MethodSpec, Result, check_common, check_runtime, onnx_session, register_method
from .fast_model import ARCHS, build_net

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
PREFIX = "fast-"


def shipped_models() -> dict[str, Path]:
    """Shipped fast models by style name (brushwork/models/fast-NAME.safetensors)."""
    return {p.stem[len(PREFIX):]: p for p in sorted(MODELS_DIR.glob(f"{PREFIX}*.safetensors"))}


@dataclass
class FastOptions(CommonOptions):
    """Every knob of the fast method; the style lives in the model."""

    model: str | None = None
    runtime: str = "torch"


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
    if styles:
        raise ConfigError("a fast model carries its own style: give no style images with --method fast")
    check_common(opts, 0, needs_styles=False)
    if masks:
        raise MaskError("--method fast applies one style to the whole image; masks need optimize or adain")
    if opts.preserve_color == "histogram":
        raise ConfigError("--preserve-color histogram recolours the style image, which fast models do not take; "
                          "use luminance")
    check_runtime(opts.runtime)
    started = time.perf_counter()
    device = resolve_device(opts.device)
    path = resolve_model(opts.model)
    height, width = fit_long_side(*content.shape[-2:], opts.size)
    work = resize(content, (height, width))
    if opts.runtime == "onnx":
        from ..export import read_metadata

        output = torch.from_numpy(onnx_session(str(path), opts.device).run(None, {"image": work.numpy()})[0])
        meta = read_metadata(path)
    else:
        net, meta = load_net(str(path))
        with torch.no_grad():
            output = net.to(device)(work.to(device)).clamp(0, 1).cpu()
    if opts.preserve_color == "luminance":
        output = color.keep_chroma(output, work)
    done = time.perf_counter()
    stats = {"device": str(device), "model": str(path), "model_metadata": meta,
             "seconds": {"total": round(done - started, 3)}, "options": asdict(opts)}
    return Result(output, stats)


register_method(MethodSpec("fast", "Johnson et al. 2016: one trained network per style, one pass", FastOptions,
                           {"default": {}}, run))
