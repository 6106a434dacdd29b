"""Batch stylization of many images, on this machine or on a Ray cluster (`brushwork batch`, `brushwork.batch`).

The input is a folder, a glob or a manifest (CSV or Parquet: a `content` column, an optional `style` column with
';' between blended styles, and any method options as further columns); every path may be on any filesystem
pyarrow opens (local, s3://, gs://). Each row gets an output named after it (CONTENT__STYLE__ID.png, where ID is a
hash of the row's inputs and options) and its sidecar, both written atomically, the sidecar last. So a restarted
job skips the rows whose sidecar exists and redoes nothing; a row that fails (a bad image) is recorded in
OUT/_errors.jsonl with its reason and never stops the job.

With `engine="ray"`, Ray Data spreads the rows over a pool of actors, each of which keeps the loaded model between
rows (GPUs when asked); with `engine="local"` the same row function runs in this process."""

from __future__ import annotations

import datetime
import fnmatch
import functools
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import api, io
from .errors import BrushworkError, ConfigError, OutputError
from .methods import get_method
from .options import from_text

ENGINES = ("local", "ray")
ERRORS = "_errors.jsonl"
MANIFEST_SUFFIXES = (".csv", ".parquet")
JOB_COLUMNS = ("method", "preset")  # a manifest's column sets a row's option; these two are the whole job's
REACH_SECONDS = 5.0  # how long a --address HOST:PORT may take to accept a connection
GCS_RETRY_SECONDS = 20  # how long a gs:// call retries before the job says it cannot reach the bucket


def _require_pyarrow():
    try:
        import pyarrow.fs as pafs
    except ImportError:
        raise ConfigError("brushwork batch needs pyarrow: pip install 'brushwork[cluster]'") from None
    return pafs


def _plain(uri: str) -> str:
    """file:// URIs as plain paths, so that a row's name does not depend on how a local file was named."""
    return uri[len("file://"):] if uri.startswith("file://") else uri


@functools.lru_cache(maxsize=16)
def _filesystem(root: str):
    """One pyarrow filesystem per scheme and bucket ("" for local files), made once per process: a job reads and
    writes thousands of files, and an object store's client is costly to make."""
    pafs = _require_pyarrow()
    if not root:
        return pafs.LocalFileSystem()
    try:
        if root.startswith("gs://"):  # the default retries for 15 minutes where no credentials or network answer
            return pafs.GcsFileSystem(retry_time_limit=datetime.timedelta(seconds=GCS_RETRY_SECONDS))
        return pafs.FileSystem.from_uri(root)[0]
    except Exception as e:  # pyarrow's own errors for unknown schemes or missing credentials
        raise ConfigError(f"cannot open {root}: {e}") from None


def _fs(uri: str):
    """(pyarrow filesystem, path within it) for a local path, a file:// URI or a remote one (s3://…, gs://…)."""
    uri = _plain(uri)
    if "://" not in uri:
        return _filesystem(""), str(Path(uri).resolve())
    scheme, path = uri.split("://", 1)
    return _filesystem(f"{scheme}://{path.split('/', 1)[0]}"), path


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


