import textwrap
from pathlib import Path

import pytest
import torch

from brushwork import BackboneError, ConfigError, MaskError, SizeError
from brushwork import color, losses, metrics
from brushwork.api import resolve_options, run
from brushwork.backbones import create_backbone
from brushwork.io import load_image, resize
from brushwork.methods.optimize import (PRESETS, OptimizeOptions, build_nets, estimate_bytes, from_pyramid,
                                       scale_schedule, scale_style_weights, to_pyramid)

from .conftest import run_measuring, stripes

FAST = dict(size=64, iterations=25, scales=1, quiet=True)
PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs"


def test_loss_falls(content, red_stripes):
    seen = []
    result = run(content, red_stripes, callback=lambda s: seen.append(s.losses), **{**FAST, "iterations": 32})
    assert len(seen) == 32
    assert seen[-1]["total"] < 0.9 * seen[0]["total"]
    assert seen[-1]["style"] < 0.75 * seen[0]["style"]
    totals = [s["total"] for s in seen]
    for i in range(1, len(totals) - 1):  # L-BFGS descends steadily: an uphill step is undone at the next one
        best = min(totals[:i])
        if totals[i] > 1.01 * best:
            assert totals[i + 1] <= 1.0001 * best, totals
    assert result.image.shape == (1, 3, 48, 64)


@pytest.mark.parametrize("optimizer,style_loss", [("adam", "gram"), ("lbfgs", "mean_std"), ("lbfgs", "wasserstein")])
def test_other_optimizers_and_style_losses_also_descend(content, red_stripes, optimizer, style_loss):
    seen = []
    run(content, red_stripes, optimizer=optimizer, style_loss=style_loss, callback=lambda s: seen.append(
        s.losses["style"]), **{**FAST, "iterations": 15})
    assert seen[-1] < 0.9 * seen[0]


def test_pyramid_parameters_represent_the_image_exactly():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 37, 50)
    for levels, expected in ((1, 1), (3, 3), (5, 4)):  # levels stop before a side would drop below 4 px
        params = to_pyramid(img, levels)
        assert len(params) == expected and torch.allclose(from_pyramid(params), img, atol=1e-6)


# EfficientNet aliases on the synthetic 6 px stripes (its stem has stride 2), so its tests use a real pair.
needs_pairs = pytest.mark.skipif(not (PAIRS / "content" / "brad_pitt.jpg").is_file(), reason="needs ../shared pairs")


@needs_pairs
def test_fast_preset_uses_efficientnet_on_a_pyramid_and_descends():
    seen = []
    result = run(PAIRS / "content" / "brad_pitt.jpg", PAIRS / "style" / "picasso_selfport1907.jpg", preset="fast",
                 size=128, iterations=40, scales=1, quiet=True, callback=lambda s: seen.append(s.losses))
    assert result.stats["options"]["backbone"] == "efficientnet-lite0" and result.stats["pyramid_levels"] == 5
    assert seen[-1]["total"] < 0.5 * seen[0]["total"] and seen[-1]["style"] < 0.3 * seen[0]["style"]


@needs_pairs
def test_two_backbones_at_once():
    seen = []
    run(PAIRS / "content" / "brad_pitt.jpg", PAIRS / "style" / "picasso_selfport1907.jpg",
        backbone="vgg16-hed+efficientnet-lite0", size=128, iterations=15, scales=1, quiet=True,
        callback=lambda s: seen.append(s.losses))
    assert seen[-1]["total"] < 0.6 * seen[0]["total"] and seen[-1]["style"] < 0.5 * seen[0]["style"]


def test_presets_resolve_and_explicit_options_win():
    assert resolve_options(preset="fast").backbone == "efficientnet-lite0"
    quality = resolve_options(preset="quality", iterations=7)
    assert quality.min_scales == 3 and quality.iterations == 7 and quality.backbone == "vgg16-hed"
    assert resolve_options(preset="quality", scales=2).scales == 2
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_options(preset="turbo")
    with pytest.raises(ConfigError, match="unknown option"):
        resolve_options(style_wieght=3)


