import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from brushwork import api
from brushwork.cli import main
from brushwork.errors import WeightsError
from brushwork.export import export_model, read_metadata
from brushwork.methods import CommonOptions, ExportSignature, MethodSpec, Models, Training
from brushwork.methods.adain_model import AdaINNet, save_decoder
from brushwork.methods.base import IMAGE_AXES, REGISTRY
from brushwork.methods.fast_model import MobileTransformNet, TransformNet
from brushwork.options import option
from brushwork.weights import read_safetensors

from .conftest import scene, stripes


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An (untrained) fast model and adain decoder, and each exported to ONNX and TorchScript."""
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    fast = root / "mosaic.safetensors"
    save_file(TransformNet().state_dict(), str(fast), metadata={"method": "fast", "width": "32", "steps": "7"})
    mobile = root / "mobile.safetensors"
    save_file(MobileTransformNet().state_dict(), str(mobile), metadata={"method": "fast", "arch": "mobile",
                                                                         "width": "32"})
    adain = root / "decoder.safetensors"
    save_decoder(AdaINNet(seed=2).decoder, adain, {"method": "adain", "backbone": "vgg16-hed"})
    files = {"fast": fast, "mobile": mobile, "adain": adain}
    for name, path in list(files.items()):
        for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
            files[f"{name}.{fmt}"] = export_model(str(path), fmt, root / f"{name}{suffix}")
    return files


@pytest.mark.parametrize("arch", ["fast", "mobile"])
@pytest.mark.parametrize("size", [(37, 52), (64, 40)])
def test_fast_exports_match_torch(models, size, arch):
    import onnxruntime as ort

    image = scene(*size)
    reference = api.run(image, method="fast", model=str(models[arch]), size=max(size)).image
    scripted = torch.jit.load(str(models[f"{arch}.torchscript"]))(image)
    session = ort.InferenceSession(str(models[f"{arch}.onnx"]), providers=["CPUExecutionProvider"])
    onnx_out = torch.from_numpy(session.run(None, {"image": image.numpy()})[0])
    assert reference.shape == scripted.shape == onnx_out.shape == (1, 3, *size)
    assert (scripted - reference).abs().max() < 1e-3 and (onnx_out - reference).abs().max() < 1e-3
    via_runtime = api.run(image, method="fast", model=str(models[f"{arch}.onnx"]), runtime="onnx",
                          size=max(size)).image
    assert (via_runtime - reference).abs().max() < 1e-3


@pytest.mark.parametrize("size", [(37, 52), (64, 40)])
def test_adain_exports_match_torch(models, size):
    import onnxruntime as ort

    content, style = scene(*size), stripes(48, 56, (1.0, 0.3, 0.1))
    reference = api.run(content, style, method="adain", model=str(models["adain"]), size=max(size), alpha=0.7,
                        style_scale=56 / max(size)).image
    alpha = torch.tensor(0.7)
    scripted = torch.jit.load(str(models["adain.torchscript"]))(content, style, alpha)
    session = ort.InferenceSession(str(models["adain.onnx"]), providers=["CPUExecutionProvider"])
    onnx_out = torch.from_numpy(session.run(None, {"content": content.numpy(), "style": style.numpy(),
                                                   "alpha": np.array(0.7, dtype=np.float32)})[0])
    assert reference.shape == scripted.shape == onnx_out.shape == (1, 3, *size)
    assert (scripted - reference).abs().max() < 1e-3 and (onnx_out - reference).abs().max() < 1e-3


def test_exports_carry_metadata(models):
    for key in ("fast.onnx", "fast.torchscript"):
        meta = read_metadata(models[key])
        assert meta["method"] == "fast" and meta["model"] == "mosaic" and meta["steps"] == "7"
        assert meta["brushwork_version"]
    assert read_metadata(models["mobile.onnx"])["arch"] == "mobile"
    assert read_metadata(models["adain.onnx"])["backbone"] == "vgg16-hed"


def test_an_export_or_a_model_file_that_does_not_fit_its_method_is_refused(models, files, tmp_path):
    """An ONNX graph from another method, or a fast model whose metadata names an impossible width: each a
    WeightsError, not onnxruntime's or int()'s."""
    with pytest.raises(WeightsError, match=r"takes \(content, style, alpha\), not \(image\)"):
        api.run(files["content"], method="fast", model=str(models["adain.onnx"]), runtime="onnx", size=64)
    with pytest.raises(WeightsError, match=r"takes \(image\), not \(content, style, alpha\)"):
        api.run(files["content"], files["style_a"], method="adain", model=str(models["fast.onnx"]), runtime="onnx",
                size=64)
    tensors, meta = read_safetensors(models["fast"])
    for width in ("abc", "0", "100000"):
        bad = tmp_path / f"width-{width}.safetensors"
        save_file(tensors, str(bad), metadata={**meta, "width": width})
        with pytest.raises(WeightsError, match=f"says its network is '{width}' channels wide"):
            api.run(files["content"], method="fast", model=str(bad), size=64)
        with pytest.raises(WeightsError, match="channels wide"):
            export_model(str(bad), "onnx", tmp_path / "bad.onnx")
    for key, value, message in (("method", "adain", "holds a model of the adain method, not of fast"),
                                ("format", "brushwork-fast/9", "in format brushwork-fast/9, which this version")):
        save_file(tensors, str(tmp_path / "other.safetensors"), metadata={**meta, key: value})
        with pytest.raises(WeightsError, match=message):
            api.run(files["content"], method="fast", model=str(tmp_path / "other.safetensors"), size=64)
    tensors = {k: v.clone() for k, v in tensors.items()}
    next(v for v in tensors.values() if v.is_floating_point()).fill_(float("inf"))
    save_file(tensors, str(tmp_path / "inf.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="inf.safetensors: .* holds NaN or infinite values"):
        api.run(files["content"], method="fast", model=str(tmp_path / "inf.safetensors"), size=64)


def test_export_errors_are_one_line(models, tmp_path, capsys):
    cases = [(["export", "no_such_model", "--format", "onnx", "-o", str(tmp_path / "x.onnx")], "unknown model"),
             (["export", str(models["fast"]), "--format", "tflite", "-o", str(tmp_path / "x")],
              "unknown export format"),
             (["export", str(models["fast"]), "--format", "onnx", "-o", str(tmp_path / "no" / "x.onnx")],
              "does not exist")]
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not list(tmp_path.iterdir())


def test_a_new_feed_forward_method_needs_only_its_registry_entry(tmp_path, monkeypatch, capsys):
    """`brushwork models`, `export` and `train` reach a method through its MethodSpec hooks, never by its name."""
    path = tmp_path / "toy.safetensors"
    save_file(torch.nn.Conv2d(3, 3, 1).state_dict(), str(path), metadata={"method": "toy", "steps": "3"})

    def load(file: str) -> torch.nn.Module:
        net = torch.nn.Conv2d(3, 3, 1)
        net.load_state_dict(read_safetensors(file)[0])
        return net

    @dataclasses.dataclass
    class ToyTraining:
        depth: int = option(3, "how deep the toy goes")

    signature = ExportSignature(("image",), lambda: (torch.rand(1, 3, 8, 8),), {"image": IMAGE_AXES,
                                                                              "output": IMAGE_AXES})
    spec = MethodSpec("toy", "a 1×1 convolution", CommonOptions, {"default": {}}, lambda *args, **kw: None,
                      models=Models(lambda: {"toy-one": path}, lambda name: path, load, signature),
                      training=Training("train the toy", ToyTraining, lambda opts, cfg: None))
    monkeypatch.setitem(REGISTRY, "toy", spec)
    assert main(["models"]) == 0 and "toy: toy-one  [toy.safetensors] steps 3" in capsys.readouterr().out
    assert main(["models", "--json"]) == 0
    toy = [row for row in json.loads(capsys.readouterr().out) if row["method"] == "toy"]
    assert toy == [{"method": "toy", "name": "toy-one", "file": str(path), "metadata": {"method": "toy", "steps": "3"}}]
    out = export_model("toy-one", "onnx", tmp_path / "toy.onnx")
    assert read_metadata(out)["method"] == "toy" and read_metadata(out)["model"] == "toy-one"
    with pytest.raises(SystemExit):
        main(["train", "toy", "--help"])
    assert "how deep the toy goes (default 3)" in " ".join(capsys.readouterr().out.split())