@dataclass(frozen=True)
class Row:
    """One output: a content, the styles it blends (none for methods whose model carries the style), and the
    options of this row on top of the job's."""

    content: str
    styles: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def key(self, method: str, preset: str, options: dict[str, Any]) -> str:
        """A short hash of everything that decides the output, so that a changed row gets a new name."""
        text = json.dumps([self.content, self.styles, method, preset, {**options, **self.options}], sort_keys=True,
                          default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def name(self, method: str, preset: str, options: dict[str, Any]) -> str:
        stems = "+".join(Path(s).stem for s in self.styles) or method
        return f"{Path(self.content).stem}__{stems}__{self.key(method, preset, options)}.png"


def _list_images(uri: str) -> list[str]:
    """The image files of a folder (recursively) or of a glob's matches, sorted."""
    pafs = _require_pyarrow()
    pattern = any(c in uri for c in "*?[")
    base = uri.rsplit("/", 1)[0] if pattern else uri
    fs, path = _fs(base)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.Directory:
        raise ConfigError(f"{base} is not a folder" if pattern else f"not found: {uri} (a folder, a glob or a "
                                                                      f"manifest .csv/.parquet)")
    entries = fs.get_file_info(pafs.FileSelector(path, recursive=not pattern))
    scheme = uri.split("://")[0] + "://" if "://" in uri else ""
    files = [scheme + e.path for e in entries if e.type == pafs.FileType.File
             and Path(e.path).suffix.lower() in io.IMAGE_SUFFIXES]
    if pattern:
        files = [f for f in files if fnmatch.fnmatch(Path(f).name, uri.rsplit("/", 1)[-1])]
    if not files:
        raise ConfigError(f"no images in {uri}")
    return sorted(files)


def _read_manifest(uri: str) -> list[dict[str, Any]]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    fs, path = _fs(uri)
    try:
        with fs.open_input_file(path) as f:
            table = pq.read_table(f) if uri.lower().endswith(".parquet") else pacsv.read_csv(f)
    except (OSError, ValueError) as e:  # pyarrow.ArrowInvalid is a ValueError
        raise ConfigError(f"cannot read manifest {uri}: {str(e).splitlines()[0]}") from None
    names = table.column_names
    if "content" not in names:
        raise ConfigError(f"manifest {uri} has no 'content' column")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"manifest {uri} has more than one {', '.join(repr(n) for n in twice)} column")
    job = [n for n in names if n in JOB_COLUMNS]
    if job:
        raise ConfigError(f"manifest {uri} has a {job[0]!r} column, but the {job[0]} is the job's (--{job[0]}), "
                          f"not a row's: run one job per {job[0]}")
    if table.num_rows == 0:
        raise ConfigError(f"manifest {uri} has no rows")
    return table.to_pylist()


def plan(source: str, styles: str | list[str] | None, method: str) -> list[Row]:
    """The rows of a job: a manifest's rows (each with its own style, or every --style), or every image of a
    folder or glob with every --style. Relative paths in a manifest are relative to the manifest's folder."""
    spec = get_method(method)
    source = _plain(source)
    styles = [_plain(s) for s in ([styles] if isinstance(styles, str) else styles or [])]
    takes_styles = spec.capabilities.styles
    if not takes_styles and styles:
        raise ConfigError(f"--method {method} takes no style images: its model carries its own style")
    rows: list[Row] = []
    if source.lower().endswith(MANIFEST_SUFFIXES):
        base = source.rsplit("/", 1)[0] if "/" in source else "."
        hints = typing.get_type_hints(spec.options)  # a column of mixed cells reaches us as text
        def where(p: str) -> str:
            return p if "://" in p or Path(p).is_absolute() else _join(base, p)
        for record in _read_manifest(source):
            style_text = record.pop("style", None)
            content = record.pop("content")
            options = {k: from_text(v, hints[k]) if isinstance(v, str) and k in hints else v
                       for k, v in record.items() if v is not None and v != ""}
            own = [_plain(where(s)) for s in str(style_text).split(";")] if style_text else []
            choices = [tuple(own)] if own else [(s,) for s in styles] or [()]
            rows += [Row(_plain(where(str(content))), c, options) for c in choices]
    else:
        contents = _list_images(source)
        rows = [Row(c, (s,) if s else ()) for c in contents for s in (styles or [None])]
    for style in styles:  # a job-wide style that cannot be read would fail every row: say so once, up front
        if "://" not in style:
            io.load_image(style)
    missing = [r.content for r in rows if takes_styles and not r.styles]
    if missing:
        raise ConfigError(f"--method {method} needs a style for every row; {missing[0]} has none (give --style or "
                          f"a 'style' column)")
    return rows


def _fetch(uri: str, folder: Path) -> str:
    """A local path for an input: itself when local, else a copy in `folder`."""
    if "://" not in uri:
        return uri
    fs, path = _fs(uri)
    local = folder / f"{len(list(folder.iterdir()))}_{Path(path).name}"
    with fs.open_input_stream(path) as src, local.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return str(local)


def _exists(fs, path: str) -> bool:
    pafs = _require_pyarrow()
    return fs.get_file_info(path).type == pafs.FileType.File


def _upload(local: Path, fs, path: str) -> None:
    """Copy a finished file to `path` on `fs` under a temporary name, then rename it (atomic where the
    filesystem renames atomically; object stores publish an object whole)."""
    tmp = f"{path}.tmp"
    with local.open("rb") as src, fs.open_output_stream(tmp) as dst:
        shutil.copyfileobj(src, dst)
    fs.move(tmp, path)


