"""Every bad input, by class: one line on stderr, exit 2, no traceback, and nothing new in the output folder.

Each case is a function of (files, tmp_path) returning the command line; the images are the suite's tiny synthetic
ones, so no case runs a real stylization or training step before it fails."""

from __future__ import annotations

import json
import os
import signal
import struct
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from brushwork import DivergenceError, Interrupted, cli, losses
from brushwork.cli import main
from brushwork.methods.adain import adain_task
from brushwork.train import TrainConfig, train

TINY = ["--size", "64", "--iterations", "2", "--scales", "1", "--quiet"]
TRAIN = ["--steps", "2", "--batch-size", "1", "--size", "32", "--short-side", "32", "--workers", "0", "--quiet"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height and whose data is one empty row: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def _write(path: Path, data: bytes | str) -> str:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def stylize(*args: str) -> list[str]:
    return ["stylize", *TINY, *args]


def feed(method: str, *args: str) -> list[str]:
    """A feed-forward method's command line: TINY's optimize options would fail it on them instead."""
    return ["stylize", "--size", "64", "--quiet", "--method", method, *args]


def _inputs(files, tmp_path, models) -> dict[str, str]:
    bad = tmp_path / "bad"
    bad.mkdir(exist_ok=True)
    return {"c": str(files["content"]), "a": str(files["style_a"]), "b": str(files["style_b"]),
            "out": str(tmp_path / "out" / "o.png"), "bad": str(bad), **{k: str(v) for k, v in models.items()}}


PATHS = {
    "missing content": lambda f, p, i: stylize(i["c"] + ".missing", i["a"], "-o", i["out"]),
    "missing style": lambda f, p, i: stylize(i["c"], i["a"] + ".missing", "-o", i["out"]),
    "content is an empty folder": lambda f, p, i: stylize(i["bad"], i["a"], "-o", str(p / "out" / "dir")),
    "style is a folder": lambda f, p, i: stylize(i["c"], i["bad"], "-o", i["out"]),
    "missing mask": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--mask", i["c"] + ".missing"),
}

IMAGES = {
    "empty file": lambda f, p, i: stylize(_write(p / "bad" / "e.png", b""), i["a"], "-o", i["out"]),
    "corrupt jpeg": lambda f, p, i: stylize(i["c"], _write(p / "bad" / "c.jpg", b"\xff\xd8\xff\xe0 junk"), "-o",
                                            i["out"]),
    "truncated png": lambda f, p, i: stylize(_write(p / "bad" / "t.png", Path(i["c"]).read_bytes()[:60]), i["a"],
                                             "-o", i["out"]),
    "text named png": lambda f, p, i: stylize(i["c"], _write(p / "bad" / "note.png", "hello"), "-o", i["out"]),
    "decompression bomb": lambda f, p, i: stylize(_write(p / "bad" / "bomb.png", _png_header(60000, 60000)),
                                                  i["a"], "-o", i["out"]),
    "one pixel content": lambda f, p, i: stylize(_write(p / "bad" / "px.png", _png_header(1, 1)), i["a"], "-o",
                                                 i["out"]),
}

NUMBERS = {
    "size zero": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--size", "0"),
    "size too small": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--size", "8"),
    "size too large": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--size", "300000"),
    "size too large, fast through onnx": lambda f, p, i: feed("fast", i["c"], "-o", i["out"], "--model", i["fast"],
                                                              "--runtime", "onnx", "--size", "40000"),
    "size not a number": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--size", "big"),
    "style scale too large": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--style-scale", "2000"),
    "style scale too large, adain": lambda f, p, i: feed("adain", i["c"], i["a"], "-o", i["out"], "--model",
                                                         i["adain"], "--style-scale", "2000"),
    "style scale too large, transformer": lambda f, p, i: feed("transformer", i["c"], i["a"], "-o", i["out"],
                                                               "--model", i["transformer"], "--style-scale", "2000"),
    "seed out of range": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--seed", str(2**64)),
    "iterations zero": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--iterations", "0"),
    "scale factor one": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--scale-factor", "1"),
    "style weight inf": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--style-weight", "inf"),
    "content weight nan": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--content-weight", "nan"),
    "tv weight inf": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--tv-weight", "inf"),
    "negative tv weight": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--tv-weight", "-1"),
    "lr inf": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--optimizer", "adam", "--lr", "inf"),
    "style scale zero": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--style-scale", "0"),
    "alpha above one": lambda f, p, i: feed("adain", i["c"], i["a"], "-o", i["out"], "--alpha", "2"),
    "pyramid levels 50": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--pyramid-levels", "50"),
    "unknown preset": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--preset", "turbo"),
    "unknown method": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--method", "magic"),
    "unknown backbone": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--backbone", "resnet9000"),
    "unknown layer": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--style-layers", "relu9_9"),
    "no style layer": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--style-layers", ",,"),
    "no content layer": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--content-layers", ""),
    "tile negative": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--tile", "-1"),
    "tile below the overlap": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--tile", "40"),
    "thumbnail too small": lambda f, p, i: feed("adain", i["c"], i["a"], "-o", i["out"], "--thumbnail", "4"),
    "tiles through onnx": lambda f, p, i: feed("fast", i["c"], "-o", i["out"], "--runtime", "onnx", "--tile", "512"),
    "an onnx graph run by torch": lambda f, p, i: feed("fast", i["c"], "-o", i["out"], "--model",
                                                       _write(p / "graph.ONNX", "graph")),
    "weights run by onnx": lambda f, p, i: feed("fast", i["c"], "-o", i["out"], "--runtime", "onnx", "--model",
                                                _write(p / "net.safetensors", "weights")),
}

BLENDS_AND_MASKS = {
    "blend count": lambda f, p, i: stylize(i["c"], i["a"], i["b"], "-o", i["out"], "--style-blend", "1"),
    "blend negative": lambda f, p, i: stylize(i["c"], i["a"], i["b"], "-o", i["out"], "--style-blend", "1,-1"),
    "blend all zero": lambda f, p, i: stylize(i["c"], i["a"], i["b"], "-o", i["out"], "--style-blend", "0,0"),
    "blend inf": lambda f, p, i: stylize(i["c"], i["a"], i["b"], "-o", i["out"], "--style-blend", "inf,1"),
    "blend not numbers": lambda f, p, i: stylize(i["c"], i["a"], i["b"], "-o", i["out"], "--style-blend", "x,y"),
    "mask count": lambda f, p, i: stylize(i["c"], i["a"], i["b"], "-o", i["out"], "--mask", str(f["mask_left"])),
    "mask aspect": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--mask", i["a"]),
    "mask all black": lambda f, p, i: stylize(i["c"], i["a"], i["b"], "-o", i["out"], "--mask",
                                              str(f["mask_left"]), _black_mask(f, p)),
}


def _black_mask(files, tmp_path) -> str:
    from PIL import Image

    size = Image.open(files["mask_left"]).size
    path = tmp_path / "bad" / "black.png"
    Image.new("L", size, 0).save(path)
    return str(path)


WEIGHTS = {
    "missing backbone weights": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--backbone",
                                                        "vgg19-normalised"),
    "weights file missing": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--backbone", "vgg19",
                                                    "--weights", str(p / "none.pth")),
    "weights file garbage": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["out"], "--backbone", "vgg19",
                                                    "--weights", _write(p / "bad" / "w.pth", b"PK\x03\x04 junk")),
    "fast model missing": lambda f, p, i: feed("fast", i["c"], "-o", i["out"], "--model", str(p / "none.safetensors")),
    "fast model garbage": lambda f, p, i: feed("fast", i["c"], "-o", i["out"], "--model",
                                               _write(p / "bad" / "m.safetensors", b"\x08\0\0\0\0\0\0\0{}")),
    "adain decoder unknown": lambda f, p, i: feed("adain", i["c"], i["a"], "-o", i["out"], "--model",
                                                  "no-such-decoder"),
}

