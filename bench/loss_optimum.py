"""What a training recipe's loss asks for: the output image itself optimized (no network) under the exact training
loss of `fast` (FastTraining) or `adain` (AdaINNet's content and style losses against the AdaIN target), from the
photo, at the training crop size, one column per style weight. A trained network can at best approach this look,
so it shows whether a weight under- or over-stylizes before any GPU time goes into training. Each cell ends with
the result's grade (bench/grade_models.py: its Gram distance to the painting over the photo's, by a backbone that
is not the loss's; lower is more stylized).

  python bench/loss_optimum.py --weights 3,10,30 --contents tubingen,brad_pitt --styles starry_night,la_muse
  python bench/loss_optimum.py --weights 10,30 --layers johnson      the paper's loss layers (fast)
  python bench/loss_optimum.py --method adain --weights 0.5,2 --contents tubingen --styles starry_night
        print the content / style losses per pair and weight; out/loss_optimum-METHOD.png: one row per pair
        (style, photo, then one result per weight)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from brushwork import io
from brushwork.backbones import create_backbone
from brushwork.methods.adain_model import AdaINNet, adain
from brushwork.methods.fast_model import FastTraining
from grade_models import grade

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT.parent / "shared" / "data" / "pairs"


class _Image(nn.Module):
    """A 'network' that ignores its input and returns a learnable image."""

    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.x = nn.Parameter(init.clone().contiguous(memory_format=torch.contiguous_format))

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        return self.x


def _load(path: Path, side: int) -> torch.Tensor:
    image = io.load_image(path)
    return io.resize(image, io.fit_long_side(*image.shape[-2:], side))


def _objective(method: str, image: _Image, photo: torch.Tensor, style: torch.Tensor, style_weight: float,
               backbone: str, layers: str = "backbone"):
    """() → {"total", "content", "style"} of the image under the method's training loss."""
    if method == "fast":
        loss = FastTraining({"s": image}, {"s": style}, {"s": (1.0, style_weight, 1.0)}, backbone, layers=layers)
        return lambda: loss(photo)
    net = AdaINNet(backbone)
    with torch.no_grad():
        style_feats = net.encode(style, net.style_layers)
        target = adain(net.encode(photo)[net.layer], style_feats[net.layer])

    def losses() -> dict[str, torch.Tensor]:
        content, style_loss = net.output_losses(image(photo), target, style_feats)
        return {"total": content + style_weight * style_loss, "content": content, "style": style_loss}
    return losses


def optimum(method: str, photo: torch.Tensor, style: torch.Tensor, style_weight: float, iterations: int,
            backbone: str, layers: str = "backbone") -> tuple[torch.Tensor, dict[str, float]]:
    image = _Image(photo)
    objective = _objective(method, image, photo, style, style_weight, backbone, layers)
    optimizer = torch.optim.LBFGS([image.x], max_iter=iterations, history_size=20, line_search_fn="strong_wolfe")
    last: dict[str, float] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        out = objective()
        out["total"].backward()
        last.update({k: out[k].item() for k in ("content", "style")})
        return out["total"]

    optimizer.step(closure)
    return image.x.detach().clamp(0, 1), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=("fast", "adain"), default="fast")
    parser.add_argument("--weights", default="3,10,30")
    parser.add_argument("--contents", default="tubingen")
    parser.add_argument("--styles", default="starry_night,the_scream")
    parser.add_argument("--size", type=int, default=256, help="the photo's long side (the training crop)")
    parser.add_argument("--style-size", type=int, default=512, help="the style image's long side (the recipes')")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--backbone", default="vgg16-hed")
    parser.add_argument("--layers", default="backbone", help="fast: the loss layers (backbone | johnson)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.out = args.out or ROOT / "out" / f"loss_optimum-{args.method}.png"
    weights = [float(w) for w in args.weights.split(",")]
    rows = []
    grader = create_backbone("efficientnet-lite0")
    print("| pair | " + " | ".join(f"{w:g}: content / style (grade)" for w in weights) + " |")
    print("|---|" + "---|" * len(weights))
    for style_name in args.styles.split(","):
        style = _load(PAIRS / "style" / f"{style_name}.jpg", args.style_size)
        for content_name in args.contents.split(","):
            photo = _load(PAIRS / "content" / f"{content_name}.jpg", args.size)
            row, cells = [io.resize(style, photo.shape[-2:]), photo], []
            for weight in weights:
                image, parts = optimum(args.method, photo, style, weight, args.iterations, args.backbone,
                                       args.layers)
                row.append(image)
                ratio = grade(image, photo, io.resize(style, io.fit_long_side(*style.shape[-2:], args.size)),
                              grader)[0]
                cells.append(f"{parts['content']:.3g} / {parts['style']:.3g} ({ratio:.2f})")
            print(f"| {content_name} × {style_name} | " + " | ".join(cells) + " |", flush=True)
            rows.append(torch.cat(row, -1))
    height, width = min(r.shape[-2] for r in rows), max(r.shape[-1] for r in rows)
    rows = [nn.functional.pad(r[..., :height, :], (0, width - r.shape[-1]), value=1.0) for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    io.save_image(torch.cat(rows, -2), args.out)
    print(f"\n{args.out}")


if __name__ == "__main__":
    main()
