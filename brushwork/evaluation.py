"""Grading stylized images from files, as `brushwork eval` and the quality benchmark do: load and size-match the
images, pick a backbone that did not make them, compute every per-pair metric and the set-level scores."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import io, metrics
from .backbones import create_backbone
from .errors import ConfigError, ImageError, SizeError

Source = io.ImageLike


@dataclass
class EvalReport:
    """Per-pair rows (names and PAIR_METRICS), set-level scores, and what was used to compute them."""

    backbone: str
    made_with: list[str]
    rows: list[dict] = field(default_factory=list)
    set_scores: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"backbone": self.backbone, "made_with": self.made_with, "rows": self.rows,
                "set": self.set_scores, "notes": self.notes}


def _name(src: Source) -> str:
    return str(src) if isinstance(src, (str, os.PathLike)) else type(src).__name__


def _sidecar(output: Source) -> dict:
    """An output's JSON sidecar (`OUTPUT.json`), or {} when there is no readable one."""
    if not isinstance(output, (str, os.PathLike)):
        return {}
    try:
        sidecar = json.loads(io.sidecar_path(output).read_text())
    except (OSError, ValueError):
        return {}
    return sidecar if isinstance(sidecar, dict) else {}


def made_with(output: Source) -> str | None:
    """The backbone named in an output's sidecar, or None when there is none. Every method records it at the top
    level; older optimize sidecars had it only in their config."""
    sidecar = _sidecar(output)
    try:
        return sidecar.get("backbone") or sidecar["config"]["backbone"]
    except (KeyError, TypeError):
        return None


def seam(output_src: Source, output: torch.Tensor, content: Source | None = None,
         load: Callable[[Source], torch.Tensor] = io.load_image) -> dict | None:
    """The seam scores (metrics.seam_report) of an output made in tiles, at the seam lines its sidecar records, with
    the content (any size: resized to the output's, as stylize did; read by `load`, only for a tiled output) as the
    control for lines along its own edges; None for an output made whole, or whose size no longer matches its
    sidecar."""
    tiling = _sidecar(output_src).get("tiling")
    if not isinstance(tiling, dict) or tiling.get("size") != [output.shape[-1], output.shape[-2]]:
        return None
    guide = None
    if content is not None:
        guide = load(content)
        if guide.shape[-2:] != output.shape[-2:]:
            guide = io.resize(guide, tuple(output.shape[-2:]))
    return metrics.seam_report(output, tiling.get("rows", []), tiling.get("cols", []), tiling.get("stride", 1),
                               guide)