def process_row(row: Row, out: str, method: str, preset: str, options: dict[str, Any]) -> dict[str, Any]:
    """Stylize one row into OUT unless its sidecar is there already. Returns {"content", "output", "status" (done,
    skipped, failed), "error", "seconds"}; never raises for a bad row."""
    fs, base = _fs(out)
    name = row.name(method, preset, options)
    target = _join(base, name)
    report = {"content": row.content, "output": _join(out, name), "status": "done", "error": "", "seconds": 0.0}
    if _exists(fs, target + ".json"):
        return {**report, "status": "skipped"}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="brushwork-batch-") as tmp:
        folder = Path(tmp)
        try:
            content = _fetch(row.content, folder)
            styles = [_fetch(s, folder) for s in row.styles]
            local = folder / name
            api.stylize_file(content, styles or None, local, method=method, preset=preset,
                             **{**options, **row.options, "quiet": True})
            sidecar = io.sidecar_path(local)
            meta = json.loads(sidecar.read_text())
            meta.update({"output": report["output"], "content": row.content, "styles": list(row.styles),
                         "batch_row": row.key(method, preset, options)})
            sidecar.write_text(io.to_json(meta, indent=1))
            _upload(local, fs, target)
            _upload(sidecar, fs, target + ".json")
        except (BrushworkError, OSError, ValueError, TypeError, ArithmeticError, RuntimeError) as e:
            # a bad row, or one torch cannot run (out of memory, a number past float32): recorded; the job goes on
            return {**report, "status": "failed", "error": f"{e.__class__.__name__}: {str(e).splitlines()[0]}"}
    return {**report, "seconds": round(time.perf_counter() - started, 3)}


class _Worker:
    """A Ray Data actor: the row function, in a process that keeps each method's loaded model between rows."""

    def __init__(self, out: str, method: str, preset: str, options: dict[str, Any]):
        self.args = out, method, preset, options

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        rows = [json.loads(r) for r in batch["row"]]
        reports = [process_row(Row(r["content"], tuple(r["styles"]), r["options"]), *self.args) for r in rows]
        return {k: np.array([rep[k] for rep in reports]) for k in reports[0]}


@dataclass
class Summary:
    """What a job did: rows done, skipped (already there) and failed, its wall time and images per second."""

    rows: int
    done: int
    skipped: int
    failed: int
    seconds: float
    errors: str | None

    @property
    def images_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = (f"{self.rows} rows: {self.done} done, {self.skipped} skipped (already there), {self.failed} failed; "
                f"{self.seconds:.1f} s, {self.images_per_second:.2f} images/s")
        return text + (f"; failures in {self.errors}" if self.errors else "")


def _run_local(rows: list[Row], out: str, method: str, preset: str, options: dict, quiet: bool):
    from tqdm import tqdm

    for row in tqdm(rows, disable=quiet, unit="image", dynamic_ncols=True):
        yield process_row(row, out, method, preset, options)


def _check_reachable(address: str) -> None:
    """Refuse at once a HOST:PORT that cannot be reached: Ray itself retries such an address for ever, with a
    warning every few seconds."""
    host, sep, port = address.split("://")[-1].rpartition(":")
    if address in ("auto", "local") or not sep or not port.isdigit():
        return  # ray.init names what is wrong with an address it cannot parse
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except OSError as e:
        raise ConfigError(f"cannot join the Ray cluster at {address}: cannot reach {host}:{port} "
                          f"({e.strerror or e})") from None


def _init_quietly(init: Callable[[], Any]) -> None:
    """Run `init` (ray.init) with file descriptor 2 held back, where Ray's C++ core logs: given back if it joins;
    if it fails, its error ends with Ray's last warning (a missing auth token, say) in place of the twenty seconds
    of retries that would bury the one-line error."""
    sys.stderr.flush()
    saved, failed = os.dup(2), None
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            init()
        except (ConnectionError, RuntimeError, ValueError) as e:
            failed = e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        log = held.read().decode(errors="replace")
    if failed is None:
        sys.stderr.write(log)
        return
    said = [line.split("] ", 1)[1].split(": ", 1)[-1] for line in log.splitlines() if "] " in line]
    reason = f" (Ray's last warning: {said[-1]})" if said else ""
    raise type(failed)(str(failed).splitlines()[0] + reason) from None


