"""`brushwork batch`: folders, globs and manifests; resumable, failures recorded; a job on a local Ray cluster killed
midway and restarted finishes without redoing rows, with the same outputs as in-process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brushwork import batch, cluster
from brushwork.cli import main
from brushwork.cluster import plan
from brushwork.errors import ConfigError
from brushwork.io import load_image, save_image
from brushwork.methods.adain_model import AdaINNet, save_decoder

from .conftest import dots, scene, stripes

ray = pytest.importorskip("ray", reason="the cluster tests need brushwork[cluster] (ray)")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Ten photos and one broken file, two paintings and an (untrained) adain decoder."""
    root = tmp_path_factory.mktemp("batch")
    photos = root / "photos"
    photos.mkdir()
    for i in range(10):
        save_image(scene(48, 64).roll(6 * i, -1), photos / f"photo{i:02d}.png")
    (photos / "broken.png").write_bytes(b"not an image")
    styles = [root / "red.png", root / "blue.png"]
    save_image(stripes(64, 64, (1.0, 0.2, 0.1)), styles[0])
    save_image(dots(64, 64, (0.1, 0.2, 1.0)), styles[1])
    decoder = root / "decoder.safetensors"
    save_decoder(AdaINNet(seed=1).decoder, decoder, {"method": "adain", "backbone": "vgg16-hed"})
    return {"photos": photos, "styles": [str(s) for s in styles], "model": str(decoder), "root": root}


def _images(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.glob("*.png"))}


def test_rows_from_a_folder_a_glob_and_a_manifest(job, tmp_path):
    rows = plan(str(job["photos"]), job["styles"], "adain")
    assert len(rows) == 22 and {r.styles for r in rows} == {(s,) for s in job["styles"]}
    assert len(plan(str(job["photos"] / "photo0*.png"), job["styles"][:1], "adain")) == 10
    manifest = tmp_path / "rows.csv"
    relative = os.path.relpath(job["photos"] / "photo01.png", tmp_path)
    manifest.write_text(f"content,style,alpha,size\n{job['photos'] / 'photo00.png'},{job['styles'][0]},0.5,\n"
                        f"{relative},{job['styles'][0]};{job['styles'][1]},,80\n")
    first, second = plan(str(manifest), None, "adain")
    assert first.options == {"alpha": 0.5} and second.options == {"size": 80} and len(second.styles) == 2
    assert Path(second.content).resolve() == (job["photos"] / "photo01.png").resolve()
    assert first.name("adain", "default", {}) != first.name("adain", "default", {"size": 96})  # options in the name
    with pytest.raises(ConfigError, match="takes no style images"):
        plan(str(job["photos"]), job["styles"], "fast")
    with pytest.raises(ConfigError, match="needs a style for every row"):
        plan(str(job["photos"]), None, "adain")
    with pytest.raises(ConfigError, match="no 'content' column"):
        (tmp_path / "bad.csv").write_text("image\nx.png\n")
        plan(str(tmp_path / "bad.csv"), None, "adain")


def test_a_local_job_records_failures_and_a_rerun_redoes_nothing(job, tmp_path, capsys):
    out = tmp_path / "out"
    summary = batch(str(job["photos"]), str(out), "adain", job["styles"], model=job["model"], size=64, quiet=True)
    assert (summary.rows, summary.done, summary.failed, summary.skipped) == (22, 20, 2, 0)
    errors = [json.loads(line) for line in (out / "_errors.jsonl").read_text().splitlines()]
    assert len(errors) == 2 and all("broken.png" in e["content"] and "ImageError" in e["error"] for e in errors)
    made = _images(out)
    assert len(made) == 20 and all((out / f"{name}.json").is_file() for name in made)
    sidecar = json.loads((out / f"{next(iter(made))}.json").read_text())
    assert sidecar["content"].endswith(".png") and sidecar["styles"] and sidecar["config"]["size"] == 64
    stamps = {name: p.stat().st_mtime_ns for name, p in made.items()}
    again = batch(str(job["photos"]), str(out), "adain", job["styles"], model=job["model"], size=64, quiet=True)
    assert (again.done, again.skipped, again.failed) == (0, 20, 2)
    assert {name: p.stat().st_mtime_ns for name, p in _images(out).items()} == stamps
    assert main(["batch", str(job["photos"]), "-o", str(tmp_path / "cli"), "--method", "adain", "--style",
                 job["styles"][0], "--model", job["model"], "--size", "64", "--quiet"]) == 2
    assert "11 rows: 10 done, 0 skipped (already there), 1 failed" in capsys.readouterr().err