def _match_sizes(output: torch.Tensor, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Bring output and content to one size by downsampling the larger: upsampling would blur an image and skew
    every metric (a 512 px result graded at 1024 px scored farther from its style than the unstyled photo)."""
    def wh(t: torch.Tensor) -> str:
        return f"{t.shape[-1]}×{t.shape[-2]}"
    if output.shape[-2] * output.shape[-1] <= content.shape[-2] * content.shape[-1]:
        note = f"output is {wh(output)}, content {wh(content)}: graded at {wh(output)}, the content resized"
        return output, io.resize(content, tuple(output.shape[-2:])), note
    note = f"output is {wh(output)}, content {wh(content)}: graded at {wh(content)}, the output resized"
    return io.resize(output, tuple(content.shape[-2:])), content, note


class _Loader:
    """Loads each image once per long side it is needed at (None: as it is)."""

    def __init__(self):
        self.cache: dict[tuple[str | int, int | None], torch.Tensor] = {}

    def get(self, src: Source, long_side: int | None) -> torch.Tensor:
        key = (os.fspath(src) if isinstance(src, (str, os.PathLike)) else id(src), long_side)
        if key not in self.cache:
            img = io.load_image(src)
            if long_side is not None:
                img = io.resize(img, io.fit_long_side(*img.shape[-2:], long_side))
            self.cache[key] = img
        return self.cache[key]


def evaluate_triples(triples: list[tuple[Source, Source, Source]], backbone: str | None = None,
                     weights: str | None = None, size: int | None = None,
                     on_row: Callable[[dict], None] | None = None) -> EvalReport:
    """Grade each (output, content, style). With `size`, the content is first resized to that long side. Where
    output and content sizes differ, the larger is downsampled to the smaller; the style is resized to the
    output's long side, the scale at which stylize matched it. backbone=None picks one that made
    none of the outputs, from their sidecars. Set-level scores need at least two outputs."""
    if not triples:
        raise ConfigError("nothing to evaluate")
    if size is not None and not 1 <= size <= io.MAX_SIDE:
        raise ConfigError(f"--size must be 1 to {io.MAX_SIDE} px")
    for src in dict.fromkeys(s for triple in triples for s in triple if isinstance(s, (str, os.PathLike))):
        io.check_input_file(src)  # a mistyped name fails before any grading, not after rows of it
    used = sorted({m for m in (made_with(o) for o, _, _ in triples) if m})
    name = backbone or metrics.eval_backbone_name(used)
    report = EvalReport(backbone=name, made_with=used)
    if name in {part for u in used for part in u.split("+")}:
        report.notes.append(f"{name} also made some of these outputs: it favours them")
    model = create_backbone(name, weights)
    loader = _Loader()
    pooled_outputs, styles_seen = [], {}
    for output_src, content_src, style_src in triples:
        content = loader.get(content_src, size)
        output = io.load_image(output_src)
        seams = seam(output_src, output, content_src, lambda src: loader.get(src, None))  # one read per photo
        if output.shape[-2:] != content.shape[-2:]:
            output, content, note = _match_sizes(output, content)
            report.notes.append(f"{_name(output_src)}: {note}")
        style = loader.get(style_src, max(output.shape[-2:]))  # the scale at which stylize matched the style
        styles_seen.setdefault(_name(style_src), style)
        try:
            values = metrics.pair_metrics(output, content, style, model)
        except SizeError as e:  # which output, and what to do: the metric alone names neither
            raise SizeError(f"{_name(output_src)}: {e}; grade larger images or with another --backbone") from None
        pooled_outputs.append(values.pop("pooled"))
        row = {"output": _name(output_src), "content_image": _name(content_src), "style_image": _name(style_src),
               **{k: round(float(v[0]), 6) for k, v in values.items()},
               **(seams or {})}
        report.rows.append(row)
        if on_row:
            on_row(row)
    report.set_scores = {f"mean_{k}": round(sum(r[k] for r in report.rows) / len(report.rows), 6)
                         for k in metrics.PAIR_METRICS}
    for key in ("seam", "seam_off_edges"):
        values = [r[key] for r in report.rows if r.get(key) is not None]
        if values:
            report.set_scores[f"max_{key}"] = max(values)
    if len(triples) >= 2:
        style_feats = metrics.pooled_features(styles_seen.values(), model)
        frechet = metrics.frechet_distance(torch.cat(pooled_outputs), style_feats)
        report.set_scores.update({"outputs": len(triples), "styles": len(styles_seen),
                                  "frechet": round(frechet, 6),
                                  "art_fid": round(metrics.art_fid(report.set_scores["mean_lpips_unweighted"],
                                                                   frechet), 6)})
    return report


def evaluate(outputs: Source | list[Source], content: Source, style: Source, backbone: str | None = None,
             weights: str | None = None, size: int | None = None) -> EvalReport:
    """Grade one output, or several made from the same content and style (then with set-level scores too)."""
    outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return evaluate_triples([(o, content, style) for o in outs], backbone, weights, size)


def _by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in io.IMAGE_SUFFIXES}


def pair_triples(pairs_dir: str | os.PathLike, outputs: list[str | os.PathLike] | None = None
                 ) -> list[tuple[Path, Path, Path]]:
    """(output, content, style) for every output image named CONTENT__STYLE, where CONTENT and STYLE are file
    stems in `pairs_dir`/content and `pairs_dir`/style. `outputs` are image files or folders of them (default:
    `pairs_dir` itself)."""
    root = Path(pairs_dir)
    contents, styles = _by_stem(root / "content"), _by_stem(root / "style")
    files: list[Path] = []
    for entry in (outputs or [root]):
        path = Path(entry)
        if path.is_dir():
            files.extend(_by_stem(path).values())
        elif path.is_file():
            files.append(path)
        else:
            raise ImageError(f"output not found: {path}")
    triples = []
    for path in files:
        parts = path.stem.split("__")
        match = next(((contents[c], styles[s]) for i in range(1, len(parts))
                      if (c := "__".join(parts[:i])) in contents and (s := "__".join(parts[i:])) in styles), None)
        if match is None:
            raise ImageError(f"{path}: not named CONTENT__STYLE after images in {root / 'content'} and "
                             f"{root / 'style'}")
        triples.append((path, *match))
    if not triples:
        raise ConfigError(f"no outputs in {', '.join(str(o) for o in outputs or [root])}: expected images named "
                          f"CONTENT__STYLE.png")
    return triples
