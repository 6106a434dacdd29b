"""The sample clip for demos and benchmarks: a slow pan across a shared photo, a disc crossing the other way and a
tone as audio (brushwork.video.sample). Written to out/clips/ (never committed: it derives from ../shared/data).

  python bench/make_clip.py                                   # out/clips/tubingen_pan.mp4, 1920×1080, 48 frames
  python bench/make_clip.py --photo golden_gate --size 854x480 --frames 96
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brushwork import io
from brushwork.video import sample

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "pairs" / "content"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="tubingen", help="a content photo's name in ../shared/data/pairs")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--step", type=int, default=4, help="pan speed in pixels per frame")
    parser.add_argument("--rate", type=int, default=24)
    parser.add_argument("--out", help="default: out/clips/PHOTO_pan.mp4")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    photo = next(iter(sorted(PHOTOS.glob(f"{args.photo}.*"))), None)
    if photo is None:
        raise SystemExit(f"no photo named {args.photo} in {PHOTOS}")
    out = Path(args.out or ROOT / "out" / "clips" / f"{args.photo}_pan.mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = sample.pan_frames(io.load_image(photo), args.frames, (height, width), args.step,
                               disc_speed=1.5 * args.step)
    sample.write_clip(out, frames, rate=args.rate)
    print(f"wrote {out} ({width}×{height}, {args.frames} frames at {args.rate} frames/s, with a tone)")


if __name__ == "__main__":
    main()
