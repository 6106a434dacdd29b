"""Video: frames per second of each method at 480p and 1080p on this machine, and how much the consistent mode
cuts flicker (warping error, `brushwork eval --video`) against per-frame stylization.

  python bench/make_clip.py                      # the sample clip, out/clips/tubingen_pan.mp4
  python bench/bench_video.py --methods adain,fast --adain-model runs/adain-cpu-bench/adain.safetensors \
      --fast-model runs/cpu-classic/fast.safetensors --frames 24 --compare
  python bench/bench_video.py --methods optimize --sizes 480 --frames 4

Every run is a fresh process. "first s" is the first frame (optimize: the full coarse-to-fine run), "next
frames/s" the rate over the frames after it (with the flow, the warping and the frame cache), which is what a
long clip runs at. --compare also runs --per-frame and reports both warping errors, the source's beside them.
Outputs go to out/video/ (not committed).
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEIGHTS = {"480": 480, "720": 720, "1080": 1080}


def child(job: dict) -> dict:
    from brushwork.video import VideoOptions, cache_dir, evaluate_video, stylize_video

    shutil.rmtree(cache_dir(Path(job["output"])), ignore_errors=True)  # a --frames preview keeps its frames
    result = stylize_video(job["clip"], job["style"], job["output"], method=job["method"], quiet=True,
                           video=VideoOptions(**job["video"]), **job["options"])
    log = result.stats
    report = evaluate_video(job["output"], job["clip"]) if job.get("grade") else None
    return {"frames": result.frames, "size": f"{result.size[1]}×{result.size[0]}",
            "first": log["seconds"]["first_frame"], "next_fps": log["seconds"]["next_frames_per_s"],
            "warping": report.output_mean if report else None, "source": report.source_mean if report else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--clip", default=str(ROOT / "out" / "clips" / "tubingen_pan.mp4"))
    parser.add_argument("--style", default=str(ROOT.parent / "shared" / "data" / "pairs" / "style" /
                                               "starry_night.jpg"))
    parser.add_argument("--methods", default="adain,fast,optimize")
    parser.add_argument("--sizes", default="480,1080", help="output heights (the clip's aspect ratio is kept)")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--adain-model")
    parser.add_argument("--fast-model")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, a method option (Python literal)")
    parser.add_argument("--video-set", action="append", default=[], help="KEY=VALUE, a VideoOptions field")
    parser.add_argument("--compare", action="store_true", help="also run --per-frame and grade both")
    parser.add_argument("--out", default=str(ROOT / "out" / "video"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    from brushwork.video import media

    info = media.probe(args.clip)
    settings = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    video = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.video_set)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| method | size | frames | mode | first s | next frames/s | warping error | source's |")
    print("|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        options = dict(settings)
        if method in ("adain", "fast"):
            options["model"] = args.adain_model if method == "adain" else args.fast_model
        for height in args.sizes.split(","):
            long_side = round(int(height) * max(info.display_size) / min(info.display_size))
            modes = [False, True] if args.compare else [False]
            for per_frame in modes:
                mode = "per-frame" if per_frame else "consistent"
                job = {"clip": args.clip, "style": None if method == "fast" else args.style,
                       "output": str(out / f"{method}.{height}p.{mode}.mp4"), "method": method,
                       "options": {**options, "size": long_side},
                       "video": {**video, "frames": args.frames, "per_frame": per_frame}, "grade": args.compare}
                done = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True,
                                      text=True)
                if done.returncode != 0:
                    print(f"| {method} | {height}p | failed: {done.stderr.strip().splitlines()[-1]} ||||||")
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                grade = (f"{r['warping']:.6f} | {r['source']:.6f}" if r["warping"] is not None else "- | -")
                print(f"| {method} | {r['size']} | {r['frames']} | {mode} | {r['first']:.2f} | "
                      f"{r['next_fps']:.3f} | {grade} |", flush=True)


if __name__ == "__main__":
    main()
