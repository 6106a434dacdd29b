"""`brushwork ui`: a local web page (Gradio) that does what `brushwork stylize` does for one image, and shows the
work as it happens: the optimize method's current image every few iterations, a Stop button that keeps it, then the
result with its settings, downloads and a before/after slider.

One job runs at a time (Gradio's queue), so several tabs do not overload a small machine. Uploads go to a private
temporary folder, are capped in size and read by brushwork.io (which refuses non-images and decompression bombs
with a message); results are written there too. The server binds to 127.0.0.1 unless told otherwise."""

import dataclasses
import json
import math
import os
import queue
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import api, io
from .errors import BrushworkError, ConfigError
from .methods import MethodSpec, get_method, method_names

MAX_STYLES = 4
PREVIEW_EVERY = 5  # optimize iterations between live previews
MAX_UPLOAD_MB = 20


def _gradio():
    try:
        import gradio as gr
    except ImportError:
        raise ConfigError("the web interface needs gradio: pip install 'brushwork[ui]'") from None
    return gr


def unavailable(spec: MethodSpec) -> str | None:
    """Why a method cannot run without a model file the user gives, or None when it can."""
    if spec.models is None or any(p.is_file() for p in spec.models.shipped().values()):
        return None
    return f"no {spec.name} model ships in this version (training needs a GPU): give a model file to use it"


def method_controls(name: str, model_file: str | None) -> dict[str, Any]:
    """Which controls a method shows, and whether Stylize can run: {"presets", "style_weight" (its first preset's,
    None for a method without one), "alpha", "model", "styles", "masks", "colors", "note", "ready"}."""
    spec = get_method(name)
    fields = {f.name for f in dataclasses.fields(spec.options)}
    reason = unavailable(spec) if not model_file else None
    return {"presets": list(spec.presets), "style_weight": preset_style_weight(name, next(iter(spec.presets))),
            "alpha": "alpha" in fields, "model": spec.models is not None, "styles": spec.capabilities.styles,
            "masks": spec.capabilities.masks, "colors": ["none", *spec.capabilities.color_modes],
            "note": reason or spec.description, "ready": reason is None}


def preset_style_weight(name: str, preset: str) -> float | None:
    """The style weight a method's preset runs with, where the slider starts (it is always sent, so it must follow
    the preset: `fast` runs at another weight than `default`); None for a method without one."""
    spec = get_method(name)
    defaults = {f.name: f.default for f in dataclasses.fields(spec.options)}
    if "style_weight" not in defaults:
        return None
    return spec.presets.get(preset, {}).get("style_weight", defaults["style_weight"])


def editor_mask(value: dict | None) -> torch.Tensor | None:
    """A mask painted in Gradio's image editor: where any layer has paint (alpha > 0), as 1×1×H×W; None when
    nothing is painted."""
    if not value or not value.get("layers"):
        return None
    alpha = sum(np.asarray(layer)[..., 3].astype(np.float32) for layer in value["layers"] if layer is not None)
    if np.ndim(alpha) != 2 or float(np.max(alpha)) <= 0:
        return None
    return torch.from_numpy((alpha > 0).astype(np.float32))[None, None]


def _number(value: float | None, what: str) -> float:
    """A control's value as a finite number: a cleared field arrives as None, and a typed one can be anything."""
    if value is None or not math.isfinite(value):
        raise ConfigError(f"{what} must be a number, not {'empty' if value is None else value}")
    return float(value)


def _load(path: str | None, what: str) -> torch.Tensor:
    if not path:
        raise ConfigError(f"give {what}")
    return io.load_image(path)


