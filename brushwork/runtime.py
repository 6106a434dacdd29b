"""Running exported models: the runtimes a feed-forward method can use, onnxruntime sessions, and the metadata an
exported file carries. Methods use this and `export.py` writes the files, so neither imports the other."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import torch

from .errors import ConfigError, WeightsError

RUNTIMES = ("torch", "onnx")


def check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime must be one of {', '.join(RUNTIMES)}")


@functools.lru_cache(maxsize=4)
def onnx_session(path: str | os.PathLike, device: str = "auto", inputs: tuple[str, ...] | None = None):
    """An onnxruntime session on CUDA where available and asked for, else CPU; cached, since loading costs more
    than a small model's run. With `inputs`, a graph that takes other inputs (another method's export) is refused."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("--runtime onnx needs onnxruntime: pip install 'brushwork[export]'") from None
    if str(path).lower().endswith(".safetensors"):  # the weights brushwork runs itself, not an exported graph
        raise ConfigError(f"{path} holds weights, not an ONNX graph: run it with --runtime torch, or export it "
                          f"first (`brushwork export MODEL --format onnx -o FILE.onnx`)")
    providers = ["CPUExecutionProvider"]
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as e:  # onnxruntime raises its own error types for missing or invalid files
        raise WeightsError(f"cannot load ONNX model {path}: {str(e).splitlines()[0]}") from None
    takes = tuple(i.name for i in session.get_inputs())
    if inputs is not None and takes != inputs:
        raise WeightsError(f"{path} takes ({', '.join(takes)}), not ({', '.join(inputs)}): it was exported from "
                           f"another method")
    return session


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata an exported file carries: ONNX `metadata_props`, or TorchScript's extra file brushwork.json."""
    p = Path(path)
    if p.suffix == ".onnx":
        import onnx

        return {e.key: e.value for e in onnx.load(str(p), load_external_data=False).metadata_props}
    files = {"brushwork.json": ""}
    torch.jit.load(str(p), _extra_files=files)
    return json.loads(files["brushwork.json"])
