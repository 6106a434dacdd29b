"""Images per second of `brushwork batch` with the local engine and with Ray on this machine: Ray's overhead at a
small scale, and the per-worker rate from which a cluster's throughput is estimated.

  python bench/bench_batch.py [--contents 20] [--size 256] [--method adain] [--workers 2]

Stylizes the first N photos of ../shared/data/content with two paintings of ../shared/data/pairs/style (an
untrained adain decoder costs what a trained one does) into fresh temporary folders, once per engine, and prints a
markdown table."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import ray

from brushwork import batch, io
from brushwork.methods.adain_model import AdaINNet, save_decoder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        photos = work / "photos"
        photos.mkdir()
        for path in sorted((DATA / "content").iterdir())[:args.contents]:
            image = io.load_image(path)
            small = io.resize(image, io.fit_long_side(*image.shape[-2:], args.size * 2))
            io.save_image(small, photos / f"{path.stem}.png")
        styles = [str(DATA / "pairs" / "style" / f"{s}.jpg") for s in ("starry_night", "the_scream")]
        decoder = work / "decoder.safetensors"
        save_decoder(AdaINNet().decoder, decoder, {"method": "adain", "backbone": "vgg16-hed"})
        common = dict(method="adain", styles=styles, model=str(decoder), size=args.size, quiet=True)
        rows = []
        local = batch(str(photos), str(work / "local"), **common)
        rows.append(("local (in this process, 2 threads)", local))
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="warning")
        on_ray = batch(str(photos), str(work / "ray"), engine="ray", workers=args.workers, batch_size=4, **common)
        rows.append((f"ray ({args.workers} actors × 1 CPU, incl. start-up)", on_ray))
        again = batch(str(photos), str(work / "ray2"), engine="ray", workers=args.workers, batch_size=4, **common)
        rows.append((f"ray ({args.workers} actors, cluster already up)", again))
        ray.shutdown()
        print(f"{local.rows} rows (adain at {args.size} px, {args.contents} photos × 2 styles)\n")
        print("| engine | rows done | seconds | images/s |\n|---|---|---|---|")
        for name, s in rows:
            print(f"| {name} | {s.done} | {s.seconds:.1f} | {s.images_per_second:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