OUTPUTS = {
    "output folder missing": lambda f, p, i: stylize(i["c"], i["a"], "-o", str(p / "out" / "no" / "o.png")),
    "output format unknown": lambda f, p, i: stylize(i["c"], i["a"], "-o", str(p / "out" / "o.xyz")),
    "output is a folder": lambda f, p, i: stylize(i["c"], i["a"], "-o", str(p / "out")),
    "output empty": lambda f, p, i: stylize(i["c"], i["a"], "-o", ""),
    "video output empty": lambda f, p, i: ["video", i["c"], "-o", ""],
    "export output empty": lambda f, p, i: ["export", i["c"], "--format", "onnx", "-o", ""],
    "folder output empty": lambda f, p, i: stylize(str(Path(i["c"]).parent / "inputs"), i["a"], "-o", ""),
    "batch output empty": lambda f, p, i: ["batch", str(_photos(f, p)), "-o", "", "--style", i["a"]],
    "train out empty": lambda f, p, i: ["train", "adain", "--content-dir", str(_photos(f, p)), "--style-dir",
                                        str(_photos(f, p)), "--out", "", *TRAIN],
    "output overwrites input": lambda f, p, i: stylize(i["c"], i["a"], "-o", i["c"]),
    "folder of inputs to an image path": lambda f, p, i: stylize(str(Path(i["c"]).parent / "inputs"), i["a"], "-o",
                                                                 str(p / "out" / "o.png")),
    "export to a folder": lambda f, p, i: ["export", "la_muse-mobile", "--format", "onnx", "-o", str(p / "out")],
    "export to an unknown format": lambda f, p, i: ["export", "la_muse-mobile", "--format", "onnx", "-o",
                                                           str(p / "out" / "m.xyz")],
}