def test_a_manifest_cell_reads_as_its_flag_would_and_a_bad_one_fails_only_its_row(job, tmp_path):
    """A column with one cell that is no number reaches brushwork as text in every row: the cells that parse
    stylize, the one that does not fails its row with the option's name (it failed the whole job, quoting '64')."""
    photo = job["photos"] / "photo00.png"
    manifest = tmp_path / "rows.csv"
    manifest.write_text(f"content,style,size,alpha\n{photo},{job['styles'][0]},64,1\n{photo},{job['styles'][0]},abc,"
                        f"0.5\n{photo},{job['styles'][1]},64.5,\n")
    rows = plan(str(manifest), None, "adain")
    assert [r.options for r in rows] == [{"size": 64, "alpha": 1.0}, {"size": "abc", "alpha": 0.5}, {"size": "64.5"}]
    out = tmp_path / "out"
    summary = batch(str(manifest), str(out), "adain", model=job["model"], quiet=True)
    assert (summary.rows, summary.done, summary.failed) == (3, 1, 2)
    errors = [json.loads(line)["error"] for line in (out / "_errors.jsonl").read_text().splitlines()]
    assert errors == ["ConfigError: --size must be a whole number, not 'abc'",
                      "ConfigError: --size must be a whole number, not '64.5'"]