def _connect_ray(address: str | None):
    """Ray, joined to the cluster at `address` (a new local one when None) unless this process already is."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'brushwork[cluster]'") from None
    if not ray.is_initialized():
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        init = functools.partial(ray.init, address=address, log_to_driver=False, include_dashboard=False,
                                 logging_level="warning")
        try:
            if address is None:  # a new local cluster: its processes inherit this stderr, so leave it as it is
                init()
            else:
                _check_reachable(address)
                _init_quietly(init)
        except (ConnectionError, RuntimeError, ValueError) as e:  # no cluster there, or a bad address
            for sig, handler in handlers.items():  # ray.init installs its own before it fails
                signal.signal(sig, handler)
            raise ConfigError(f"cannot join the Ray cluster at {address}: {str(e).splitlines()[0]}") from None
    return ray


def _run_ray(ray, rows: list[Row], out: str, method: str, preset: str, options: dict, workers: int,
             gpus_per_worker: float, batch_size: int, quiet: bool):
    ray.data.DataContext.get_current().enable_progress_bars = not quiet
    items = [{"row": json.dumps(asdict(r))} for r in rows]
    ds = ray.data.from_items(items).map_batches(
        _Worker, fn_constructor_args=(out, method, preset, options), batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=workers), num_gpus=gpus_per_worker or None,
        num_cpus=1 if not gpus_per_worker else None)
    for report in ds.iter_rows():
        yield {k: (v.item() if hasattr(v, "item") else v) for k, v in report.items()}


def batch(source: str, out: str, method: str = "optimize", styles: str | list[str] | None = None,
          preset: str = "default", engine: str = "local", address: str | None = None, workers: int = 2,
          gpus_per_worker: float = 0.0, batch_size: int = 4, quiet: bool = False, **options: Any) -> Summary:
    """Stylize every row of `source` (folder, glob or manifest) into the folder `out`; see the module's doc."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}")
    io.check_folder_named(out)
    if address is not None and engine != "ray":
        raise ConfigError("--address names a Ray cluster to join: it needs --engine ray")
    whole = all(isinstance(n, int) and not isinstance(n, bool) for n in (workers, batch_size))
    if not whole or isinstance(gpus_per_worker, bool) or not isinstance(gpus_per_worker, (int, float)):
        raise ConfigError("--workers and --batch-size must be whole numbers, --gpus-per-worker a number")
    if workers < 1 or batch_size < 1 or not 0 <= gpus_per_worker < math.inf:
        raise ConfigError("--workers and --batch-size must be at least 1, --gpus-per-worker a finite number from 0")
    rows = plan(source, styles, method)
    columns = {k: None for r in rows for k in r.options}  # None: unset, so only the names are checked
    # Unknown columns fail here and a bad cell only its row; a model no row can load is one error, not one per row.
    opts = api.resolve_options(method, preset, **{**options, **columns})
    if "model" not in columns:
        api.check_model(method, opts)
    fs, base = _fs(out)
    pafs = _require_pyarrow()
    if fs.get_file_info(base).type == pafs.FileType.File:
        raise OutputError(f"{out} is a file: give an output folder")
    ray = _connect_ray(address) if engine == "ray" else None
    fs.create_dir(base, recursive=True)
    started = time.perf_counter()
    runner = (_run_local(rows, out, method, preset, options, quiet) if ray is None else
              _run_ray(ray, rows, out, method, preset, options, workers, gpus_per_worker, batch_size, quiet))
    counts = {"done": 0, "skipped": 0, "failed": 0}
    failures = []
    for report in runner:
        counts[report["status"]] += 1
        if report["status"] == "failed":
            failures.append(report)
            if not quiet:
                print(f"brushwork: failed {report['content']}: {report['error']}", file=sys.stderr)
    errors = _join(base, ERRORS)
    if failures:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / ERRORS
            local.write_text("".join(json.dumps(f) + "\n" for f in failures))
            _upload(local, fs, errors)
    elif _exists(fs, errors):
        fs.delete_file(errors)  # an earlier run's failures were retried and all went through
    return Summary(len(rows), counts["done"], counts["skipped"], counts["failed"],
                   round(time.perf_counter() - started, 2), _join(out, ERRORS) if failures else None)
