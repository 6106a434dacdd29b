"""An optimize run with --checkpoint-dir that is stopped (SIGINT, SIGTERM) continues where it stopped: exactly at a
tile boundary, from the last saved iteration within a whole scale, and never from another run's file."""

import json
import os
import signal

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from brushwork import ConfigError, Interrupted
from brushwork.api import run
from brushwork.methods import resume
from brushwork.methods.optimize import OptimizeOptions

from .conftest import stripes


def _signal_at(step: int, signum: int = signal.SIGINT, seen: list | None = None):
    """A progress callback that sends this process `signum` at `step`, as Ctrl-C or a scheduler would."""
    def callback(s):
        if seen is not None:
            seen.append(s.step)
        if s.step == step:
            os.kill(os.getpid(), signum)
    return callback


def _photo(height: int, width: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([x, y, (x * 7).sin() * (y * 5).cos() * 0.5 + 0.5])[None]


TILED = dict(size=240, tile=176, scales=1, iterations=4, style_loss="gram", quiet=True, device="cpu")


def test_a_tiled_run_stopped_mid_tile_resumes_exactly_from_the_last_tile(tmp_path):
    content, style = _photo(176, 240), stripes(96, 96, (1.0, 0.2, 0.1))
    whole = run(content, style, **TILED)
    steps = whole.details["iterations"]
    assert whole.details["tiling"]["tiles"] == [2, 3] and whole.details["tiling"]["iterations_per_tile"] == 2
    with pytest.raises(Interrupted, match="run the same command again to continue"):  # the second pass's 2nd tile
        run(content, style, checkpoint_dir=str(tmp_path), callback=_signal_at(7, signal.SIGTERM), **TILED)
    [saved] = tmp_path.iterdir()
    seen: list[int] = []
    resumed = run(content, style, checkpoint_dir=str(tmp_path), callback=lambda s: seen.append(s.step), **TILED)
    assert seen == list(range(7, steps + 1))  # from the start of the fourth tile: three finished tiles are kept
    assert resumed.details["resumed"]["step"] == 6
    assert torch.equal(resumed.image, whole.image)
    assert not saved.exists()  # a finished run leaves nothing behind


@pytest.mark.parametrize("stop", [3, 6])  # within the coarse scale's 6 iterations, and at its end
def test_a_whole_scale_resumes_from_the_iteration_it_stopped_at_and_other_runs_keep_their_files(tmp_path, stop):
    content, style = _photo(96, 128), stripes(64, 64, (0.1, 0.3, 1.0))
    opts = dict(size=128, scales=2, iterations=6, quiet=True, device="cpu", checkpoint_dir=str(tmp_path))
    with pytest.raises(Interrupted):
        run(content, style, callback=_signal_at(stop), **opts)
    [saved] = tmp_path.iterdir()
    seen: list[int] = []
    run(content, style, seed=1, callback=lambda s: seen.append(s.step), **opts)  # another seed: another run
    assert seen[0] == 1 and saved.exists()
    seen.clear()
    result = run(content, style, callback=lambda s: seen.append(s.step), **opts)
    assert seen == list(range(stop + 1, 9)) and result.details["resumed"]["step"] == stop
    assert [s["size"] for s in result.details["scales"]] == [[64, 48], [128, 96]]
    assert result.details["scales"][0]["iterations"] == 6
    assert not saved.exists()


def test_a_damaged_progress_file_is_an_error_that_says_how_to_start_afresh(tmp_path):
    content, style = _photo(48, 64), stripes(64, 64, (1.0, 0.2, 0.1))
    opts = dict(size=64, scales=1, iterations=4, quiet=True, device="cpu", checkpoint_dir=str(tmp_path))
    with pytest.raises(Interrupted):
        run(content, style, callback=_signal_at(2), **opts)
    [saved] = tmp_path.iterdir()
    with safe_open(str(saved), "pt") as f:
        meta, image = json.loads(f.metadata()["brushwork.progress"]), f.get_tensor("image")
    damages = [({"seconds": "abc"}, image, "seconds must be a number"), ({"tiles": ["x"]}, image, "tiles must be"),
               ({"scale": 0.5}, image, "scale must be a whole number"), ({"done": -5}, image, "negative counts"),
               ({}, image.to(torch.int32), "a torch.int32 image")]
    for change, tensor, why in damages:
        save_file({"image": tensor}, str(saved), metadata={"brushwork.progress": json.dumps({**meta, **change})})
        with pytest.raises(ConfigError, match=f"{why}.*; delete it to start this run afresh"):
            run(content, style, **opts)
    saved.write_bytes(saved.read_bytes()[:100])
    with pytest.raises(ConfigError, match="delete it to start this run afresh"):
        run(content, style, **opts)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        run(content, style, **{**opts, "checkpoint_dir": str(tmp_path / "file")})


def test_the_fingerprint_changes_with_what_changes_the_image_and_only_with_that():
    content, style = _photo(48, 64), stripes(64, 64, (1.0, 0.2, 0.1))
    key = resume.fingerprint(content, [style], None, OptimizeOptions())
    assert key == resume.fingerprint(content.clone(), [style], None, OptimizeOptions(quiet=True, device="cuda",
                                                                                      checkpoint_dir="elsewhere"))
    assert key != resume.fingerprint(content, [style], None, OptimizeOptions(style_weight=99.0))
    assert key != resume.fingerprint(content.flip(-1), [style], None, OptimizeOptions())
