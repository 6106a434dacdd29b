"""H.264 with x264's MB-tree on and off: file size, PSNR and whether the same frames give the same bytes.

  python bench/bench_encode.py [--frames 96] [--repeats 4] [--crf 18]

The frames are a pan across tubingen (../shared/data/pairs) at 852×480 with a disc crossing it and light sensor
noise, encoded `--repeats` times in one process per setting. With MB-tree on, this FFmpeg build's x264 gives
different bytes for the same frames after a process's first encode; `sample.write_clip` turns it off for the clips
tests stylize, and this table says what turning it off would cost the outputs.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from fractions import Fraction
from pathlib import Path

import torch

from brushwork import io
from brushwork.video import media, sample

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs" / "content" / "tubingen.jpg"


def encode(frames: list[torch.Tensor], path: Path, crf: int, params: str | None) -> torch.Tensor:
    """Encode with write_video, as outputs are, with x264 parameters; the decoded frames back."""
    media.write_video(iter(frames), path, Fraction(24), None, crf=crf, params=params)
    return torch.cat(list(media.read_frames(media.probe(path), tuple(frames[0].shape[-2:]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--crf", type=int, default=18)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    frames = [(f + 0.01 * torch.randn(f.shape, generator=g)).clamp(0, 1).mul(255).round().div(255)
              for f in sample.pan_frames(io.load_image(PHOTO), args.frames, (480, 852), step=2)]
    source = torch.cat(frames)
    settings = {"MB-tree on (x264's default, outputs)": None, "MB-tree off (sample clips)": "mbtree=0"}
    print(f"{args.frames} frames at 852×480, crf {args.crf}, {args.repeats} encodes each\n")
    print("| x264 | bytes | PSNR dB | distinct outputs |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in settings.items():
            outputs = []
            for k in range(args.repeats):
                path = Path(tmp) / f"{k}.mp4"
                decoded = encode(frames, path, args.crf, params)
                outputs.append(path.read_bytes())
            psnr = 10 * math.log10(1 / float(((decoded - source) ** 2).mean()))
            print(f"| {name} | {len(outputs[0]):,} | {psnr:.2f} | {len(set(outputs))} of {args.repeats} |", flush=True)


if __name__ == "__main__":
    main()