def test_a_row_torch_cannot_run_fails_alone(job, tmp_path, monkeypatch):
    """Out of memory or a number past float32 inside torch (RuntimeError, OverflowError): the row is recorded as
    failed, as a bad cell is, and the job goes on."""
    photo = job["photos"] / "photo00.png"
    for error in (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"), OverflowError("too big")):
        def fail(*args, error=error, **kwargs):
            raise error
        monkeypatch.setattr(cluster.api, "stylize_file", fail)
        report = cluster.process_row(cluster.Row(str(photo), (job["styles"][0],), {}), str(tmp_path / "out"),
                                     "adain", "default", {"model": job["model"]})
        assert report["status"] == "failed"
        assert report["error"] == f"{type(error).__name__}: {str(error).splitlines()[0]}"


def test_a_killed_ray_job_restarts_without_redoing_rows_and_makes_the_local_engines_images(job, tmp_path):
    """On a local Ray cluster (the CLI's own, two workers), with file:// paths as a cloud bucket's would be given."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "brushwork.cli", "batch", f"file://{job['photos']}", "-o", f"file://{out}",
               "--engine", "ray", "--workers", "2", "--batch-size", "1", "--style", *job["styles"], "--method",
               "adain", "--model", job["model"], "--size", "128", "--quiet"]
    env = {**os.environ, "RAY_DISABLE_IMPORT_WARNING": "1"}
    first = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.glob("*.png.json"))) < 3 and time.time() < deadline and first.poll() is None:
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)  # the driver, mid-job
    first.wait()
    settled, count = time.time(), -1
    while time.time() - settled < 3 and time.time() < deadline:  # Ray's workers finish the row in hand, then go
        now = len(list(out.glob("*.png.json")))
        settled, count = (settled, count) if now == count else (time.time(), now)
        time.sleep(0.2)
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if Path(f"{p}.json").is_file()}
    assert 3 <= len(done_before) < 20, len(done_before)
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 2, finished.stderr[-2000:]  # the broken photo's two rows
    assert f"{len(done_before)} skipped (already there), 2 failed" in finished.stderr, finished.stderr[-300:]
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert len(after) == 20 and all(after[name] == stamp for name, stamp in done_before.items())
    assert not list(out.glob("*.tmp"))
    local = batch(str(job["photos"]), str(tmp_path / "local"), method="adain", styles=job["styles"],
                  model=job["model"], size=128, quiet=True)
    assert (local.done, local.failed) == (20, 2)
    a, b = _images(tmp_path / "local"), _images(out)
    assert a.keys() == b.keys() and load_image(next(iter(b.values()))).shape == (1, 3, 96, 128)
    for name in a:
        assert float((load_image(a[name]) - load_image(b[name])).abs().max()) <= 1 / 255 + 1e-6, name
    sidecar = json.loads((out / f"{next(iter(b))}.json").read_text())
    assert sidecar["output"].startswith("file://") and sidecar["batch_row"] in sidecar["output"]
    assert not sidecar["content"].startswith("file://")  # a local file's row is named alike either way


def test_one_filesystem_serves_every_path_of_a_job(tmp_path):
    from brushwork.cluster import _fs

    fs, path = _fs(f"file://{tmp_path}/a.png")
    other, plain = _fs(str(tmp_path / "b.png"))
    assert other is fs and path == str(tmp_path / "a.png") and plain == str(tmp_path / "b.png")
    with pytest.raises(ConfigError, match="cannot open nosuchscheme://bucket"):
        _fs("nosuchscheme://bucket/x.png")


def test_joining_a_cluster_holds_rays_own_log_back_and_names_its_last_warning(capfd):
    """Ray's C++ core writes its retries to file descriptor 2, not through Python: when it fails to join, the one
    error line ends with the last of them; when it joins, what it wrote is given back."""
    from brushwork.cluster import _init_quietly

    def refused():
        for _ in range(3):
            os.write(2, b"[2026-11-28 15:12:06,691 W 3336 3336] gcs_client.cc:210: Failed to get cluster ID from GCS "
                        b"server: Unauthenticated: RPC error: InvalidAuthToken: token is missing\n")
        raise ConnectionError("Failed to connect to Ray cluster at 10.1.2.3:6379\nmore")

    with pytest.raises(ConnectionError) as caught:
        _init_quietly(refused)
    assert str(caught.value) == ("Failed to connect to Ray cluster at 10.1.2.3:6379 (Ray's last warning: Failed to "
                                 "get cluster ID from GCS server: Unauthenticated: RPC error: InvalidAuthToken: "
                                 "token is missing)")
    assert capfd.readouterr().err == ""
    _init_quietly(lambda: os.write(2, b"joined\n"))
    assert capfd.readouterr().err == "joined\n"


def test_the_python_call_takes_one_style_as_a_string_and_names_mistyped_numbers(job, tmp_path):
    common = dict(method="adain", model=job["model"], size=64, quiet=True)
    summary = batch(f"{job['photos']}/photo0[01].png", str(tmp_path / "out"), styles=job["styles"][0], **common)
    assert (summary.rows, summary.done) == (2, 2)  # one style, not one per character of its path
    with pytest.raises(ConfigError, match="--workers and --batch-size must be whole numbers"):
        batch(str(job["photos"]), str(tmp_path / "out"), styles=job["styles"], workers="2", **common)


def test_a_gs_bucket_gives_up_in_seconds_not_minutes():
    """Without credentials or network, pyarrow's GCS client retries for 15 minutes by default: a job would hang
    before saying it cannot reach the bucket."""
    fs = cluster._filesystem("gs://some-bucket")
    assert fs.__reduce__()[1][0]["retry_time_limit"].total_seconds() == cluster.GCS_RETRY_SECONDS <= 30
