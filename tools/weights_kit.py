"""Build the release-training kit: everything a lent GPU machine needs to train every recipe in recipes/, in one
git-ignored folder that travels with the repository (`run(..., carry=["kit"])`; the tree and the kit together must
stay under 64 MiB):

  kit/data/content/   a seeded subset of the training photos, short side --short-side, JPEG
  kit/data/style/     a subset of the training paintings (adain, gan's critic, transformer)
  kit/styles/         the style image of every fast recipe, long side = its style_size
  kit/weights/        each backbone's conv weights in fp16 safetensors, cut after the deepest layer any loss reads
  kit/preview/        three benchmark photos at 256 px, which `tools/release.py collect` stylizes with each model
  kit/manifest.json   what is in it, from where, and its size

  make weights-kit                                  (the same as: python tools/weights_kit.py --out kit)
  python tools/weights_kit.py --out kit --data ../shared/data --content-mb 20 --style-mb 9

The default --max-mb is what the repository's tracked files leave of the 64 MiB (less 0.5 MiB), so that a kit
which builds also travels, with the weights committed in checkpoints/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from brushwork.backbones import create_backbone
from brushwork.backbones.vgg import save_cut_convs
from brushwork.errors import BrushworkError
from brushwork.train.recipes import deepest_loss_layer, load_recipes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_subset import pack_subset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PREVIEW_CONTENTS = ("tubingen.jpg", "golden_gate.jpg", "brad_pitt.jpg")
PREVIEW_SIDE = 256


CARRY_MIB = 64.0  # what the GPU machine takes: the tree and the carried paths together


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def tree_bytes(root: Path = ROOT) -> int:
    """The repository's tracked files, which travel beside the kit; 0 outside a git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    files = (root / name for name in listed.decode().split("\0") if name)
    return sum(f.stat().st_size for f in files if f.is_file())


def build(out: Path, data: Path, recipes_dir: Path, content_mb: float, style_mb: float, short_side: int,
          max_mb: float) -> dict:
    """Build the kit into `out` (replacing an earlier kit there) and return its manifest."""
    if out.exists() and not (out / "manifest.json").is_file() and (not out.is_dir() or any(out.iterdir())):
        raise BrushworkError(f"--out {out} holds something other than a kit, which building one would replace: "
                             f"give a new folder or an earlier kit's")
    recipes = load_recipes(recipes_dir)
    crop = max(r.crop for r in recipes)
    if short_side < crop:
        print(f"weights_kit: note: --short-side {short_side} is below the recipes' crop size {crop}: this kit "
              f"serves dry runs (`tools/release.py start --dry-run`) only", file=sys.stderr)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    manifest: dict = {"short_side": short_side, "recipes": [r.name for r in recipes], "sets": {}, "styles": {},
                      "weights": {}}
    for name, mb, needed in (("content", content_mb, True),
                             ("style", style_mb, any(r.method != "fast" for r in recipes))):
        if not needed:
            continue
        kept, usable, used = pack_subset(data / name, tmp / "data" / name, short_side, mb, quality=82)
        manifest["sets"][name] = {"source": str(data / name), "images": kept, "of": usable, "bytes": used}
    styles = {}
    for r in recipes:
        if r.method == "fast":
            side = r.model["style_size"] or r.crop
            styles[r.model["style"]] = max(styles.get(r.model["style"], 0), side)
    (tmp / "styles").mkdir(parents=True)
    for file, side in sorted(styles.items()):
        source = data / "pairs" / "style" / file
        if not source.is_file():
            raise BrushworkError(f"style image {source} (named in a recipe) not found")
        with Image.open(source) as img:
            img = img.convert("RGB")
            scale = side / max(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
            img.save(tmp / "styles" / file, quality=95)
        manifest["styles"][file] = {"source": str(source), "long_side": side}
    (tmp / "preview").mkdir(parents=True)
    for file in PREVIEW_CONTENTS:  # what `tools/release.py collect` stylizes to show each model
        source = data / "pairs" / "content" / file
        if source.is_file():
            with Image.open(source) as img:
                img = img.convert("RGB")
                img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
                img.save(tmp / "preview" / file, quality=92)
    (tmp / "weights").mkdir(parents=True)
    for backbone in sorted({r.model["backbone"] for r in recipes}):
        model = create_backbone(backbone)
        deepest = deepest_loss_layer([r for r in recipes if r.model["backbone"] == backbone], model)
        path = save_cut_convs(model, deepest, tmp / "weights" / f"{backbone}.safetensors")
        manifest["weights"][backbone] = {"file": f"weights/{path.name}", "cut_after": deepest,
                                         "bytes": path.stat().st_size}
    manifest["bytes"] = folder_bytes(tmp)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if manifest["bytes"] > max_mb * 2 ** 20:
        shutil.rmtree(tmp)
        raise BrushworkError(f"the kit would take {manifest['bytes'] / 2 ** 20:.1f} MiB, over --max-mb {max_mb:.1f}: "
                             f"lower --content-mb or --style-mb")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "kit")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="holds content/, style/ and pairs/style/")
    parser.add_argument("--recipes", type=Path, default=ROOT / "recipes")
    parser.add_argument("--content-mb", type=float, default=20.0)
    parser.add_argument("--style-mb", type=float, default=9.0)
    parser.add_argument("--short-side", type=int, default=288, help="must be at least the recipes' crop size")
    parser.add_argument("--max-mb", type=float, help="refuse a kit larger than this (default: what the tracked "
                                                      "files leave of the 64 MiB that travel, less 0.5)")
    args = parser.parse_args()
    if args.max_mb is None:
        args.max_mb = CARRY_MIB - 0.5 - tree_bytes() / 2 ** 20
    try:
        manifest = build(args.out, args.data, args.recipes, args.content_mb, args.style_mb, args.short_side,
                         args.max_mb)
    except BrushworkError as e:
        print(f"weights_kit: error: {e}", file=sys.stderr)
        return 2
    sets = ", ".join(f"{name} {s['images']} images" for name, s in manifest["sets"].items())
    print(f"{args.out}: {manifest['bytes'] / 2 ** 20:.1f} MiB ({sets}; {len(manifest['styles'])} style images; "
          f"weights {', '.join(manifest['weights'])}) for {len(manifest['recipes'])} recipes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
