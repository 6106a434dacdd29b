"""The release-training kit: recipes, the kit builder and a dry run of the whole release on the CPU (every recipe
trains a few steps at 64 px; collect writes fp16 files that `brushwork stylize --model FILE` loads)."""

import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from PIL import Image
from safetensors import safe_open

from brushwork.cli import main
from brushwork.errors import BrushworkError, ConfigError
from brushwork.io import save_image
from brushwork.train.recipes import group_recipes, load_recipe, load_recipes, variant

from .conftest import dots, scene, stripes

ROOT = Path(__file__).resolve().parents[1]
RELEASE_STYLES = {"starry_night", "the_scream", "la_muse", "composition_vii", "shipwreck", "impronte_d_artista",
                  "picasso_selfport1907", "en_campo_gris"}


def test_the_repo_recipes_cover_the_release():
    recipes = load_recipes(ROOT / "recipes")
    by_name = {r.name: r for r in recipes}
    assert by_name["adain-vgg16-hed"].method == "adain" and by_name["adain-vgg16-hed"].train["steps"] >= 20000
    classic = {r.name for r in recipes if r.method == "fast" and r.model["arch"] == "classic"}
    mobile = {r.name for r in recipes if r.method == "fast" and r.model["arch"] == "mobile"}
    assert classic == RELEASE_STYLES and mobile == {f"{n}-mobile" for n in RELEASE_STYLES}
    assert all(r.train["steps"] >= 20000 and r.train["batch_size"] == 8 for r in recipes if r.method == "fast")
    groups = group_recipes(recipes)
    assert sorted(len(g) for g in groups) == [1, 1, 1, 8, 8]  # adain, gan, transformer alone; fast by architecture
    gan = by_name["gan-vgg16-hed"]
    assert gan.method == "gan" and gan.model["init"] == "adain-vgg16-hed" and 5000 <= gan.train["steps"] <= 10000
    assert gan.model["gan_loss"] == "wgan-gp" and gan.file_stem == "gan-vgg16-hed"
    transformer = by_name["transformer-small"]
    assert transformer.method == "transformer" and transformer.model["config"] == "small"
    assert transformer.train["warmup"] > 0 and transformer.train["precision"] == "bf16-mixed"
    assert by_name["starry_night"].file_stem == "fast-starry_night"


def test_recipe_mistakes_are_config_errors(tmp_path):
    bad = {"method = 'cyclegan'\nname = 'x'": "method must be one of",
           "method = 'fast'\nname = 'x'\n[model]\nstyle = 'a.jpg'\ncolour = 1": "unknown keys model.colour",
           "method = 'fast'\nname = 'x'": "needs model.style",
           "method = 'fast'\nname = 'x'\n[model]\nstyle = 'a.jpg'\nlayers = 'deep'": "model.layers must be one of",
           "method = 'adain'\nname = 'x'\n[train]\nsteps = 0": "--steps must be at least 1",
           "method = 'adain'\nname = 'a b'": "name must be",
           "method = [": "cannot read recipe"}
    for i, (text, message) in enumerate(bad.items()):
        path = tmp_path / f"r{i}.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_recipe(path)
    with pytest.raises(ConfigError, match="no recipe named nope"):
        load_recipes(ROOT / "recipes", ["nope"])


def test_a_variant_changes_one_setting_and_trains_beside_its_siblings():
    recipes = load_recipes(ROOT / "recipes")
    base = next(r for r in recipes if r.name == "starry_night")
    low = variant(base, "starry_night-sw1", {"style_weight": "1.0"})
    assert low.model["style_weight"] == 1.0 and base.model["style_weight"] == 30.0
    assert low.group_key == base.group_key
    paper = variant(base, "starry_night-johnson", {"layers": '"johnson"'})
    assert paper.group_key != base.group_key  # one process computes one set of loss layers
    longer = variant(base, "starry_night-long", {"steps": "9000"})
    assert longer.train["steps"] == 9000 and longer.group_key != base.group_key
    with pytest.raises(ConfigError, match="no setting 'colour'"):
        variant(base, "v", {"colour": "1"})