RESUME = {
    "resume without a checkpoint": lambda f, p, i: ["train", "adain", "--content-dir", str(_photos(f, p)),
                                                    "--style-dir", str(_photos(f, p)), "--out",
                                                    str(p / "out" / "run"), "--resume", *TRAIN],
    "train out is a file": lambda f, p, i: ["train", "adain", "--content-dir", str(_photos(f, p)), "--style-dir",
                                            str(_photos(f, p)), "--out", _write(p / "out" / "file", "x"), *TRAIN],
    "train over an existing run": lambda f, p, i: ["train", "adain", "--content-dir", str(_photos(f, p)),
                                                   "--style-dir", str(_photos(f, p)), "--out", _run_with(p, b"x"),
                                                   *TRAIN],
    "resume over a truncated checkpoint": lambda f, p, i: ["train", "adain", "--content-dir", str(_photos(f, p)),
                                                           "--style-dir", str(_photos(f, p)), "--out",
                                                           _run_with(p, b"\x40\0\0\0\0\0\0\0{\"a\""), "--resume",
                                                           *TRAIN],
    **{f"resume over a state.json whose {what}": (
        lambda f, p, i, state=state: ["train", "adain", "--content-dir", str(_photos(f, p)), "--style-dir",
                                      str(_photos(f, p)), "--out", _run_with(p, b"x", state), "--resume", *TRAIN])
       for what, state in (("step is text", '{"step": "abc", "task": "adain"}'),
                           ("step is negative", '{"step": -5, "task": "adain"}'),
                           ("seconds are text", '{"step": 1, "task": "adain", "seconds": "x"}'),
                           ("parts are no list", '{"step": 1, "task": "adain", "parts": 3}'))},
    "train short side too large": lambda f, p, i: ["train", "adain", "--content-dir", str(_photos(f, p)),
                                                   "--style-dir", str(_photos(f, p)), "--out", str(p / "out" / "run"),
                                                   *TRAIN[:6], "--short-side", "200000", *TRAIN[8:]],
    "train short side below the crop": lambda f, p, i: ["train", "adain", "--content-dir", str(_photos(f, p)),
                                                        "--style-dir", str(_photos(f, p)), "--out",
                                                        str(p / "out" / "run"), *TRAIN[:6], "--short-side", "16",
                                                        *TRAIN[8:]],
    "train seed out of numpy's range": lambda f, p, i: trainer(f, p, "adain", "--seed", str(2**32)),
    "train lr inf": lambda f, p, i: trainer(f, p, "adain", "--lr", "inf"),
    "train adain batch beyond memory": lambda f, p, i: trainer(f, p, "adain", "--batch-size", "9999999"),
    "train fast batch beyond memory": lambda f, p, i: trainer(f, p, "fast", "--style", i["a"], "--batch-size",
                                                              "9999999"),
    "train transformer batch beyond memory": lambda f, p, i: trainer(f, p, "transformer", "--batch-size", "9999999"),
}

LOSS_WEIGHTS = {
    "train adain style weight negative": lambda f, p, i: trainer(f, p, "adain", "--style-weight", "-1"),
    "train fast tv weight negative": lambda f, p, i: trainer(f, p, "fast", "--style", i["a"], "--tv-weight", "-0.5"),
    "train fast style size below the loss network's": lambda f, p, i: trainer(f, p, "fast", "--style", i["a"],
                                                                              "--style-size", "8"),
    "train transformer identity weight negative": lambda f, p, i: trainer(f, p, "transformer", "--identity-pixels",
                                                                          "-70"),
    "gan style weight negative": lambda f, p, i: gan(f, p, "--init", "none", "--scales", "2", "--style-weight", "-1"),
}


def trainer(f, p, method: str, *extra: str) -> list[str]:
    """`train METHOD` on the test photos (paintings too, but for fast, which takes --style in `extra`)."""
    paintings = [] if method == "fast" else ["--style-dir", str(_photos(f, p))]
    return ["train", method, "--content-dir", str(_photos(f, p)), *paintings, "--out", str(p / "out" / "run"), *TRAIN,
            *extra]


