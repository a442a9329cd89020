import json
import random

import pytest

from nas.builder import build
from nas.cli import main
from nas.counting import analytic_count, analytic_macs
from nas.model_counting import count_params, fvcore_macs
from nas.presets import load_preset, preset_names
from conftest import random_spec

PAPER_GMACS = {"efficientnet-b0": 0.39, "efficientnet-b1": 0.70, "efficientnet-b2": 1.0,
               "efficientnet-b3": 1.8, "efficientnet-b4": 4.2, "efficientnet-b5": 9.9,
               "efficientnet-b6": 19, "efficientnet-b7": 37}


@pytest.mark.parametrize("name", sorted(PAPER_GMACS))
def test_macs_within_5_percent_of_paper_table_2(name):
    spec = load_preset(name)
    assert analytic_macs(spec) / 1e9 == pytest.approx(PAPER_GMACS[name], rel=0.05)


def test_b0_macs_exact():
    assert analytic_macs(load_preset("efficientnet-b0")) == 385_814_752


@pytest.mark.parametrize("name", [n for n in preset_names() if n not in
                                  ("efficientnet-b5", "efficientnet-b6", "efficientnet-b7")])
def test_analytic_equals_fvcore_and_params_on_presets(name):
    spec = load_preset(name)
    model = build(spec)
    count = analytic_count(spec)
    assert count.macs == pytest.approx(fvcore_macs(model, spec.resolution), rel=0.005)
    assert count.params == count_params(model)
    assert count.elementwise_ops > 0


@pytest.mark.parametrize("name", ["efficientnet-b5", "efficientnet-b6", "efficientnet-b7"])
def test_analytic_equals_fvcore_on_large_presets_at_a_lower_resolution(name):
    spec = load_preset(name)  # full resolution is covered by the paper-table test; fvcore is slow there
    assert analytic_macs(spec, 128) == pytest.approx(fvcore_macs(build(spec), 128), rel=0.005)


@pytest.mark.slow
def test_analytic_equals_fvcore_on_200_random_specs():
    rng = random.Random(2024)
    for _ in range(200):
        spec = random_spec(rng)
        model = build(spec)
        count = analytic_count(spec)
        fv = fvcore_macs(model, spec.resolution)
        assert count.macs == pytest.approx(fv, rel=0.005), spec.arch_string()
        assert count.params == count_params(model), spec.arch_string()


def test_flops_cli_json(capsys):
    assert main(["flops", "efficientnet-b0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == 5_288_548
    assert report["macs"] == report["macs_fvcore"] == 385_814_752
    assert report["resolution"] == 224 and report["blocks"] == 16
    assert main(["flops", "efficientnet-b0", "--json", "--resolution", "112", "--num-classes", "10"]) == 0
    small = json.loads(capsys.readouterr().out)
    assert small["resolution"] == 112 and small["macs"] < report["macs"] / 3
    assert small["params"] == 5_288_548 - 1280 * 990 - 990


def test_flops_cli_reads_a_spec_file_and_refuses_bad_input(tmp_path, capsys):
    path = load_preset("mnasnet-a1").save(tmp_path / "a1.yaml")
    assert main(["flops", str(path), "--json", "--no-fvcore"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 3_887_038
    assert main(["flops", "efficientnet-b9"]) == 2
    assert "unknown preset 'efficientnet-b9'; use a YAML file or one of efficientnet-b0," in capsys.readouterr().err
    assert main(["flops", "efficientnet-b0", "--resolution", "4"]) == 2
    assert "resolution 4 must be >= 8" in capsys.readouterr().err


def test_show_cli_prints_stage_table_and_strings(capsys):
    assert main(["show", "efficientnet-b0-cifar"]) == 0
    out = capsys.readouterr().out
    assert "mbconv_r2_k3_s1_e6_c24_se0.25" in out
    assert "4x4" in out  # total stride 8 on 32 px
