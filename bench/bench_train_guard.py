"""The training memory guard against measured peaks: `loop.step_bytes` beside the peak resident memory of one real
training step, each row in a fresh process.

  python bench/bench_train_guard.py                              the default rows (about 4 minutes on 2 cores)
  python bench/bench_train_guard.py --rows adain:64:256          the batch the guard lets through at the edge here

A row is METHOD:BATCH:SIZE. Each trains one step of `brushwork train METHOD` with its defaults on six photos and two
paintings of ../shared/data/pairs (the gan from an untrained decoder: the weights do not change the memory); the
peak is VmHWM less the resident memory once the task is built, so it is what the guard plans for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_large import _status

PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs"
ROWS = "adain:4:256,adain:2:512,fast:16:256,gan:4:256,transformer:4:256,transformer:2:512"


def child(method: str, batch: int, size: int, folder: Path) -> dict:
    from brushwork.methods import get_method
    from brushwork.methods.adain_model import AdaINNet, save_decoder
    from brushwork.train import TrainConfig, loop, train

    content, style = folder / "content", folder / "style"
    cfg = TrainConfig(out=str(folder / "run"), steps=1, batch_size=batch, size=size, short_side=max(size, 256),
                      workers=0, quiet=True)
    options = {"content_dir": str(content)}
    if method == "fast":
        options["style"] = [str(next(style.iterdir()))]
    else:
        options["style_dir"] = str(style)
    if method == "gan":
        save_decoder(AdaINNet(seed=0).decoder, folder / "decoder.safetensors", {"backbone": "vgg16-hed",
                                                                                "method": "adain"})
        options["init"] = str(folder / "decoder.safetensors")
    training = get_method(method).training
    task = training.task(training.options(**options), cfg)
    estimates, step_bytes = [], loop.step_bytes
    loop.step_bytes = lambda *args: estimates.append(step_bytes(*args)) or estimates[-1]
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM restarts from here
    base = _status("VmRSS")
    train(task, cfg)
    return {"measured": (_status("VmHWM") - base) / 2**30, "estimate": estimates[0] / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--rows", default=ROWS)
    args = parser.parse_args()
    if args.child:
        method, batch, size = args.child.split(":")
        print(json.dumps(child(method, int(batch), int(size), Path(args.folder))))
        return
    print("| method | batch | size | measured GiB | estimate GiB | estimate / measured |")
    print("|---|---|---|---|---|---|")
    for row in args.rows.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for kind, count in (("content", 6), ("style", 2)):
                (folder / kind).mkdir()
                for path in sorted((PAIRS / kind).iterdir())[:count]:
                    shutil.copy(path, folder / kind)
            done = subprocess.run([sys.executable, __file__, "--child", row, "--folder", tmp], capture_output=True,
                                  text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        method, batch, size = row.split(":")
        print(f"| {method} | {batch} | {size} | {r['measured']:.2f} | {r['estimate']:.2f} | "
              f"{r['estimate'] / r['measured']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