def gan(f, p, *extra: str) -> list[str]:
    return trainer(f, p, "gan", *extra)


def _decoder(tmp_path, backbone: str = "vgg16-hed", fits: bool = True) -> str:
    """A decoder file for --init: an adain decoder's shape, or tensors that fit no decoder."""
    from safetensors.torch import save_file

    from brushwork.methods.adain_model import AdaINNet

    path = tmp_path / "bad" / f"decoder-{backbone}-{fits}.safetensors"
    tensors = AdaINNet(seed=0).decoder.state_dict() if fits else {"x": torch.zeros(2)}
    save_file(dict(tensors), str(path), metadata={"method": "adain", "backbone": backbone})
    return str(path)


GANS = {
    "gan loss unknown": lambda f, p, i: gan(f, p, "--gan-loss", "nsgan"),
    "gan critic steps zero": lambda f, p, i: gan(f, p, "--init", "none", "--critic-steps", "0"),
    "gan adv weight negative": lambda f, p, i: gan(f, p, "--init", "none", "--adv-weight", "-1"),
    "gan init missing": lambda f, p, i: gan(f, p, "--init", str(p / "bad" / "none.safetensors")),
    "gan init fits no decoder": lambda f, p, i: gan(f, p, "--init", _decoder(p, fits=False)),
    "gan init of another backbone": lambda f, p, i: gan(f, p, "--init", _decoder(p, "vgg19")),
    "gan batch beyond memory": lambda f, p, i: gan(f, p, "--init", "none", "--scales", "2", "--batch-size", "9999999"),
    "gan critic scales below 16 px": lambda f, p, i: gan(f, p, "--init", "none", "--scales", "3"),
    "train fast critic scales below 16 px": lambda f, p, i: ["train", "fast", "--content-dir", str(_photos(f, p)),
                                                             "--style", i["a"], "--out", str(p / "out" / "run"),
                                                             *TRAIN, "--adv-weight", "0.1", "--scales", "9"],
    "gan model not shipped": lambda f, p, i: ["stylize", i["c"], i["a"], "-o", i["out"], "--method", "gan"],
}


def batch(f, p, *extra: str) -> list[str]:
    return ["batch", str(_photos(f, p)), "-o", str(p / "out" / "batch"), "--quiet", *extra]


BATCHES = {
    "batch source missing": lambda f, p, i: ["batch", str(p / "none"), "-o", str(p / "out" / "b"), "--style", i["a"]],
    "batch manifest without a content column": lambda f, p, i: ["batch", _write(p / "bad" / "rows.csv", "x\ny\n"),
                                                                "-o", str(p / "out" / "b"), "--style", i["a"]],
    "batch output is a file": lambda f, p, i: ["batch", str(_photos(f, p)), "-o", _write(p / "out" / "file", "x"),
                                               "--style", i["a"]],
    "batch option the method lacks": lambda f, p, i: batch(f, p, "--style", i["a"], "--alpha", "0.5"),
    "batch styles for a style-carrying method": lambda f, p, i: batch(f, p, "--method", "fast", "--style", i["a"]),
    "batch engine workers zero": lambda f, p, i: batch(f, p, "--style", i["a"], "--workers", "0"),
    "batch with a model no row can load": lambda f, p, i: batch(f, p, "--method", "fast", "--model", "nope"),
    "batch without the model its method needs": lambda f, p, i: batch(f, p, "--method", "fast"),
    "batch on a Ray cluster that is not there": lambda f, p, i: batch(f, p, "--style", i["a"], "--engine", "ray",
                                                                      "--address", "auto"),
    "batch on a Ray address nothing listens at": lambda f, p, i: batch(f, p, "--style", i["a"], "--engine", "ray",
                                                                       "--address", f"127.0.0.1:{_closed_port()}"),
    "batch manifest with a method column": lambda f, p, i: ["batch", _write(p / "bad" / "m.csv", "content,method\n"
                                                            "x.png,fast\n"), "-o", str(p / "out" / "b")],
    "batch manifest with a column twice": lambda f, p, i: ["batch", _write(p / "bad" / "m.csv", "content,content\n"
                                                           "x.png,y.png\n"), "-o", str(p / "out" / "b")],
    "batch manifest without rows": lambda f, p, i: ["batch", _write(p / "bad" / "m.csv", "content,size\n"), "-o",
                                                    str(p / "out" / "b")],
    "batch style missing": lambda f, p, i: batch(f, p, "--style", str(p / "none.png")),
    "batch style corrupt": lambda f, p, i: batch(f, p, "--style", _write(p / "bad" / "s.jpg", b"\xff\xd8 junk")),
    "batch gpus per worker nan": lambda f, p, i: batch(f, p, "--style", i["a"], "--gpus-per-worker", "nan"),
}


