import math
import random

import pytest
import torch
import torchvision

from nas.blocks import MBConv, SqueezeExcite, StochasticDepth
from nas.builder import build
from nas.model_counting import count_params
from nas.presets import EFFICIENTNET, derived_presets, load_preset, preset_names, PRESET_DIR
from nas.spec import ArchSpec
from conftest import random_spec

OFFICIAL = {  # (params at 1000 classes, blocks)
    "efficientnet-b0": (5_288_548, 16), "efficientnet-b1": (7_794_184, 23),
    "efficientnet-b2": (9_109_994, 23), "efficientnet-b3": (12_233_232, 26),
    "efficientnet-b4": (19_341_616, 32), "efficientnet-b5": (30_389_784, 39),
    "efficientnet-b6": (43_040_704, 45), "efficientnet-b7": (66_347_960, 55),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_efficientnet_parameter_counts_are_exact(name):
    spec = load_preset(name)
    assert spec.num_classes == 1000
    assert spec.blocks == OFFICIAL[name][1]
    assert count_params(build(spec)) == OFFICIAL[name][0]


@pytest.mark.parametrize("preset, reference", [
    ("mobilenet-v2", lambda: torchvision.models.mobilenet_v2()),
    ("mobilenet-v2-0.35", lambda: torchvision.models.mobilenet_v2(width_mult=0.35)),
    ("mobilenet-v2-0.75", lambda: torchvision.models.mobilenet_v2(width_mult=0.75)),
    ("mobilenet-v2-1.4", lambda: torchvision.models.mobilenet_v2(width_mult=1.4)),
    ("mnasnet-b1", lambda: torchvision.models.mnasnet1_0()),
    ("resnet-18", lambda: torchvision.models.resnet18()),
    ("resnet-50", lambda: torchvision.models.resnet50()),
])
def test_hand_designed_presets_match_torchvision(preset, reference):
    assert count_params(build(load_preset(preset))) == count_params(reference())


def test_mnasnet_a1_matches_the_published_size():
    assert count_params(build(load_preset("mnasnet-a1"))) == pytest.approx(3.9e6, rel=0.01)


def test_derived_preset_files_equal_their_derivation():
    for name, spec in derived_presets().items():
        assert load_preset(name) == spec, f"{name}.yaml is stale: run python -m nas.presets --write"
    assert set(f"efficientnet-{k}" for k in EFFICIENTNET) <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_runs_forward_on_cpu(name):
    spec = load_preset(name)
    model = build(spec).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, spec.num_classes)
    assert torch.isfinite(out).all()


def test_random_specs_build_and_run():
    rng = random.Random(1)
    for _ in range(20):
        spec = random_spec(rng)
        out = build(spec).eval()(torch.randn(1, 3, spec.resolution, spec.resolution))
        assert out.shape == (1, spec.num_classes)


def test_batchnorm_and_se_follow_the_reference():
    model = build(load_preset("efficientnet-b0"))
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    blocks = list(model.blocks)
    first, second = blocks[0], blocks[1]
    # stage 1: expand 1 -> no expansion conv; SE squeeze from 32 input channels
    assert isinstance(first.expand, torch.nn.Identity)
    assert first.se.reduce.out_channels == 8
    # stage 2: input 16, expanded 96, SE squeeze int(16 * 0.25) = 4 (input, not expanded)
    assert second.se.reduce.in_channels == 96 and second.se.reduce.out_channels == 4
    assert not any(isinstance(m, torch.nn.SiLU) for m in second.project)


def test_residual_only_when_shapes_allow_and_drop_path_grows_linearly():
    spec = load_preset("efficientnet-b0")
    model = build(spec)
    blocks = list(model.blocks)
    assert [b.use_residual for b in blocks[:4]] == [False, False, True, False]
    rates = {i: b.drop_path.rate for i, b in enumerate(blocks) if isinstance(b.drop_path, StochasticDepth)}
    assert sorted(rates) == [i for i, b in enumerate(blocks) if b.use_residual]
    assert rates == {i: pytest.approx(0.2 * i / 16) for i in rates}
    assert max(rates) == 14  # the last block (320 ch, from 192) has no identity path
    noskip = ArchSpec.from_dict({**spec.to_dict(), "stages": [
        s.to_string() + "_noskip" for s in spec.stages]})
    assert not any(b.use_residual for b in build(noskip).blocks)


def test_stochastic_depth_drops_whole_samples_and_rescales():
    torch.manual_seed(0)
    layer = StochasticDepth(0.5).train()
    out = layer(torch.ones(4000, 3, 2, 2))
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()
    assert per_sample.mean().item() == pytest.approx(1.0, abs=0.05)
    assert torch.equal(layer.eval()(torch.ones(3, 1, 1, 1)), torch.ones(3, 1, 1, 1))


def test_tf_style_initialisation():
    torch.manual_seed(0)
    model = build(load_preset("efficientnet-b0"))
    conv = model.head[0]  # 1x1, 320 -> 1280: std sqrt(2 / 1280)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 1280), rel=0.02)
    dw = model.blocks[1].depthwise[0]  # depthwise 3x3 on 96 channels: fan_out = 9
    assert dw.weight.std().item() == pytest.approx(math.sqrt(2 / 9), rel=0.1)
    fc = model.classifier
    assert fc.weight.abs().max().item() <= 1 / math.sqrt(1000)
    assert fc.bias.abs().sum().item() == 0
