"""`brushwork ui` in a real headless Chromium (Debian's `chromium`, driven by Playwright): upload a photo and a
painting, stylize with the fast preset at 64 px, see the result; a bad upload shows a message, not a traceback;
Stop ends a run and keeps its image.
Skipped, with the reason, only where no Chromium is installed (`.ci/run` installs it)."""

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from brushwork.io import save_image

from .conftest import scene, stripes

gradio = pytest.importorskip("gradio", reason="the web interface needs brushwork[ui] (gradio)")
playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (dev extra)")
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed: apt-get install chromium "
                                                         "(.ci/run does) to run the browser test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    from brushwork import ui

    port = _free_port()
    page, work = ui.serve("127.0.0.1", port, max_upload_mb=20.5, block=False)  # a float, as the CLI passes
    yield f"http://127.0.0.1:{port}", work
    page.close()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def images(tmp_path):
    content, style, bad = tmp_path / "photo.png", tmp_path / "painting.png", tmp_path / "broken.png"
    save_image(scene(64, 64), content)  # the fast preset's backbone needs 64 px on the short side
    save_image(stripes(64, 64, (1.0, 0.2, 0.1)), style)
    bad.write_bytes(b"this is not an image")
    return content, style, bad


def ui_default_weight() -> float:
    from brushwork.methods.optimize import OptimizeOptions

    return OptimizeOptions().style_weight