def _tool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_kit(tmp_path_factory):
    """A kit built by tools/weights_kit.py from a few synthetic images laid out like ../shared/data."""
    root = tmp_path_factory.mktemp("kit")
    data = root / "data"
    for folder in ("content", "style", "pairs/style", "pairs/content"):
        (data / folder).mkdir(parents=True)
    for i in range(4):
        save_image(scene(80, 100) * (0.6 + 0.1 * i), data / "content" / f"p{i}.jpg")
        save_image(stripes(90, 90, (1.0, 0.25 * i, 0.1)), data / "style" / f"s{i}.jpg")
    for name in RELEASE_STYLES:
        save_image(dots(70, 90, (0.1, 0.3, 1.0)), data / "pairs" / "style" / f"{name}.jpg")
    save_image(scene(60, 80), data / "pairs" / "content" / "tubingen.jpg")
    done = _tool("tools/weights_kit.py", "--out", str(root / "kit"), "--data", str(data), "--short-side", "72",
                 "--content-mb", "1", "--style-mb", "1")
    assert done.returncode == 0, done.stderr
    assert "for 19 recipes" in done.stdout and "MiB" in done.stdout
    return root / "kit"


def test_the_kit_holds_data_styles_and_cut_fp16_weights(tiny_kit):
    manifest = json.loads((tiny_kit / "manifest.json").read_text())
    assert manifest["sets"]["content"]["images"] == 4 and manifest["sets"]["style"]["images"] == 4
    assert set(manifest["styles"]) == {f"{n}.jpg" for n in RELEASE_STYLES}
    assert manifest["weights"]["vgg16-hed"]["cut_after"] == "relu4_1"  # the recipes' deepest loss layer
    with safe_open(str(tiny_kit / "weights" / "vgg16-hed.safetensors"), "pt") as f:
        keys = set(f.keys())
        assert f.get_tensor("conv1_1.weight").dtype.is_floating_point and f.get_tensor("conv4_1.weight").itemsize == 2
    assert "conv4_1.weight" in keys and "conv4_2.weight" not in keys
    assert manifest["bytes"] < 20 * 2 ** 20


def test_a_kit_is_built_only_where_there_is_none_or_an_earlier_kit(tmp_path):
    spec = importlib.util.spec_from_file_location("weights_kit", ROOT / "tools" / "weights_kit.py")
    kit_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kit_tool)
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(BrushworkError, match="holds something other than a kit"):
        kit_tool.build(home, tmp_path / "data", ROOT / "recipes", 1, 1, 72, 20)
    assert (home / "thesis.tex").read_text() == "years of work"


@pytest.fixture(scope="module")
def dry_release(tiny_kit, tmp_path_factory) -> Path:
    """The whole release trained for a few steps (start --dry-run), collected and unpacked: ROOT/{out,models,logs}.
    Tests that change what it made work on copies."""
    root = tmp_path_factory.mktemp("release")
    work, out = root / "work", root / "out"
    started = _tool("tools/release.py", "--work", str(work), "start", "--kit", str(tiny_kit), "--dry-run", "--wait")
    assert started.returncode == 0, started.stdout + started.stderr
    assert started.stdout.count("finished") == 5 and "4/4" in started.stdout
    collected = _tool("tools/release.py", "--work", str(work), "collect", "--out", str(out), "--preview-size", "64")
    assert collected.returncode == 0, collected.stderr
    unpacked = _tool("tools/release.py", "unpack", str(out), "--models", str(root / "models"), "--logs",
                     str(root / "logs"))
    assert unpacked.returncode == 0, unpacked.stderr
    return root


