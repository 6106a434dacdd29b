"""How far a loan's fast models move a photo towards their paintings, graded by a backbone that made none of them
(efficientnet-lite0): the Gram distance of the output to the painting over the photo's own (1: nothing moved; lower
is more stylized) and the content distance to the photo, at several sizes, beside the classic optimization results
in ../shared/data/reference/ where there is one for the style. The number `tests/test_shipped.py` bounds (0.8 at
128 px), at the sizes people use.

  python bench/grade_models.py out/release-3/*.safetensors --sizes 128,256,512 [--content tubingen]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from brushwork import api, io, metrics
from brushwork.backbones import Backbone, create_backbone
from brushwork.weights import read_safetensors

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
REFERENCES = {"starry_night": "starry", "the_scream": "scream", "composition_vii": "composition_vii",
              "shipwreck": "shipwreck"}  # reference/tubingen_NAME.png, for tubingen only


def _at(image: torch.Tensor, size: int) -> torch.Tensor:
    return io.resize(image, io.fit_long_side(*image.shape[-2:], size))


def grade(out: torch.Tensor, photo: torch.Tensor, style: torch.Tensor, grader: Backbone) -> tuple[float, float]:
    """(Gram distance to the style over the photo's, content distance to the photo), all at the output's size."""
    photo = io.resize(photo, out.shape[-2:])
    ratio = metrics.gram_distance(out, style, grader).item() / metrics.gram_distance(photo, style, grader).item()
    return ratio, metrics.content_distance(out, photo, grader).item()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="fast model files")
    parser.add_argument("--sizes", default="128,256,512")
    parser.add_argument("--content", default="tubingen", help="a photo of pairs/content/")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    grader = create_backbone("efficientnet-lite0")
    photo_file = DATA / "pairs" / "content" / f"{args.content}.jpg"
    photo = io.load_image(photo_file)
    print(f"{args.content}; each cell: Gram distance to the painting / the photo's (lower: more stylized), "
          f"content distance to the photo")
    print(f"| model | step | {' | '.join(f'{s} px' for s in sizes)} |")
    print(f"|---|---|{'---|' * len(sizes)}")
    referenced = set()
    for path in args.models:
        meta = read_safetensors(path)[1]
        if meta.get("method") != "fast":
            print(f"| {path.stem} | not a fast model: skipped |")
            continue
        style = io.load_image(DATA / "pairs" / "style" / Path(meta["style"]).name)
        cells = []
        for size in sizes:
            out = api.run(str(photo_file), method="fast", model=str(path), size=size).image
            cells.append("%.2f, %.2f" % grade(out, _at(photo, size), _at(style, size), grader))
        print(f"| {path.stem} | {meta.get('steps', '?')} | {' | '.join(cells)} |", flush=True)
        ref = DATA / "reference" / f"tubingen_{REFERENCES.get(Path(meta['style']).stem, '-')}.png"
        if args.content == "tubingen" and ref.is_file() and ref not in referenced:
            referenced.add(ref)
            result = io.load_image(ref)
            cells = ["%.2f, %.2f" % grade(_at(result, size), _at(photo, size), _at(style, size), grader)
                     for size in sizes]
            print(f"| classic result, {Path(meta['style']).stem} | | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