def _choose(page, elem_id: str, value: str) -> None:
    """Pick a value in a Gradio dropdown by typing it."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value, exact=True).click()


def _set_number(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Enter")


def test_in_a_real_browser_the_page_stylizes_refuses_a_bad_upload_and_stops(server, browser, images):
    url, work = server
    content, style, bad = images
    page = browser.new_page()
    page.goto(url)
    page.locator("#content input[type=file]").set_input_files(str(content))
    page.locator("#styles input[type=file]").set_input_files(str(style))
    _choose(page, "preset", "fast")
    playwright.expect(page.locator("#style-weight input[type=number]")).to_have_value("3")  # the preset's weight
    _set_number(page, "size", "64")
    page.wait_for_timeout(500)  # let the uploads and settings reach the server
    page.locator("#stylize").click()
    page.locator("#result img").wait_for(timeout=120_000)
    page.locator("#status", has_text="Done").wait_for(timeout=30_000)
    assert page.locator("#result img").get_attribute("src")
    uploads = [p for p in work.rglob("*") if p.is_file()]
    assert any(p.name == "photo.png" for p in uploads) and any(p.name == "brushwork.png" for p in uploads)
    sidecar = json.loads(next(p for p in uploads if p.name == "brushwork.png.json").read_text())
    assert sidecar["preset"] == "fast" and sidecar["config"]["style_weight"] == 3.0  # as `brushwork --preset fast`
    page.locator("#content button[aria-label='Clear']").first.click()
    page.locator("#content input[type=file]").set_input_files(str(bad))
    page.get_by_text("not an image or unsupported format", exact=False).first.wait_for(timeout=30_000)
    assert "Traceback" not in page.content()
    page.locator("#content button[aria-label='Clear']").first.click()
    page.locator("#content input[type=file]").set_input_files(str(content))
    _choose(page, "preset", "default")
    playwright.expect(page.locator("#style-weight input[type=number]")).to_have_value(
        str(ui_default_weight()).removesuffix(".0"))
    _set_number(page, "size", "128")
    page.wait_for_timeout(500)
    page.locator("#stylize").click()  # a longer run, stopped once it shows its work
    page.locator("#status", has_text="Iteration").wait_for(timeout=60_000)
    page.locator("#stop").click()
    page.locator("#status", has_text="Stopped at iteration").wait_for(timeout=60_000)
    _choose(page, "method", "adain (needs a model file)")  # no decoder ships: the page says so, Stylize waits
    page.locator("#method-note", has_text="give a model file").wait_for(timeout=10_000)
    assert page.locator("#stylize").is_disabled()
    page.close()


def test_methods_without_shipped_weights_wait_for_a_model_file(models):
    from brushwork import ui

    for name in ("adain", "gan", "transformer", "fast"):
        controls = ui.method_controls(name, None)
        assert not controls["ready"] and "give a model file" in controls["note"]
        assert ui.method_controls(name, str(models.get(name, models["adain"])))["ready"]
    optimize = ui.method_controls("optimize", None)
    assert optimize["ready"] and optimize["style_weight"] and not optimize["alpha"]
    assert {"default", "fast", "quality"} <= set(optimize["presets"])
    assert ui.preset_style_weight("optimize", "fast") == 3.0 and ui.preset_style_weight("adain", "default") is None
    assert ui.preset_style_weight("optimize", "quality") == ui.preset_style_weight("optimize", "default") \
        == ui_default_weight()
    assert ui.method_controls("adain", None)["alpha"] and not ui.method_controls("fast", None)["styles"]
    with pytest.raises(ui.ConfigError, match="give a model file"):
        ui.App().options("adain", "default", 64, 1, 1, "none", 0, None, [1.0] * 4, 1)


def test_a_cleared_or_impossible_number_is_a_message_not_a_server_error():
    """A cleared Number field arrives as None (int(None) was a TypeError, which the page shows as a bare "Error")."""
    from brushwork import ui

    app = ui.App()
    for args, message in (((None, 100, 1, "none", 0), "the size must be a number, not empty"),
                          ((512, 100, 1, "none", None), "the seed must be a number, not empty"),
                          ((512, float("nan"), 1, "none", 0), "the style weight must be a number, not nan"),
                          ((float("inf"), 100, 1, "none", 0), "the size must be a number, not inf")):
        with pytest.raises(ui.ConfigError, match=message):
            app.options("optimize", "default", *args, None, [1.0] * 4, 1)
    with pytest.raises(ui.ConfigError, match="the blend weight of style 2 must be a number, not empty"):
        app.options("optimize", "default", 512, 100, 1, "none", 0, None, [1.0, None], 2)
    assert app.options("optimize", "default", 512.0, 100, 1, "none", 7.0, None, [0.7, 0.3], 2)["seed"] == 7


def test_a_job_streams_its_iterations_stops_on_request_and_keeps_the_image(images, tmp_path):
    import threading

    from brushwork import ui

    content, style, bad = images
    app = ui.App(work=tmp_path)
    options = app.options("optimize", "default", 64, 15, 1, "luminance", 3, None, [0.7, 0.3, 1, 1], 2)
    assert options["style_blend"] == [0.7, 0.3] and options["preserve_color"] == "luminance"
    options = app.options("optimize", "fast", 64, 15, 1, "none", 0, None, [1.0] * 4, 1)
    stop = threading.Event()
    events = []
    for event in app.run(str(content), [str(style)], [None] * 4, options, stop):
        events.append(event)
        if event[0] == "progress" and event[1] >= 2 * ui.PREVIEW_EVERY:
            stop.set()  # what the Stop button does
    progress = [e for e in events if e[0] == "progress"]
    assert [e[1] for e in progress] == [ui.PREVIEW_EVERY, 2 * ui.PREVIEW_EVERY]
    kind, path, sidecar, result = events[-1]
    assert kind == "done" and result.details["stopped_at"] == 2 * ui.PREVIEW_EVERY + 1
    assert Path(path).is_file() and Path(path).is_relative_to(tmp_path) and result.image.shape[-2:] == (64, 64)
    with pytest.raises(ui.BrushworkError, match="not an image"):
        next(app.run(str(bad), [str(style)], [None] * 4, options, threading.Event()))


def test_a_painted_mask_is_where_the_layers_have_paint():
    import numpy as np

    from brushwork import ui

    layer = np.zeros((6, 8, 4), dtype=np.uint8)
    layer[:, :3, 3] = 255
    mask = ui.editor_mask({"background": None, "layers": [layer], "composite": None})
    assert mask.shape == (1, 1, 6, 8) and float(mask[..., :3].min()) == 1 and float(mask[..., 3:].max()) == 0
    assert ui.editor_mask({"background": None, "layers": [np.zeros((6, 8, 4), np.uint8)]}) is None
    assert ui.editor_mask(None) is None


def test_the_ui_command_refuses_bad_settings(tmp_path, capsys):
    from brushwork.cli import main

    before = set(Path(tempfile.gettempdir()).glob("brushwork-ui-*"))
    assert main(["ui", "--styles", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip().endswith("is not a folder")  # one line: no banner before it
    for bad in (["--port", "0"], ["--max-upload-mb", "0"], ["--max-upload-mb", "nan"], ["--max-upload-mb", "inf"]):
        assert main(["ui", *bad]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert set(Path(tempfile.gettempdir()).glob("brushwork-ui-*")) == before
