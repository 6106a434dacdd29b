"""Texture kept inside a tiled output's blend bands: the seam score (`brushwork eval`) measures steps across seam
lines, which a blend of two differently optimized textures does not make; averaging them lowers their contrast
instead. For each overlap (its seam lines, grouped), prints the mean |step| of luminance in the 24 px at the band's
centre over that in 24 px strips 60 px to each side, in the region given (1 = the band keeps the texture).

    python bench/bench_band_texture.py OUTPUT.png [--region y0:y1,x0:x1]
"""
import argparse
import json

from brushwork import io


def groups(lines: list[int], overlap: int) -> list[int]:
    """Centres of runs of seam lines that lie within one overlap of each other."""
    runs: list[list[int]] = []
    for v in lines:
        if runs and v - runs[-1][0] <= overlap:
            runs[-1].append(v)
        else:
            runs.append([v])
    return [(r[0] + r[-1]) // 2 for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--region", default=None, help="y0:y1,x0:x1 (default: the whole image)")
    args = parser.parse_args()
    tiling = json.load(open(args.output + ".json"))["tiling"]
    img = io.load_image(args.output)[0]
    lum = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    energy = (lum[1:, 1:] - lum[:-1, 1:]).abs() + (lum[1:, 1:] - lum[1:, :-1]).abs()
    h, w = energy.shape
    (y0, y1), (x0, x1) = ((0, h), (0, w)) if args.region is None else (
        tuple(map(int, part.split(":"))) for part in args.region.split(","))
    print("| line | at | band texture / beside |")
    print("|---|---|---|")
    for name, axis in (("row", 0), ("col", 1)):
        for c in groups(tiling[name + "s"], tiling["overlap"]):
            def strip(a: int) -> float:
                e = energy[a - 12:a + 12, x0:x1] if axis == 0 else energy[y0:y1, a - 12:a + 12]
                return float(e.mean())
            if 72 <= c < (h if axis == 0 else w) - 72:
                print(f"| {name} | {c} | {strip(c) / ((strip(c - 60) + strip(c + 60)) / 2):.3f} |")


if __name__ == "__main__":
    main()
