"""Texture kept inside a tiled output's blend bands: the seam score (`brushwork eval`) measures steps across seam
lines, which a blend of two differently optimized textures does not make; averaging them lowers their contrast
instead. For each seam (with --cuts each listed line is one, as in optimize's sidecars since tiles repaint only
what they own; otherwise four blend-window lines per overlap are grouped into one), prints the mean |step| of
luminance in a strip at the seam over that in strips `--offset` px to each side, in the region given (1 = the
seam keeps the texture).

    python bench/bench_band_texture.py OUTPUT.png [--region y0:y1,x0:x1] [--strip 24] [--offset 60] [--cuts]
        [--lines-from OTHER.png]
"""
import argparse
import json

from brushwork import color, io


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
    parser.add_argument("--cuts", action="store_true", help="each seam line listed is one seam (owned cuts)")
    parser.add_argument("--lines-from", default=None, help="take the seams from this output's sidecar instead")
    parser.add_argument("--strip", type=int, default=24, help="strip width in px")
    parser.add_argument("--offset", type=int, default=60, help="how far the comparison strips lie to each side")
    args = parser.parse_args()
    tiling = json.load(open((args.lines_from or args.output) + ".json"))["tiling"]
    lum = color.luminance(io.load_image(args.output))[0, 0]
    energy = (lum[1:, 1:] - lum[:-1, 1:]).abs() + (lum[1:, 1:] - lum[1:, :-1]).abs()
    h, w = energy.shape
    (y0, y1), (x0, x1) = ((0, h), (0, w)) if args.region is None else (
        tuple(map(int, part.split(":"))) for part in args.region.split(","))
    print("| line | at | band texture / beside |")
    print("|---|---|---|")
    for name, axis in (("row", 0), ("col", 1)):
        lines = tiling[name + "s"]
        half, off = args.strip // 2, args.offset
        for c in lines if args.cuts else groups(lines, tiling["overlap"]):
            def strip(a: int) -> float:
                e = energy[a - half:a + half, x0:x1] if axis == 0 else energy[y0:y1, a - half:a + half]
                return float(e.mean())
            if off + half <= c < (h if axis == 0 else w) - off - half:
                print(f"| {name} | {c} | {strip(c) / ((strip(c - off) + strip(c + off)) / 2):.3f} |")


if __name__ == "__main__":
    main()