class App:
    """The page and its jobs. `work` is the private temporary folder for uploads and results."""

    def __init__(self, styles_dir: str | None = None, work: Path | None = None):
        self.work = work or Path(tempfile.mkdtemp(prefix="brushwork-ui-"))
        self.styles_dir = Path(styles_dir) if styles_dir else None
        self.stops: dict[str, threading.Event] = {}

    def gallery(self) -> list[str]:
        """The style images of --styles, for picking."""
        if self.styles_dir is None:
            return []
        return [str(p) for p in sorted(self.styles_dir.iterdir()) if p.suffix.lower() in io.IMAGE_SUFFIXES]

    def options(self, method: str, preset: str, size: float, style_weight: float, alpha: float, color: str,
                seed: float, model_file: str | None, blends: list[float], n_styles: int) -> dict[str, Any]:
        """The keyword options of api.stylize for the page's controls."""
        controls = method_controls(method, model_file)
        if not controls["ready"]:
            raise ConfigError(controls["note"])
        options: dict[str, Any] = {"method": method, "preset": preset, "size": int(_number(size, "the size")),
                                   "seed": int(_number(seed, "the seed")), "quiet": True}
        if controls["style_weight"] is not None:
            options["style_weight"] = _number(style_weight, "the style weight")
        if controls["alpha"]:
            options["alpha"] = _number(alpha, "alpha")
        if color != "none":
            options["preserve_color"] = color
        if model_file:
            options["model"] = model_file
        if n_styles > 1:
            options["style_blend"] = [_number(b, f"the blend weight of style {i + 1}") for i, b in
                                      enumerate(blends[:n_styles])]
        return options

    def run(self, content: str | None, styles: list[str], masks: list[dict | None], options: dict[str, Any],
            stop: threading.Event, mask_files: list[str] | None = None):
        """Stylize in a worker thread; yields ("progress", step, total, image) while optimize iterates, then
        ("done", output path, sidecar, Result) or ("error", message). Masks: uploaded files (one per style), else
        those painted in the editors."""
        events: queue.Queue = queue.Queue()
        method = get_method(options["method"])
        _load(content, "a content image")  # a bad upload is refused before a job starts
        style_t = [_load(s, "a style image") for s in styles] if method.capabilities.styles else []
        if method.capabilities.styles and not style_t:
            raise ConfigError("give at least one style image")
        if mask_files:
            mask_t = [io.load_mask(m) for m in mask_files]
        else:
            painted = [editor_mask(m) for m in masks[:len(style_t)]] if method.capabilities.masks else []
            mask_t = painted if painted and all(m is not None for m in painted) else None
            if painted and mask_t is None and any(m is not None for m in painted):
                raise ConfigError("paint a mask for every style, or for none")
        job = Path(tempfile.mkdtemp(dir=self.work, prefix="job-"))
        out = job / "brushwork.png"

        def callback(step) -> bool:
            if step.step % PREVIEW_EVERY == 0 or step.step == step.total:
                events.put(("progress", step.step, step.total, step.image.detach().clamp(0, 1).cpu()))
            return stop.is_set()

        def work() -> None:
            try:
                result = api.stylize_file(content, styles if style_t else None, out, masks=mask_t,
                                          callback=callback, **options)
                events.put(("done", str(out), json.loads(io.sidecar_path(out).read_text()), result))
            except BrushworkError as e:
                events.put(("error", str(e)))
            except Exception as e:  # shown in the page as one line; the server log keeps the traceback
                events.put(("error", f"{e.__class__.__name__}: {e}"))
                raise

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        while True:
            event = events.get()
            yield event
            if event[0] in ("done", "error"):
                break
        thread.join()


