"""The gan method against adain: what a training step costs, how large the adversarial gradient is against the
style term's, and (with trained models) whether the critic made the results more painterly.

  python bench/bench_gan.py steps [--init DECODER] [--size 128] [--batch 2]
        seconds per training step of adain and of gan with each loss (and with --attention), and the raw ratio
        ‖∇adv‖ / ‖∇style‖ on the output at the start: the fixed --adv-weight that relative weighting replaces
  python bench/bench_gan.py quality --adain FILE --gan FILE [--contents a,b --styles c,d] [--size 512]
        stylize the shared pairs with both models; Fréchet distance, art_fid and content distance, cross-graded
        by efficientnet-lite0 (both models read vgg16-hed features); the acceptance verdict; a grid
        (content | style | adain | gan) in out/bench_gan/grid.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from brushwork import api, io, losses
from brushwork.evaluation import evaluate_triples
from brushwork.methods import adain_model, gan_model
from brushwork.methods.gan import CriticSettings
from brushwork.weights import read_safetensors

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
GRADER = "efficientnet-lite0"


def _images(folder: Path, count: int, size: int) -> torch.Tensor:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    return torch.cat([io.square_cell(io.load_image(f), size) for f in files])


def _net(init: str | None, attention: bool = False) -> adain_model.AdaINNet:
    net = adain_model.AdaINNet(attention=attention)
    if init:
        adain_model.load_decoder(net.decoder, read_safetensors(init)[0], init)
    return net


def _step_seconds(step, repeats: int = 3) -> float:
    step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats


def cmd_steps(args: argparse.Namespace) -> None:
    content = _images(DATA / "content", args.batch, args.size)
    style = _images(DATA / "style", args.batch, args.size)
    rows = []
    net = _net(args.init)
    opt = torch.optim.Adam(net.decoder.parameters(), 1e-4)

    def adain_step():
        net.training_losses(content, style, args.style_weight)["total"].backward()
        opt.step()
        opt.zero_grad()

    base = _step_seconds(adain_step)
    rows.append(f"| adain | - | {base:.2f} | 1.00 | - |")
    for kind, attention in [(k, False) for k in losses.GAN_LOSSES] + [("wgan-gp", True)]:
        net = _net(args.init, attention)
        critic = gan_model.MultiScaleCritic(64, 3)
        module = gan_model.GANTraining(net, args.style_weight, critic, kind, 0.1)
        objective = gan_model.CriticObjective(critic, kind, CriticSettings(gan_loss=kind).penalty)
        g_opt = torch.optim.Adam(net.decoder.parameters(), 1e-4)
        c_opt = torch.optim.Adam(critic.parameters(), 4e-4, betas=(0.0, 0.9))
        out, _, style_loss = net.objective(content, style)
        adv = sum(losses.generator_loss(m, kind) for m in critic(out))
        g_style, = torch.autograd.grad(args.style_weight * style_loss, out, retain_graph=True)
        g_adv, = torch.autograd.grad(adv, out)
        ratio = (g_adv.norm() / g_style.norm()).item()

        def gan_step():
            result = module(content, style)
            result["total"].backward()
            g_opt.step()
            g_opt.zero_grad()
            c_opt.zero_grad()
            objective(style, result["output"].detach(), 0)["total"].backward()
            c_opt.step()
            c_opt.zero_grad()

        seconds = _step_seconds(gan_step)
        name = f"gan{' + attention' if attention else ''}"
        rows.append(f"| {name} | {kind} | {seconds:.2f} | {seconds / base:.2f} | {ratio:.3g} |")
    print(f"Training steps on {torch.get_num_threads()} CPU threads, batch {args.batch} at {args.size}² "
          f"(decoder: {args.init or 'untrained'}), critic width 64, 3 scales, one critic step per generator step.\n")
    print("| method | loss | s / step | × adain | raw ‖∇adv‖ / ‖∇style‖ at start |\n|---|---|---|---|---|")
    print("\n".join(rows))


def cmd_quality(args: argparse.Namespace) -> None:
    pairs_dir = args.pairs
    contents = [pairs_dir / "content" / f"{c}.jpg" for c in args.contents.split(",")]
    styles = [pairs_dir / "style" / f"{s}.jpg" for s in args.styles.split(",")]
    missing = [str(p) for p in contents + styles if not p.is_file()]
    if missing:
        sys.exit(f"not found: {', '.join(missing)}")
    made: dict[str, list] = {}
    for method, model in (("adain", args.adain), ("gan", args.gan)):
        folder = args.out / method
        folder.mkdir(parents=True, exist_ok=True)
        made[method] = []
        for c in contents:
            for s in styles:
                out = folder / f"{c.stem}__{s.stem}.png"
                if not out.is_file():
                    api.stylize_file(c, s, out, method=method, model=model, size=args.size, quiet=True)
                made[method].append((out, c, s))
    scores = {m: evaluate_triples(t, backbone=GRADER, size=args.size).set_scores for m, t in made.items()}
    print(f"{len(contents)} contents × {len(styles)} styles at {args.size} px, graded by {GRADER}:\n")
    print("| method | frechet | art_fid | content distance |\n|---|---|---|---|")
    for m, s in scores.items():
        print(f"| {m} | {s['frechet']:.2f} | {s['art_fid']:.2f} | {s['mean_content']:.4f} |")
    a, g = scores["adain"], scores["gan"]
    verdict = (g["frechet"] < a["frechet"] and g["art_fid"] < a["art_fid"]
               and g["mean_content"] <= 1.05 * a["mean_content"])
    print(f"\nacceptance (lower Fréchet and art_fid, content at most 5% higher): {'met' if verdict else 'NOT met'}")
    rows = []
    for (ao, c, s), (go, _, _) in list(zip(made["adain"], made["gan"]))[:args.grid]:
        rows.append(torch.cat([io.square_cell(io.load_image(p), 256) for p in (c, s, ao, go)], dim=-1))
    grid = args.out / "grid.png"
    io.save_image(torch.cat(rows, dim=-2), grid)
    print(f"grid (content | style | adain | gan): {grid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    steps = sub.add_parser("steps")
    steps.add_argument("--init", help="an adain decoder file to start from (default: untrained)")
    steps.add_argument("--size", type=int, default=128)
    steps.add_argument("--batch", type=int, default=2)
    steps.add_argument("--style-weight", type=float, default=2.0)
    quality = sub.add_parser("quality")
    quality.add_argument("--adain", required=True)
    quality.add_argument("--gan", required=True)
    quality.add_argument("--pairs", type=Path, default=DATA / "pairs")
    quality.add_argument("--contents", default="tubingen,golden_gate,lenna,brad_pitt")
    quality.add_argument("--styles", default="starry_night,the_scream,la_muse,composition_vii,shipwreck")
    quality.add_argument("--size", type=int, default=512)
    quality.add_argument("--grid", type=int, default=4, help="rows of the grid")
    quality.add_argument("--out", type=Path, default=ROOT / "out" / "bench_gan")
    args = parser.parse_args()
    {"steps": cmd_steps, "quality": cmd_quality}[args.command](args)


if __name__ == "__main__":
    main()
