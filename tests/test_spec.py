import random

import pytest

from nas.presets import load_preset, preset_names
from nas.spec import ArchSpec, SpecError, StageSpec
from conftest import random_spec

B0 = "efficientnet-b0"


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_round_trips_through_yaml_and_stage_strings(name, tmp_path):
    spec = load_preset(name)
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec
    assert ArchSpec.load(spec.save(tmp_path / "s.yaml")) == spec
    for stage in spec.stages:
        assert StageSpec.from_string(stage.to_string()) == stage


def test_random_specs_round_trip():
    rng = random.Random(0)
    for _ in range(100):
        spec = random_spec(rng)
        assert ArchSpec.from_yaml(spec.to_yaml()) == spec
        assert [StageSpec.from_string(s) for s in spec.arch_string().split()] == list(spec.stages)


def test_stage_string_form():
    stage = StageSpec("mbconv", 2, 5, 2, 40, expand=6, se=0.25)
    assert stage.to_string() == "mbconv_r2_k5_s2_e6_c40_se0.25"
    assert StageSpec.from_string("ds_r1_k3_s1_e1_c16_noskip") == StageSpec("ds", 1, 3, 1, 16, skip=False)
    assert StageSpec.from_string("mbconv_r1_k3_s1_e4.5_c16").expand == 4.5


def test_mapping_stages_are_accepted():
    spec = load_preset(B0).to_dict()
    spec["stages"][0] = {"block": "mbconv", "repeats": 1, "kernel": 3, "stride": 1, "out": 16,
                         "expand": 1, "se": 0.25}
    assert ArchSpec.from_dict(spec) == load_preset(B0)


def _b0_with_stage(**changes):
    data = load_preset(B0).to_dict()
    stage = StageSpec.from_string(data["stages"][2])
    fields = {**stage.__dict__, **changes}
    data["stages"][2] = fields
    return data


@pytest.mark.parametrize("changes, message", [
    ({"kernel": 4}, "stages[2]: stage 'mbconv': kernel 4 is not odd; use an odd size"),
    ({"stride": 3}, "stages[2]: stage 'mbconv': stride 3 must be 1 or 2"),
    ({"expand": 0.5}, "stages[2]: stage 'mbconv': expand ratio 0.5 must be >= 1"),
    ({"out": 0}, "stages[2]: stage 'mbconv': output channels 0 must be >= 1"),
    ({"se": 1.0}, "stages[2]: stage 'mbconv': SE ratio 1.0 must be in [0, 1)"),
    ({"se": -0.1}, "stages[2]: stage 'mbconv': SE ratio -0.1 must be in [0, 1)"),
    ({"repeats": 0}, "stages[2]: stage 'mbconv': repeats 0 must be >= 1"),
    ({"block": "transformer"}, "stages[2]: unknown block type 'transformer'; choose one of"),
    ({"block": "ds", "expand": 6}, "expand must be 1 for a ds block"),
    ({"skip": "yes"}, "skip 'yes' must be true or false"),
])
def test_stage_validation_errors_name_the_problem(changes, message):
    with pytest.raises(SpecError) as err:
        ArchSpec.from_dict(_b0_with_stage(**changes))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_keys_are_refused_with_the_allowed_ones():
    data = load_preset(B0).to_dict()
    data["dropuot"] = 0.3
    with pytest.raises(SpecError, match=r"unknown key 'dropuot' in spec; allowed keys: name, "):
        ArchSpec.from_dict(data)
    data = _b0_with_stage(kernal=3)
    with pytest.raises(SpecError, match=r"unknown key 'kernal' in stages\[2\]"):
        ArchSpec.from_dict(data)
    data = load_preset(B0).to_dict()
    data["stem"]["chanels"] = 3
    with pytest.raises(SpecError, match=r"unknown key 'chanels' in stem"):
        ArchSpec.from_dict(data)


@pytest.mark.parametrize("key, value, message", [
    ("resolution", 4, "resolution 4 must be >= 8"),
    ("num_classes", 0, "num_classes 0 must be >= 1"),
    ("activation", "gelu", "unknown activation 'gelu'; choose one of silu, relu, relu6"),
    ("dropout", 1.0, "dropout 1.0 must be in [0, 1)"),
    ("drop_path", -0.2, "drop_path -0.2 must be in [0, 1)"),
    ("stages", [], "stages must be a non-empty list"),
    ("stem", {"channels": 32, "stride": 4}, "stem: stride 4 must be 1 or 2"),
    ("stem", {"channels": 32, "kernel": 2}, "stem: kernel 2 is not odd"),
    ("head", {"channels": -1}, "head: channels -1 must be >= 0"),
    ("bn", {"eps": 0}, "bn: eps 0 must be a positive number"),
    ("bn", {"momentum": 0.99, "eps": 1e-3}, None),  # valid (a PyTorch momentum of 0.99)
])
def test_net_validation_errors(key, value, message):
    data = load_preset(B0).to_dict()
    data[key] = value
    if message is None:
        ArchSpec.from_dict(data)
        return
    with pytest.raises(SpecError) as err:
        ArchSpec.from_dict(data)
    assert message in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("mbconv_r2_k3_s2_e6", "lacks out"),
    ("mbconv_r2_k3_s2_e6_c24_x9", "unknown token 'x9'"),
    ("mbconv_r2.5_k3_s2_e6_c24", "2.5 must be an integer"),
    ("mbconv", "is not of the form"),
])
def test_bad_stage_strings(text, message):
    with pytest.raises(SpecError, match=message):
        StageSpec.from_string(text)


def test_missing_required_key_and_bad_yaml(tmp_path):
    data = load_preset(B0).to_dict()
    del data["stem"]
    with pytest.raises(SpecError, match="spec lacks required key 'stem'"):
        ArchSpec.from_dict(data)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpecError, match=r"bad.yaml: not valid YAML"):
        ArchSpec.load(bad)
    with pytest.raises(SpecError, match="cannot read spec file"):
        ArchSpec.load(tmp_path / "missing.yaml")