def test_the_release_dry_run_trains_every_recipe_and_collects_loadable_fp16_models(dry_release, tmp_path):
    out, models, logs = dry_release / "out", dry_release / "models", dry_release / "logs"
    tars = sorted(out.glob("release-*.tar"))
    assert 1 <= len(tars) <= 8 and all(t.stat().st_size <= 16 * 2 ** 20 for t in tars)  # what $OUT brings back
    assert sum(len(tarfile.open(t).getnames()) for t in tars) == 19 * 4 + 5 + 1  # model, moments, csv, png; logs…
    assert len(list(logs.glob("*.moments.safetensors"))) == 19
    assert not list(models.glob("*.moments.*"))  # an optimizer's moments are never shipped as a model
    shipped = sorted(p.name for p in models.glob("*.safetensors"))
    assert len(shipped) == 19 and {"adain-vgg16-hed.safetensors", "gan-vgg16-hed.safetensors",
                                   "transformer-small.safetensors"} <= set(shipped)
    assert "fast-starry_night.safetensors" in shipped and "fast-starry_night-mobile.safetensors" in shipped
    for name in ("fast-the_scream.metrics.csv", "fast-the_scream-mobile.preview.png", "adain-vgg16-hed.preview.png",
                 "gan-vgg16-hed.preview.png", "transformer-small.preview.png"):
        assert (logs / name).is_file(), name
    assert Image.open(logs / "adain-vgg16-hed.preview.png").width == 6 * 64  # photo, 4 styles, alpha 0
    gan_log = (logs / "gan-vgg16-hed.log.txt").read_text()  # the gan run fine-tuned the adain run's decoder
    assert "waiting for adain-vgg16-hed" in gan_log and "adain-vgg16-hed.safetensors" in gan_log
    gan_rows = (logs / "gan-vgg16-hed.metrics.csv").read_text().splitlines()
    assert {"adv", "critic", "gp", "wasserstein"} <= set(gan_rows[0].split(","))
    with safe_open(str(models / "gan-vgg16-hed.safetensors"), "pt") as f:
        assert f.metadata()["init"] == "adain-vgg16-hed.safetensors" and f.metadata()["method"] == "gan"
        assert not any("critic" in k or k.startswith("nets.") for k in f.keys())
    rows = (logs / "fast-the_scream.metrics.csv").read_text().splitlines()
    assert rows[0] == "step,lr,seconds_per_step,content,style,tv" and len(rows) == 5
    with safe_open(str(models / "fast-la_muse-mobile.safetensors"), "pt") as f:
        meta = f.metadata()
        assert all(f.get_tensor(k).itemsize == 2 for k in f.keys())
    assert meta["arch"] == "mobile" and meta["steps"] == "4" and meta["recipe"] == "fast-la_muse-mobile.toml"
    assert meta["style"] == "la_muse.jpg" and meta["hardware"].startswith("cpu")
    assert meta["style_size"] == "128"  # the recipe's 512 px for 256 px crops, scaled to the dry run's 64 px
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    save_image(scene(40, 56), photo)
    save_image(stripes(40, 40, (1, 0.2, 0.1)), painting)
    for model, styles in ((models / "fast-la_muse-mobile.safetensors", []),
                          (models / "fast-shipwreck.safetensors", []),
                          (models / "adain-vgg16-hed.safetensors", [str(painting)]),
                          (models / "gan-vgg16-hed.safetensors", [str(painting)]),
                          (models / "transformer-small.safetensors", [str(painting)])):
        method = model.name.split("-")[0]
        target = tmp_path / f"{model.stem}.png"
        assert main(["stylize", str(photo), *styles, "-o", str(target), "--method", method, "--model", str(model),
                     "--size", "48", "--quiet"]) == 0
        assert target.is_file()


def test_a_stopped_release_keeps_partial_weights_back(tiny_kit, tmp_path):
    out, tool = tmp_path / "out", str(ROOT / "tools" / "release.py")
    started = _tool(tool, "--work", "work", "start", "--kit", str(tiny_kit), "--dry-run",  # a relative --work
                    "--only", "starry_night-mobile", "--time-limit", "0.001", "--wait", cwd=tmp_path)
    assert started.returncode == 0 and "stopped" in started.stdout, started.stdout + started.stderr
    assert _tool(tool, "--work", "work", "collect", "--out", str(out), "--preview-size", "0",
                 cwd=tmp_path).returncode == 0
    models = tmp_path / "models"
    unpacked = _tool("tools/release.py", "unpack", str(out), "--models", str(models), "--logs", str(tmp_path / "l"))
    assert "kept back fast-starry_night-mobile.partial.safetensors" in unpacked.stdout
    assert not list(models.glob("*.safetensors"))


@pytest.fixture
def refusal(monkeypatch, capsys):
    """tools/release.py refusing ARGS, in this process (each as a subprocess cost 3 s of imports): its exit
    message."""
    spec = importlib.util.spec_from_file_location("release_tool", ROOT / "tools" / "release.py")
    release = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(release)

    def refuse(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["release.py", *args])
        with pytest.raises(SystemExit) as stopped:
            release.main()
        assert stopped.value.code not in (0, None)
        return f"{stopped.value.code} {capsys.readouterr().err}"
    return refuse