def _to_numpy(image: torch.Tensor) -> np.ndarray:
    return (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def build(app: App):
    """The Gradio page for `app`."""
    gr = _gradio()
    names = method_names()
    choices = [(f"{n} (needs a model file)" if unavailable(get_method(n)) else n, n) for n in names]
    first = method_controls("optimize", None)

    with gr.Blocks(title="brushwork") as page:
        gr.Markdown("# brushwork\nPaint a photo in the style of a painting. Upload a photo and one or more "
                    "paintings, choose a method, press **Stylize**.")
        chosen = gr.State([])
        with gr.Row():
            with gr.Column():
                content = gr.File(label="Content (photo)", file_types=["image"], elem_id="content")
                preview = gr.Image(label="Content", type="filepath", interactive=False, height=200)
                uploads = gr.File(label="Style images (paintings)", file_count="multiple", file_types=["image"],
                                  elem_id="styles")
                picks = gr.Gallery(value=app.gallery(), label="Or pick styles: click to add", columns=6,
                                   height=160, allow_preview=False, visible=bool(app.gallery()))
                shown = gr.Gallery(label="Styles in use", columns=6, height=120, allow_preview=False)
                clear = gr.Button("Clear picked styles", size="sm")
                blends = [gr.Slider(0, 1, 1.0, step=0.05, label=f"Blend weight, style {i + 1}", visible=False)
                          for i in range(MAX_STYLES)]
                with gr.Accordion("Masks: where each style goes (optional)", open=False):
                    masks = [gr.ImageEditor(label=f"Paint the region of style {i + 1}", type="numpy", sources=[],
                                            layers=False, visible=i == 0) for i in range(MAX_STYLES)]
                    mask_files = gr.File(label="Or upload masks: one image per style, in order (white = the style)",
                                         file_count="multiple", file_types=["image"])
            with gr.Column():
                method = gr.Dropdown(choices, value="optimize", label="Method", elem_id="method")
                note = gr.Markdown(first["note"], elem_id="method-note")
                model_file = gr.File(label="Model file (.safetensors or exported .onnx)", visible=False,
                                     file_types=[".safetensors", ".onnx"])
                preset = gr.Dropdown(first["presets"], value="default", label="Preset", elem_id="preset")
                size = gr.Slider(64, 2048, 512, step=16, label="Size (long side, px)", elem_id="size")
                style_weight = gr.Slider(0.1, 400, first["style_weight"], step=0.1, label="Style weight",
                                         elem_id="style-weight")
                alpha = gr.Slider(0, 1, 1.0, step=0.05, label="Alpha (style strength)", visible=False)
                color = gr.Radio(first["colors"], value="none", label="Preserve colour")
                seed = gr.Number(0, precision=0, label="Seed")
                with gr.Row():
                    go = gr.Button("Stylize", variant="primary", elem_id="stylize")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                status = gr.Markdown("", elem_id="status")
        with gr.Row():
            result = gr.Image(label="Result", type="filepath", interactive=False, elem_id="result")
            compare = gr.ImageSlider(label="Before / after", type="filepath", interactive=False)
        with gr.Row():
            files = gr.File(label="Downloads", file_count="multiple", interactive=False)
            sidecar = gr.JSON(label="Settings (the sidecar)")

        def styles_in_use(picked: list[str], uploaded: list[str] | None) -> list[str]:
            return [*(uploaded or []), *picked][:MAX_STYLES]

        def refresh_styles(picked: list[str], uploaded: list[str] | None):
            used = styles_in_use(picked, uploaded)
            return [used, *[gr.update(visible=len(used) > 1 and i < len(used)) for i in range(MAX_STYLES)],
                    *[gr.update(visible=i < max(1, len(used))) for i in range(MAX_STYLES)]]

        def pick(picked: list[str], evt: gr.SelectData):
            path = app.gallery()[evt.index]
            return picked if path in picked else [*picked, path]

        def on_method(name: str, model: str | None):
            c = method_controls(name, model)
            weight = c["style_weight"]
            slider = gr.update(visible=False) if weight is None else gr.update(visible=True, value=weight)
            return (gr.update(value=c["note"]), gr.update(visible=c["model"]),
                    gr.update(choices=c["presets"], value=c["presets"][0]), slider,
                    gr.update(visible=c["alpha"]), gr.update(choices=c["colors"], value="none"),
                    gr.update(interactive=c["ready"]), gr.update(visible=c["styles"]))

        def on_preset(name: str, chosen_preset: str):
            weight = preset_style_weight(name, chosen_preset)
            return gr.skip() if weight is None else gr.update(value=weight)

        def on_content(path: str | None):
            """Read the upload with brushwork's own checks (not an image, too large, a decompression bomb: one
            message in the page), then show it and put it under the mask editors."""
            if path:
                try:
                    io.load_image(path)
                except BrushworkError as e:
                    gr.Warning(str(e))
                    return [None] * (MAX_STYLES + 1)
            return [path] * (MAX_STYLES + 1)

        def request_stop(request: gr.Request):
            app.stops.setdefault(request.session_hash, threading.Event()).set()
            return "Stopping: the current image will be kept…"

        def stylize(v: dict, request: gr.Request, progress=gr.Progress()):
            """`v`: every input component's value, by component."""
            stop_event = app.stops[request.session_hash] = threading.Event()
            used = styles_in_use(v[chosen], v[uploads])
            content_path = v[content]
            try:
                options = app.options(v[method], v[preset], v[size], v[style_weight], v[alpha], v[color], v[seed],
                                      v[model_file], [v[b] for b in blends], len(used))
                for event in app.run(content_path, used, [v[m] for m in masks], options, stop_event,
                                     v[mask_files]):
                    if event[0] == "progress":
                        _, step, total, image = event
                        progress((step, total), desc="Iterations", unit="it")
                        yield (_to_numpy(image), gr.skip(), gr.skip(), gr.skip(),
                               f"Iteration {step} of {total}")
                    elif event[0] == "error":
                        raise gr.Error(event[1], print_exception=False)
                    else:
                        _, path, meta, res = event
                        sidecar_file = str(io.sidecar_path(Path(path)))
                        stopped = res.details.get("stopped_at")
                        done = (f"Stopped at iteration {stopped}: this is the image so far." if stopped else
                                f"Done in {meta['seconds']['total']:.1f} s.")
                        yield (path, (content_path, path), [path, sidecar_file], meta, done)
            except BrushworkError as e:
                raise gr.Error(str(e), print_exception=False) from None

        uploads.change(refresh_styles, [chosen, uploads], [shown, *blends, *masks])
        picks.select(pick, [chosen], [chosen]).then(refresh_styles, [chosen, uploads], [shown, *blends, *masks])
        clear.click(lambda: [], None, [chosen]).then(refresh_styles, [chosen, uploads], [shown, *blends, *masks])
        method.change(on_method, [method, model_file],
                      [note, model_file, preset, style_weight, alpha, color, go, shown])
        model_file.change(on_method, [method, model_file],
                          [note, model_file, preset, style_weight, alpha, color, go, shown])
        preset.change(on_preset, [method, preset], [style_weight])
        content.change(on_content, [content], [preview, *masks])
        go.click(stylize, {content, chosen, uploads, method, preset, size, style_weight, alpha, color, seed,
                           model_file, mask_files, *blends, *masks}, [result, compare, files, sidecar, status])
        stop.click(request_stop, None, [status], queue=False)
    return page


def serve(host: str = "127.0.0.1", port: int = 7860, styles_dir: str | None = None,
          max_upload_mb: float = MAX_UPLOAD_MB, block: bool = True):
    """Start the page; returns (the Gradio app, the temporary folder) when `block` is False, and when it is True
    says where the page is once it is served, then serves until interrupted."""
    if not 0 < port < 65536 or not (math.isfinite(max_upload_mb) and max_upload_mb > 0):
        raise ConfigError("--port must be 1–65535 and --max-upload-mb a positive number")
    if styles_dir is not None and not Path(styles_dir).is_dir():
        raise ConfigError(f"--styles {styles_dir} is not a folder")
    work = Path(tempfile.mkdtemp(prefix="brushwork-ui-"))
    os.environ["GRADIO_TEMP_DIR"] = str(work / "uploads")  # uploads land in the private folder
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = App(styles_dir, work)
    page = build(app)
    page.queue(default_concurrency_limit=1)
    try:  # gradio reads a size string's number as an integer: bytes, so that 20.5 MB means 20.5
        page.launch(server_name=host, server_port=port, max_file_size=round(max_upload_mb * 2 ** 20),
                    prevent_thread_lock=True, quiet=True, show_error=True,
                    allowed_paths=[str(work), *([styles_dir] if styles_dir else [])])
    except BaseException as e:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(e, OSError):
            raise ConfigError(f"cannot serve on {host}:{port}: {e}") from None
        raise
    if not block:
        return page, work
    print(f"brushwork ui: http://{host}:{port} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        page.block_thread()
    finally:
        page.close()
        shutil.rmtree(work, ignore_errors=True)
    return page, work