def _closed_port() -> int:
    """A local TCP port that nothing listens on: one the kernel just handed out and took back."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clip(tmp_path, damage: bool = False) -> str:
    """A 4-frame video; `damage`: every byte of its frames overwritten, its header intact."""
    from brushwork.video import sample

    from .conftest import scene

    path = tmp_path / "bad" / ("damaged.mp4" if damage else "clip.mp4")
    sample.write_clip(path, sample.pan_frames(scene(48, 96), 4, (48, 64)))
    if damage:
        data = bytearray(path.read_bytes())
        start, end = data.find(b"mdat") + 4, data.find(b"moov")
        data[start:end] = bytes([0x17]) * (end - start)
        path.write_bytes(bytes(data))
    return str(path)


def _audio_only(tmp_path) -> str:
    import av
    import numpy as np

    path = tmp_path / "bad" / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return str(path)


def _fast_model(tmp_path) -> str:
    """A real (untrained) fast model, so that only the video input can be what fails."""
    from safetensors.torch import save_file

    from .conftest import random_fast_net

    path = tmp_path / "bad" / "fast.safetensors"
    save_file({k: v.contiguous() for k, v in random_fast_net().state_dict().items()}, str(path),
              metadata={"arch": "classic", "width": "32", "method": "fast"})
    return str(path)


def video(tmp_path, *args: str) -> list[str]:
    return ["video", "--method", "fast", "--model", _fast_model(tmp_path), "--quiet", *args]


VIDEOS = {
    "video missing": lambda f, p, i: video(p, str(p / "none.mp4"), "-o", str(p / "out" / "o.mp4")),
    "not a video": lambda f, p, i: video(p, _write(p / "bad" / "notes.mp4", "not a video"), "-o",
                                         str(p / "out" / "o.mp4")),
    "an image as a video": lambda f, p, i: video(p, i["c"], "-o", str(p / "out" / "o.mp4")),
    "no video stream": lambda f, p, i: video(p, _audio_only(p), "-o", str(p / "out" / "o.mp4")),
    "undecodable video stream": lambda f, p, i: video(p, _clip(p, damage=True), "-o", str(p / "out" / "o.mp4")),
    "video output folder missing": lambda f, p, i: video(p, _clip(p), "-o", str(p / "out" / "no" / "o.mp4")),
    "video output format unknown": lambda f, p, i: video(p, _clip(p), "-o", str(p / "out" / "o.gif")),
    "video codec unknown": lambda f, p, i: video(p, _clip(p), "-o", str(p / "out" / "o.mp4"), "--codec", "xyz"),
    "video codec an audio encoder": lambda f, p, i: video(p, _clip(p), "-o", str(p / "out" / "o.mp4"), "--codec",
                                                          "aac"),
    "video codec the container refuses": lambda f, p, i: video(p, _clip(p), "-o", str(p / "out" / "o.mov"),
                                                               "--codec", "vp9"),
    "video blend out of range": lambda f, p, i: video(p, _clip(p), "-o", str(p / "out" / "o.mp4"), "--blend", "1.5"),
    "eval video without a source": lambda f, p, i: ["eval", "--video", _clip(p)],
    "video size too large": lambda f, p, i: video(p, _clip(p), "-o", str(p / "out" / "o.mp4"), "--size", "300000"),
    "video style scale too large": lambda f, p, i: ["video", _clip(p), i["a"], "-o", str(p / "out" / "o.mp4"),
                                                    "--method", "adain", "--model", i["adain"], "--size", "64",
                                                    "--style-scale", "2000", "--quiet"],
    "eval size too large": lambda f, p, i: ["eval", i["c"], "--content", i["c"], "--style", i["a"], "--size",
                                            "300000"],
}


def _photos(files, tmp_path) -> Path:
    from brushwork.io import save_image

    from .conftest import scene

    folder = tmp_path / "photos"
    if not folder.exists():
        folder.mkdir()
        for k in range(2):
            save_image(scene(96, 128).roll(k * 20, -1), folder / f"photo{k}.png")
    return folder


def _run_with(tmp_path, model_bytes: bytes, state: str = '{"step": 1, "task": "adain", "seconds": 1.0}') -> str:
    run = tmp_path / "out" / "run"
    (run / "checkpoint").mkdir(parents=True, exist_ok=True)
    (run / "checkpoint" / "state.json").write_text(state)
    (run / "checkpoint" / "model.safetensors").write_bytes(model_bytes)
    return str(run)


CLASSES = {"paths": PATHS, "images": IMAGES, "numbers": NUMBERS, "blends and masks": BLENDS_AND_MASKS,
           "weights": WEIGHTS, "outputs": OUTPUTS, "resume": RESUME, "videos": VIDEOS,
           "loss weights": LOSS_WEIGHTS, "gan": GANS, "batch": BATCHES}
CASES = [pytest.param(kind, name, id=f"{kind}: {name}") for kind, cases in CLASSES.items() for name in cases]
# What a case's error must say where another error could stand in for it: the onnx case's model is no ONNX file,
# so only the size check that comes first keeps it from failing on that instead.
EXPECTED = {**{name: "GiB but only" for name in NUMBERS if name.startswith("size too large")},
            **{name: "--style-scale 2000) needs about" for name in NUMBERS if name.startswith("style scale too large")},
            "video size too large": "GiB but only", "video style scale too large": "--style-scale 2000) needs about",
            "eval size too large": "--size must be 1 to 40000 px",
            "train short side too large": "--short-side 200000 needs at least",
            "train short side below the crop": "--short-side 16 must be at least the crop's --size",
            "seed out of range": "--seed must be from", "train seed out of numpy's range": "from 0 to 4294967295",
            "no style layer": "--style-layers names no layer", "no content layer": "--content-layers names no layer",
            "batch on a Ray address nothing listens at": "cannot reach 127.0.0.1:",
            **{name: "must be >= 0, not -" for name in LOSS_WEIGHTS if "negative" in name},
            "train fast style size below the loss network's": "is 8×8 px here, below vgg16-hed's minimum of 32 px",
            "gan critic scales below 16 px": "--scales 3 halves a --size 32 crop to 8 px at the coarsest, below the "
                                             "critic's 16: use at most 2 or a larger --size",
            "train fast critic scales below 16 px": "--scales 9 halves a --size 32 crop to 1 px",
            "batch manifest with a method column": "'method' column, but the method is the job's",
            "batch manifest with a column twice": "more than one 'content' column",
            "batch manifest without rows": "has no rows",
            **{name: "the output path is empty" for name in ("output empty", "video output empty",
                                                             "export output empty")},
            **{name: "is empty: give" for name in ("folder output empty", "batch output empty", "train out empty")},
            "an onnx graph run by torch": "graph.ONNX is an exported ONNX graph: run it with --runtime onnx",
            "weights run by onnx": "net.safetensors holds weights, not an ONNX graph: run it with --runtime torch",
            "batch with a model no row can load": "unknown fast model 'nope'",
            "batch without the model its method needs": "--method fast needs --model",
            "batch style missing": "image not found",
            "video codec an audio encoder": "unknown or unavailable video codec 'aac'",
            "resume over a state.json whose step is text": "state.json's step is 'abc', not a count of steps",
            "resume over a state.json whose step is negative": "state.json's step is -5",
            "resume over a state.json whose seconds are text": "state.json's seconds are 'x', not a duration",
            "resume over a state.json whose parts are no list": "state.json's parts are 3",
            "video codec the container refuses": "the vp9 encoder cannot write a .mov video of",
            "batch style corrupt": "not an image", "batch gpus per worker nan": "--gpus-per-worker",
            **{name: "a training step of --batch-size 9999999 at --size 32 needs about"
               for name in [*RESUME, *GANS] if name.endswith("batch beyond memory")}}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind,name", CASES)
def test_bad_input_one_line_exit_2_nothing_written(files, models, tmp_path, monkeypatch, capsys, kind, name):
    monkeypatch.setenv("BRUSHWORK_HOME", str(tmp_path / "empty-cache"))
    (tmp_path / "out").mkdir()
    (Path(files["content"]).parent / "inputs").mkdir(exist_ok=True)
    (Path(files["content"]).parent / "inputs" / "x.png").write_bytes(Path(files["content"]).read_bytes())
    argv = CLASSES[kind][name](files, tmp_path, _inputs(files, tmp_path, models))
    if (tmp_path / "photos").is_dir():  # a training run refused after its data scan says only why, not what it skipped
        (tmp_path / "photos" / "notes.jpg").write_text("not a photo")
    before = _snapshot(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own checks exit through Parser.error
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("brushwork: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert "unknown option" not in err or "option" in name, err  # the case's own error, not a mistyped command
    assert EXPECTED.get(name, "") in err, err
    assert _snapshot(tmp_path) == before  # nothing new, nothing changed, nothing half-written


@pytest.mark.parametrize("method,tile", [("optimize", None), ("optimize", 1024), ("fast", None), ("fast", 1024),
                                         ("adain", None), ("gan", None), ("transformer", None)])
def test_a_size_too_large_is_refused_before_anything_is_resized_to_it_or_tiled(files, models, monkeypatch, method,
                                                                               tile):
    """The memory guard must speak first: at 300000 px the tile plans alone took 12 s, and a resize of the content to
    that size asked for 810 GB (a traceback, not an error) before the guard was asked."""
    from brushwork import SizeError, api, io, tiling
    from brushwork.methods import prepare

    def refuse_plan(*args, **kwargs):
        raise AssertionError("tiles planned for an image the guard must refuse")

    def small_resize(img, size):
        assert max(size) <= 4096, f"resized to {size}"
        return io.resize(img, size)

    monkeypatch.setattr(tiling, "plan", refuse_plan)
    monkeypatch.setattr(prepare, "resize", small_resize)
    style = None if method == "fast" else files["style_a"]
    model = {} if method == "optimize" else {"model": str(models[method])}
    with pytest.raises(SizeError, match="GiB but only"):
        api.run(files["content"], style, method=method, size=300_000, tile=tile, **model)


CPU_OUT_OF_MEMORY = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                     "tried to allocate 810000000000 bytes. Error code 12 (Cannot allocate memory)")


def test_an_allocator_that_runs_out_is_a_size_error_not_a_traceback(files, tmp_path, monkeypatch, capsys):
    """Where the guards' estimates fall short, running out of memory still ends in one line: the API and training
    raise SizeError, the command exits 2; other runtime errors are not disguised as memory errors."""
    import dataclasses

    from brushwork import SizeError, api, errors
    from brushwork.train import loop

    cuda = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of "
                                  "79.10 GiB of which 3.2 GiB is free.")
    for failure, amount in ((RuntimeError(CPU_OUT_OF_MEMORY), "754.4 GiB"), (cuda, "20.0 GiB")):
        with pytest.raises(SizeError, match=f"allocation of {amount} failed.; use less"):
            with errors.out_of_memory("use less"):
                raise failure
    with pytest.raises(RuntimeError, match="mat1"):
        with errors.out_of_memory("use less"):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    raised: list[Exception] = []

    def failing_method(name):
        def run(*args, **kwargs):
            raise raised[-1]
        return dataclasses.replace(real(name), run=run)

    real = api.get_method
    monkeypatch.setattr(api, "get_method", failing_method)
    raised.append(RuntimeError(CPU_OUT_OF_MEMORY))
    with pytest.raises(SizeError, match="ran out of memory .an allocation of 754.4 GiB failed.; use a smaller --size"):
        api.run(files["content"], files["style_a"], size=64)
    (tmp_path / "out").mkdir()
    rc = main(["stylize", *TINY, str(files["content"]), str(files["style_a"]), "-o", str(tmp_path / "out" / "o.png")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("brushwork: error: ran out of memory"), err
    assert not any((tmp_path / "out").iterdir())
    raised.append(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="mat1"):
        api.run(files["content"], files["style_a"], size=64)

    def failing_training(task, cfg):
        raise cuda
    monkeypatch.setattr(loop, "_train", failing_training)
    with pytest.raises(SizeError, match="20.0 GiB failed.; use a smaller --batch-size"):
        loop.train(None, TrainConfig())


def test_a_full_disk_while_training_is_one_line_and_keeps_the_last_checkpoint(files, tmp_path, monkeypatch, capsys):
    """safetensors reports a full disk as its own error, not an OSError: it was a traceback. The checkpoint being
    written goes, the one before it (step 1 of 2) stays."""
    import safetensors.torch

    run = tmp_path / "run"
    real = safetensors.torch.save_file

    def full_after_the_first_checkpoint(*args, **kwargs):
        if (run / "checkpoint" / "state.json").is_file():
            raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(*args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", full_after_the_first_checkpoint)
    assert main(["train", "adain", "--content-dir", str(_photos(files, tmp_path)), "--style-dir",
                 str(_photos(files, tmp_path)), "--out", str(run), *TRAIN, "--checkpoint-every", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err and "No space left on device" in err, err
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 1
    assert not (run / ".checkpoint.tmp").exists()


def test_a_loss_that_turns_non_finite_stops_the_run_and_writes_nothing(files, tmp_path, monkeypatch, capsys):
    calls = []

    def tv_turning_nan(img):
        calls.append(1)
        return img.mean() * (float("nan") if len(calls) > 3 else 0.0)

    monkeypatch.setattr(losses, "tv_loss", tv_turning_nan)
    (tmp_path / "out").mkdir()
    rc = main(["stylize", *TINY[:2], "--iterations", "8", "--scales", "1", "--quiet", str(files["content"]),
               str(files["style_a"]), "-o", str(tmp_path / "out" / "o.png")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "non-finite at iteration" in err, err
    assert not any((tmp_path / "out").iterdir())


def _adain_run(files, tmp_path, out: Path, steps: int, **kw) -> TrainConfig:
    cfg = TrainConfig(out=str(out), steps=steps, batch_size=1, size=32, short_side=48, workers=0, log_every=1,
                      checkpoint_every=2, preview_every=100, lr=1e-3, quiet=True, **kw)
    return cfg, adain_task(str(_photos(files, tmp_path)), str(_photos(files, tmp_path)), cfg)


@pytest.fixture
def steps_only(monkeypatch):
    """Tests that count the module's forward calls to act at a given step: the memory guard's probes call it too,
    before the first step, so they are left out here."""
    from brushwork.train import loop

    monkeypatch.setattr(loop, "step_bytes", lambda *args: 0)


def _weights(run: Path) -> dict:
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def test_sigterm_checkpoints_at_a_step_boundary_and_resume_continues_exactly(files, tmp_path, steps_only):
    cfg, task = _adain_run(files, tmp_path, tmp_path / "whole", 5)
    train(task, cfg)
    cfg, task = _adain_run(files, tmp_path, tmp_path / "split", 5)
    forward, seen = task.module.forward, []

    def forward_then_signal(**batch):
        seen.append(1)
        if len(seen) == 3:  # mid-step: the loop must finish this step, save it, and stop
            os.kill(os.getpid(), signal.SIGTERM)
        return forward(**batch)

    task.module.forward = forward_then_signal
    with pytest.raises(Interrupted) as stopped:
        train(task, cfg)
    assert stopped.value.signum == signal.SIGTERM and "step 3 of 5" in str(stopped.value)
    assert json.loads((tmp_path / "split" / "checkpoint" / "state.json").read_text())["step"] == 3
    cfg, task = _adain_run(files, tmp_path, tmp_path / "split", 5, resume=True)
    assert train(task, cfg)["segment_steps"] == 2
    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert all(torch.allclose(whole[k], split[k], rtol=1e-5, atol=1e-7) for k in whole)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the loop put the old handler back


def test_sigterm_on_the_command_line_exits_143_with_one_line(files, tmp_path, monkeypatch, capsys, steps_only):
    real_train = cli.train

    def train_with_sigterm(task, cfg):
        forward = task.module.forward
        task.module.forward = lambda **batch: (os.kill(os.getpid(), signal.SIGTERM), forward(**batch))[1]
        return real_train(task, cfg)

    monkeypatch.setattr(cli, "train", train_with_sigterm)
    photos = str(_photos(files, tmp_path))
    rc = main(["train", "adain", "--content-dir", photos, "--style-dir", photos, "--out", str(tmp_path / "run"),
               *TRAIN])
    err = capsys.readouterr().err
    assert rc == 143 and err.count("\n") == 1 and "stopped by SIGTERM at step 1 of 2" in err, err
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").is_file()


def test_a_training_loss_that_turns_non_finite_keeps_the_last_good_checkpoint(files, tmp_path, steps_only):
    cfg, task = _adain_run(files, tmp_path, tmp_path / "run", 6)
    forward, seen = task.module.forward, []

    def forward_turning_nan(**batch):
        seen.append(1)
        out = forward(**batch)
        return {**out, "total": out["total"] * float("nan")} if len(seen) == 3 else out

    task.module.forward = forward_turning_nan
    with pytest.raises(DivergenceError, match="non-finite by step 3; the checkpoint of step 2 is kept"):
        train(task, cfg)
    assert json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())["step"] == 2
    assert all(torch.isfinite(t).all() for t in _weights(tmp_path / "run").values())


def test_the_api_refuses_a_callback_or_output_of_the_wrong_kind_with_a_typed_error(files):
    from brushwork import api
    from brushwork.errors import ConfigError, OutputError

    with pytest.raises(ConfigError, match="callback must be a function of the step, not int"):
        api.run(files["content"], files["style_a"], callback=3, size=64, iterations=1, scales=1, quiet=True)
    with pytest.raises(OutputError, match="the output must be a file path, not NoneType"):
        api.stylize_file(files["content"], files["style_a"], None, size=64, iterations=1, scales=1, quiet=True)