def test_start_and_collect_refuse_mistakes_before_touching_anything(tiny_kit, tmp_path, refusal):
    start = ("--work", str(tmp_path / "w"), "start", "--kit", str(tiny_kit))
    for bad, message in (("colour=1", "KEY a loop setting"), ("steps=many", "steps takes an integer"),
                         ("lr", "KEY a loop setting")):
        assert message in refusal(*start, "--set", bad)
    assert "no such folder" in refusal(*start, "--continue-from", str(tmp_path / "nowhere"))
    assert "reads vgg16-hed's relu4_3, past the kit's cut after relu4_1" in refusal(
        *start, "--only", "starry_night", "--variant", 'paper=starry_night:layers="johnson"', "--dry-run")
    assert not list((tmp_path / "w").glob("runs/*/log.txt"))  # no run was started
    assert "--preview-size -1: give a side in px" in refusal("--work", str(tmp_path / "w"), "collect", "--out",
                                                             str(tmp_path / "o"), "--preview-size", "-1")
    assert "no runs in" in refusal("--work", str(tmp_path / "w"), "collect", "--out", str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()
    home = tmp_path / "home"  # --work given a folder of the user's own: a new release would empty it
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    assert "holds other files (thesis.tex)" in refusal("--work", str(home), "start", "--kit", str(tiny_kit))
    assert (home / "thesis.tex").read_text() == "years of work"
    assert "holds no release-*.tar nor release/" in refusal("unpack", str(tmp_path / "nowhere"), "--logs",
                                                            str(tmp_path / "logs"))
    assert not (tmp_path / "logs").exists()


def test_a_release_continues_from_collected_weights_at_their_step(dry_release, tiny_kit, tmp_path, refusal):
    earlier = tmp_path / "earlier"  # two of the dry run's models with their moments, at step 4
    earlier.mkdir()
    for name in ("starry_night", "la_muse"):
        for kind in ("safetensors", "moments.safetensors"):
            shutil.copy(dry_release / "logs" / f"fast-{name}-mobile.{kind}", earlier)
    only = ("--only", "starry_night-mobile", "la_muse-mobile")
    second = tmp_path / "second"
    started = _tool("tools/release.py", "--work", str(second), "start", "--kit", str(tiny_kit), "--dry-run", *only,
                    "--set", "steps=6", "--continue-from", str(earlier), "--wait")
    assert started.returncode == 0 and "finished" in started.stdout and "6/6" in started.stdout, started.stdout
    log = (second / "runs" / "fast-mobile" / "log.txt").read_text()
    assert "continuing from step 4 (" in log and "with their optimizer's second moments" in log, log
    spec = json.loads((second / "runs" / "fast-mobile" / "group.json").read_text())
    assert spec["settle"] == 0 and spec["overrides"]["steps"] == 6 and "weights only" not in started.stdout
    rows = (second / "runs" / "fast-mobile" / "train" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["5", "6"]  # the steps before were not trained again
    with safe_open(str(second / "runs" / "fast-mobile" / "train" / "fast-la_muse-mobile.safetensors"), "pt") as f:
        assert f.metadata()["steps"] == "6"
    (earlier / "fast-la_muse-mobile.moments.safetensors").unlink()  # weights alone: a fresh Adam, settled first
    bare = tmp_path / "bare"
    started = _tool("tools/release.py", "--work", str(bare), "start", "--kit", str(tiny_kit), "--dry-run", *only,
                    "--set", "steps=5", "--set", "log_every=2", "--continue-from", str(earlier), "--wait")
    assert started.returncode == 0 and "weights only" in started.stdout, started.stdout
    spec = json.loads((bare / "runs" / "fast-mobile" / "group.json").read_text())
    assert spec["overrides"]["steps"] == 5 and spec["overrides"]["log_every"] == 2
    assert spec["settle"] == 2 and "weights only, 2 settling steps" in (bare / "runs" / "fast-mobile" /
                                                                        "log.txt").read_text()
    (earlier / "fast-la_muse-mobile.safetensors").unlink()
    assert "not fast-la_muse-mobile" in refusal("--work", str(tmp_path / "third"), "start", "--kit", str(tiny_kit),
                                                "--dry-run", *only, "--continue-from", str(earlier))


def test_a_loan_trains_in_nchw_only_where_the_bench_finds_it_faster(tmp_path):
    """tools/faster_layout.sh reads bench/bench_train.py's table: NCHW for the whole loan only when the classic group
    (most of a loan's FLOPs) trains at least 5% faster in it; the mobile group's rows do not decide."""
    def nchw(default: float, nchw: float | None, mobile_nchw: float = 1.0) -> bool:
        rows = ["| group | config | s / step | steps/s | images/s | TFLOP/s | peak GiB | compile s |",
                "|---|---|---|---|---|---|---|---|", f"| fast (8) | default | 0.1 | {default:.2f} | 1 | 1 | 1 |  |",
                *([f"| fast (8) | nchw | 0.1 | {nchw:.2f} | 1 | 1 | 1 |  |"] if nchw is not None else []),
                "| mobile (8) | default | 0.1 | 0.50 | 1 | 1 | 1 |  |",
                f"| mobile (8) | nchw | 0.1 | {mobile_nchw:.2f} | 1 | 1 | 1 |  |"]
        table = tmp_path / "bench.txt"
        table.write_text("torch 2.13.0, a GPU\n\n" + "\n".join(rows) + "\n")
        return subprocess.run(["bash", str(ROOT / "tools" / "faster_layout.sh"), str(table)]).returncode == 0
    assert nchw(7.5, 8.0) and nchw(7.5, 12.25)
    assert not nchw(7.5, 7.8) and not nchw(7.5, 6.0, mobile_nchw=9.0) and not nchw(7.5, None)