def test_memory_estimate_counts_efficientnet_internals():
    """EfficientNet keeps 6×-expanded tensors inside its blocks, so per pixel it needs about what VGG16 does, not a
    tenth of it."""
    vgg = build_nets(OptimizeOptions(), torch.device("cpu"))
    lite = build_nets(OptimizeOptions(backbone="efficientnet-lite0"), torch.device("cpu"))
    ratio = estimate_bytes(lite, 1024, 1024, OptimizeOptions(optimizer="adam"), 5) / estimate_bytes(
        vgg, 1024, 1024, OptimizeOptions(optimizer="adam"), 1)
    assert ratio > 0.7


def test_coarse_to_fine_schedule():
    opts = OptimizeOptions(iterations=100, scales=3, scale_factor=2, iteration_decay=0.5)
    assert scale_schedule(384, 512, opts, 32) == [(96, 128, 100), (192, 256, 50), (384, 512, 25)]
    assert [s[:2] for s in scale_schedule(48, 64, opts, 32)] == [(48, 64)]  # too small scales are skipped
    with pytest.raises(SizeError):
        scale_schedule(12, 16, opts, 32)


def test_the_default_adds_scales_above_1350_px_so_the_coarsest_stays_near_480(content, red_stripes):
    """Without --scales, the coarsest scale stays near 480 px on the long side (the preview's layout) at any size:
    2 scales up to about 1,350 px (512 and 1024 px as before), 3 at 2048, 4 at 4K; --scales decides otherwise.
    `quality` steps by 1.41× and keeps at least its 3 scales: 256 → 512 px as before, 7 from 480 px at 4K."""
    default = OptimizeOptions()
    firsts = {side: scale_schedule(side * 3 // 4, side, default, 32) for side in (512, 1024, 1280, 2048, 3840)}
    assert {side: len(s) for side, s in firsts.items()} == {512: 2, 1024: 2, 1280: 2, 2048: 3, 3840: 4}
    assert all(340 < s[0][1] <= 640 for side, s in firsts.items() if side > 512)  # the coarsest long side
    assert [i for _, _, i in firsts[3840]] == [125, 50, 20, 8]
    assert len(scale_schedule(2880, 3840, OptimizeOptions(scales=2), 32)) == 2
    quality = OptimizeOptions(**PRESETS["quality"])
    assert scale_schedule(384, 512, quality, 32) == [(192, 256, 200), (272, 362, 100), (384, 512, 50)]
    assert [len(scale_schedule(side * 3 // 4, side, quality, 32)) for side in (1024, 1200, 2048, 3840)] == [3, 4, 5, 7]
    assert scale_schedule(2880, 3840, quality, 32)[0][1] == 480
    result = run(content, red_stripes, size=96, iterations=2, quiet=True)
    assert result.options.scales == 2  # the sidecar records the count that ran, not "default"
    assert len(result.stats["scales"]) == 2


MEASURE = textwrap.dedent("""
    import json, sys, torch
    from brushwork.api import run
    from brushwork.methods.optimize import OptimizeOptions, build_nets, estimate_bytes

    from brushwork.methods.optimize import plan_scales

    height, width, tile, iterations = map(int, sys.argv[1:])
    content, style = torch.rand(1, 3, height, width), torch.rand(1, 3, 256, 256)
    run(content[..., :64, :64], style, size=64, scales=1, iterations=1, quiet=True)  # load the network
    reset_peak()
    result = run(content, style, size=width, scales=1, iterations=iterations, optimizer="adam", tile=tile, quiet=True)
    opts = OptimizeOptions(optimizer="adam", tile=tile)
    nets = build_nets(opts, torch.device("cpu"))
    if tile:  # a tile's objective, the picture's moments and the full-size buffers: what the guard compares
        estimate = plan_scales(nets, opts, [(height, width, iterations)], 1, torch.device("cpu"))[0].bytes
        assert result.details["tiling"]["tile"] == tile
    else:
        estimate = estimate_bytes(nets, height, width, opts, 1)
    print(json.dumps({"measured": peak(), "estimate": estimate}))
""")


def test_memory_estimate_matches_the_default_losses_measured_peak():
    """The estimate counts what the network and the losses save for backward, the gradients in flight, the content
    targets (relu1_1's are 64 channels at full size) and the descent's copies of the image. Adam, because its copies
    are all there after one step, where L-BFGS's history fills only after 50 iterations (minutes). Measured in a fresh
    process with the default losses: 1.61 GiB against an estimate of 1.83 at 768×576 (bench/RESULTS.md), and here
    at 576×432 1.01 GB against 1.11; the estimate before it counted the network's saved tensors twice and nothing of
    the losses: 1.14 GiB at 768×576."""
    peak = run_measuring(MEASURE, 432, 576, 0, 2)
    assert 0.95 < peak["estimate"] / peak["measured"] < 1.35, peak


def test_a_tiled_scales_memory_estimate_matches_its_measured_peak():
    """In tiles, the guard counts the largest tile's objective (its style losses copy the features of the region
    the tile owns), every tile's moments of the whole picture, and the full-size image, content and their copies;
    the peak is one tile's, whatever the image's size."""
    tiled = run_measuring(MEASURE, 480, 640, 384, 1)  # one pass of four tiles, one iteration each
    assert 0.95 < tiled["estimate"] / tiled["measured"] < 1.35, tiled
    opts = OptimizeOptions(optimizer="adam")  # the whole image's estimate, within 0.95-1.35 of its peak (above)
    assert tiled["measured"] < 0.75 * estimate_bytes(build_nets(opts, torch.device("cpu")), 480, 640, opts, 1)


def test_multi_scale_output_has_target_size_and_aspect(content, red_stripes):
    result = run(content, red_stripes, size=96, iterations=6, scales=2, quiet=True)
    assert result.image.shape == (1, 3, 72, 96)
    assert [s["size"] for s in result.stats["scales"]] == [[48, 36], [96, 72]]
    clipped = run(content, red_stripes, size=96, iterations=2, scales=9, quiet=True)  # none below the 32 px minimum
    assert [s["size"] for s in clipped.stats["scales"]] == [[48, 36], [96, 72]]
    assert clipped.options.scales == 2  # what the sidecar records: the scales that ran


def test_the_style_weight_ramps_up_from_the_coarse_scale_to_the_output(content, red_stripes):
    """--style-weight holds at the output size and --style-ramp divides it at the coarsest scale (bench/TUNING.md,
    finding 25); the scales between step geometrically, and a single scale (a video frame) runs the weight as given."""
    opts = OptimizeOptions(style_weight=100.0, style_ramp=4.0)
    assert scale_style_weights(opts, 3) == pytest.approx([25.0, 50.0, 100.0])
    assert scale_style_weights(opts, 1) == [100.0]
    assert scale_style_weights(OptimizeOptions(style_ramp=1.0), 2) == [100.0, 100.0]
    result = run(content, red_stripes, size=96, iterations=4, scales=2, style_weight=30.0, style_ramp=3.0, quiet=True)
    assert [s["style_weight"] for s in result.stats["scales"]] == [10.0, 30.0]
    # The coarse scale with the ramp is the coarse scale of a plain run at the lighter weight.
    lighter = run(content, red_stripes, size=96, iterations=4, scales=2, style_weight=10.0, style_ramp=1.0, quiet=True)
    assert result.stats["scales"][0]["losses"] == lighter.stats["scales"][0]["losses"]
    assert result.stats["scales"][1]["losses"] != lighter.stats["scales"][1]["losses"]


def test_same_seed_same_result(content, red_stripes):
    a = run(content, red_stripes, init="noise", seed=3, **{**FAST, "iterations": 5}).image
    b = run(content, red_stripes, init="noise", seed=3, **{**FAST, "iterations": 5}).image
    c = run(content, red_stripes, init="noise", seed=4, **{**FAST, "iterations": 5}).image
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_recolored_init_starts_in_the_styles_palette(content, red_stripes):
    """One iteration from the recoloured content has the style's mean colour (blended when there are two styles),
    where the plain content start keeps the photo's."""
    blue = red_stripes.flip(1)
    for styles, blend in (([red_stripes], None), ([red_stripes, blue], [3, 1])):
        out = run(content, styles, init="recolored", style_blend=blend, **{**FAST, "iterations": 1}).image
        weights = [w / sum(blend) for w in blend] if blend else [1.0]
        want = sum(w * s.mean((0, 2, 3)) for w, s in zip(weights, styles))
        assert (out.mean((0, 2, 3)) - want).abs().max() < 0.1  # less what clipping to [0, 1] costs
    plain = run(content, red_stripes, **{**FAST, "iterations": 1}).image
    assert (plain.mean((0, 2, 3)) - red_stripes.mean((0, 2, 3))).abs().max() > 0.25


def test_default_reaches_the_styles_palette_where_the_old_gram_default_did_not(content, blue_dots):
    """The default's W2 loss matches the style's colour means (bench/TUNING.md, finding 14); the Gram loss with equal
    layer weights and style weight 3, the default before it, stops far short of them in the same iterations."""
    old = dict(style_loss="gram", style_weight=3.0,
               style_weights=dict.fromkeys(create_backbone("vgg16-hed").style_layers, 1.0))
    for style in (stripes(64, 64, (0.8, 0.2, 0.1)), blue_dots):
        def gap(**options) -> float:
            out = run(content, style, size=64, iterations=40, quiet=True, **options).image
            return float((out.mean((0, 2, 3)) - style.mean((0, 2, 3))).abs().max())

        start = float((content.mean((0, 2, 3)) - style.mean((0, 2, 3))).abs().max())
        new = gap()
        assert start > 0.4 and new < 0.15 and gap(**old) > 2 * new


def test_a_style_layer_that_weighs_nothing_is_not_computed(content, red_stripes):
    """vgg16-hed's default turns relu5_1's style term off (bench/TUNING.md, finding 22) but keeps it a style layer
    for the metrics; the optimizer must then stop the network before conv5 and give what leaving it out gives."""
    assert "relu5_1" in create_backbone("vgg16-hed").style_layers
    net = build_nets(OptimizeOptions(), torch.device("cpu"))[0]
    assert "relu5_1" not in net.layers and net.layer_weights["relu4_1"] < net.layer_weights["relu3_1"]
    options = {**FAST, "iterations": 5, "seed": 3}
    default = run(content, red_stripes, **options).image
    named = run(content, red_stripes, style_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1"], **options).image
    assert torch.equal(default, named)
    heavier = run(content, red_stripes, style_weights={"relu5_1": 1.0}, **options).image
    assert not torch.equal(default, heavier)


def test_a_content_weight_of_zero_reads_no_content_layer(content, red_stripes):
    """Without a content term the content layers cost a pass for nothing: none is read, and `--content-layers ,`
    (no layer) is then what it says rather than an error; with a content term it is still refused."""
    assert build_nets(OptimizeOptions(content_weight=0), torch.device("cpu"))[0].content_layers == []
    options = {**FAST, "iterations": 3, "seed": 3, "content_weight": 0}
    assert torch.equal(run(content, red_stripes, **options).image,
                       run(content, red_stripes, content_layers=[], **options).image)
    with pytest.raises(ConfigError, match="--content-layers names no layer"):
        run(content, red_stripes, **{**options, "content_weight": 1}, content_layers=[])
    with pytest.raises(BackboneError, match="relu9_9"):
        build_nets(OptimizeOptions(content_weight=0, content_layers=["relu9_9"]), torch.device("cpu"))


@needs_pairs
def test_the_default_content_layers_keep_a_photos_structure_at_the_same_palette():
    """vgg16-hed's content term reads relu3_1, relu2_1 and relu1_1 beside relu4_2 (bench/TUNING.md, findings 20, 24
    and 25): on a real photo and painting, the default keeps more of the photo's structure (luminance SSIM) than the
    content layers before them at the same style weights, at the same distance to the painting's colours. Measured
    0.426 against 0.377 (without relu1_1) and 0.284 (relu4_2 alone) at this size and budget; the step between,
    relu4_2 and relu3_1 (0.313), is not run again."""
    photo = load_image(PAIRS / "content" / "tubingen.jpg")
    painting = load_image(PAIRS / "style" / "the_scream.jpg")

    def structure_and_colour(**options) -> tuple[float, float]:
        out = run(photo, painting, size=128, iterations=30, quiet=True, **options).image
        kept = float(metrics.ssim(color.luminance(out), color.luminance(resize(photo, out.shape[-2:]))).mean())
        return kept, float((out.mean((0, 2, 3)) - painting.mean((0, 2, 3))).abs().max())

    assert create_backbone("vgg16-hed").content_layers == ("relu4_2", "relu3_1", "relu2_1", "relu1_1")
    kept, colour = structure_and_colour()
    for layers in (["relu4_2", "relu3_1", "relu2_1"], ["relu4_2"]):
        kept_before, colour_before = structure_and_colour(content_layers=layers)
        assert kept > kept_before + 0.03, (layers, kept, kept_before)
        assert colour < colour_before + 0.02, (layers, colour, colour_before)


def test_luminance_preservation_keeps_content_chroma(content, red_stripes):
    out = run(content, red_stripes, preserve_color="luminance", **FAST).image
    chroma_out, chroma_in = color.rgb_to_ycbcr(out)[:, 1:], color.rgb_to_ycbcr(content)[:, 1:]
    # Exact wherever the stylized luminance with the content's chroma is a displayable colour; elsewhere the
    # clamp to [0, 1] must move chroma, and that is a small share of a real image.
    unclamped = color.ycbcr_to_rgb(torch.cat([color.luminance(out), color.rgb_to_ycbcr(content)[:, 1:]], 1))
    in_gamut = ((unclamped >= 0) & (unclamped <= 1)).all(1, keepdim=True).expand(-1, 2, -1, -1)
    assert in_gamut.float().mean() > 0.9
    assert (chroma_out - chroma_in)[in_gamut].abs().max() < 1e-3
    plain = run(content, red_stripes, **FAST).image
    assert (color.rgb_to_ycbcr(plain)[:, 1:] - chroma_in).abs().mean() > 3 * (chroma_out - chroma_in).abs().mean()


def test_histogram_matching_gives_the_style_the_contents_colours(content, red_stripes):
    recoloured = color.match_color(red_stripes, content)
    for img in (recoloured,):
        assert torch.allclose(img.mean((0, 2, 3)), content.mean((0, 2, 3)), atol=0.03)
    out = run(content, red_stripes, preserve_color="histogram", **FAST).image
    plain = run(content, red_stripes, **FAST).image
    assert (out.mean((0, 2, 3)) - content.mean((0, 2, 3))).abs().sum() < (
        plain.mean((0, 2, 3)) - content.mean((0, 2, 3))).abs().sum()


def _style_distance(img: torch.Tensor, style: torch.Tensor) -> float:
    vgg = create_backbone("vgg16-hed")
    layers = ["relu1_1", "relu2_1"]
    fi, fs = vgg(img, layers), vgg(style, layers)
    return sum(float(losses.gram_loss(fi[n], losses.gram(fs[n]))) for n in layers)


def test_masks_give_each_region_its_own_style(content, red_stripes, blue_dots):
    h, w = content.shape[-2:]
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2] = 1
    out = run(content, [red_stripes, blue_dots], masks=[left, 1 - left], size=64, iterations=40, scales=1,
              quiet=True).image
    half = w // 2
    for region, own, other in ((slice(0, half - 4), red_stripes, blue_dots),
                               (slice(half + 4, w), blue_dots, red_stripes)):
        before, after = content[..., region], out[..., region]
        assert _style_distance(after, own) < _style_distance(after, other)
        assert _style_distance(after, own) < _style_distance(before, own)


def test_blend_weights_shift_statistics_monotonically(content, red_stripes, blue_dots):
    redness = []
    for blend in ([1, 0], [0.5, 0.5], [0, 1]):
        out = run(content, [red_stripes, blue_dots], style_blend=blend, **FAST).image
        redness.append(float(out[:, 0].mean() - out[:, 2].mean()))
    assert redness[0] > redness[1] > redness[2]


@pytest.mark.parametrize("options,error,message", [
    (dict(style_blend=[1.0, 2.0]), ConfigError, "2 weights for 1"),
    (dict(style_blend=[-1.0]), ConfigError, "non-negative"),
    (dict(size=16), SizeError, "minimum"),
    (dict(size=200_000), SizeError, "GiB"),
    (dict(optimizer="sgd"), ConfigError, "lbfgs or adam"),
    (dict(init="no/such/file.png"), ConfigError, "--init"),
    (dict(style_weights={"relu1_1": -1.0}), ConfigError, "style layer weights"),
    (dict(style_ramp=0.0), ConfigError, "--style-ramp"),
    (dict(style_layers=["relu3_1", "relu5_1"]), ConfigError, "weighs relu5_1 0"),  # not dropped without a word
    (dict(style_weights=dict.fromkeys(["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], 0.0)), ConfigError,
     "weight above 0"),
    (dict(style_weights={"relu9_9": 1.0}), ConfigError, "relu9_9, which is not among"),  # was silently ignored
    (dict(size="big"), ConfigError, "--size must be a whole number, not 'big'"),
    (dict(iterations=1.5), ConfigError, "--iterations must be a whole number"),
    (dict(style_weight="10"), ConfigError, "--style-weight must be a number"),
    (dict(style_blend=0.5), ConfigError, "--style-blend must be a list of float"),
    (dict(style_weights=[1, 2]), ConfigError, "style_weights must be a dict of str and float"),
    (dict(quiet="no"), ConfigError, "--quiet must be True or False"),  # a non-empty string was true
    (dict(seed="3"), ConfigError, "--seed must be a whole number"),
    (dict(init=torch.zeros(1, 3, 8, 8)), ConfigError, "--init must be a string, not a Tensor"),
])
def test_bad_options_raise_typed_errors(content, red_stripes, options, error, message):
    with pytest.raises(error, match=message):
        run(content, red_stripes, **{**FAST, **options})


def test_mask_problems_raise_mask_errors(content, red_stripes, blue_dots):
    h, w = content.shape[-2:]
    with pytest.raises(MaskError, match="one mask per style"):
        run(content, [red_stripes, blue_dots], masks=[torch.ones(1, 1, h, w)], **FAST)
    with pytest.raises(MaskError, match="aspect ratio"):
        run(content, red_stripes, masks=[torch.ones(1, 1, 10, 50)], **FAST)
    with pytest.raises(MaskError, match="no pixels"):
        run(content, red_stripes, masks=[torch.zeros(1, 1, h, w)], **FAST)


def test_tiles_are_sized_for_the_lbfgs_history_they_can_fill(monkeypatch):
    """A tile starts a new optimizer, so in the default's tiled scales (25 iterations per tile and pass) its history
    holds 25 pairs, not 50: counting 50 cut 4K images into 1536 px tiles where 2048 px ones fit (bench/RESULTS.md)."""
    from brushwork import resources
    from brushwork.methods.optimize import IMAGE_BYTES_PER_PIXEL, LBFGS_HISTORY, plan_scales, working_bytes_per_pixel

    opts = OptimizeOptions()
    nets = build_nets(opts, torch.device("cpu"))
    sizes = [estimate_bytes(nets, 512, 512, opts, 1, iterations=n) for n in (2, 25, LBFGS_HISTORY, 200)]
    assert sizes[0] < sizes[1] < sizes[2] == sizes[3] == estimate_bytes(nets, 512, 512, opts, 1)
    # a 4K scale in 2048 px tiles is sized for its largest tile, not for side × side: 4096 px cut in three are
    # 1416 px tiles, not 2048 px ones; and for the 25 iterations of each tile's optimizer
    monkeypatch.setattr(resources, "available_memory", lambda device: 2**40)
    [forced] = plan_scales(nets, OptimizeOptions(tile=2048), [(3072, 4096, 50)], 1, torch.device("cpu"))
    th, tw = max((g.largest for g in forced.grids), key=lambda d: d[0] * d[1])
    assert forced.per_pass == 25 and th * tw < 0.6 * 2048 * 2048
    per_pixel = working_bytes_per_pixel(nets, opts, tiled=True)
    assert forced.bytes < estimate_bytes(nets, 2048, 2048, opts, 1, per_pixel, 50)
    assert forced.bytes > estimate_bytes(nets, th, tw, opts, 1, per_pixel, 25) + IMAGE_BYTES_PER_PIXEL * 3072 * 4096
    for spare, side in ((2**20, 2048), (-(2**20), 1536)):  # the automatic choice takes 2048 where that fits
        monkeypatch.setattr(resources, "available_memory", lambda device: forced.bytes + spare)
        [plan] = plan_scales(nets, opts, [(3072, 4096, 50)], 1, torch.device("cpu"))
        assert plan.grids[0].tile == side


def test_options_take_their_fields_types_from_the_api_as_the_command_line_gives_them():
    """What the command line would have parsed, the API conforms to: whole floats, ints for floats, paths for
    strings, comma-separated layer names; the sidecar then records the same types either way."""
    from pathlib import Path

    from brushwork.api import resolve_options

    opts = resolve_options("optimize", size=64.0, style_weight=12, init=Path("x.png"),
                           content_layers="relu4_2, relu3_1", style_layers=("relu1_1",), style_weights={"relu1_1": 2})
    assert opts.size == 64 and isinstance(opts.size, int)
    assert opts.style_weight == 12.0 and isinstance(opts.style_weight, float)
    assert opts.init == "x.png" and opts.content_layers == ["relu4_2", "relu3_1"] and opts.style_layers == ["relu1_1"]
    assert opts.style_weights == {"relu1_1": 2.0} and isinstance(opts.style_weights["relu1_1"], float)
