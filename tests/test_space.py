import itertools

import pytest
import yaml

from nas.counting import analytic_macs
from nas.presets import load_preset
from nas.search.objectives import Objective, parse_macs
from nas.search.space import SpaceError, load_space, parse_space, space_names

MICRO = {
    "name": "micro", "resolution": 16, "stem": {"channels": 8, "kernel": 3, "stride": 1},
    "head": {"channels": 32},
    "choices": {"block": ["mbconv", "ds", "conv"], "expand": [1, 3], "kernel": [3, 5], "se": [0.0, 0.25],
                "skip": [True], "width": [0.5, 1.0, 1.5], "repeats": [-1, 0, 1]},
    "stages": [{"out": 16, "repeats": 1, "stride": 1}, {"out": 24, "repeats": 2, "stride": 2}],
}


def test_shipped_spaces_load_with_their_baselines():
    assert {"mnasnet", "cifar", "tiny"} <= set(space_names())
    for name in ("mnasnet", "cifar", "tiny"):
        space = load_space(name)
        low, high = space.macs_range()
        assert 0 < low < high and space.size() > 10 ** 6
        for _, params in space.baselines:
            assert low <= analytic_macs(space.to_spec(params)) <= high


def test_cifar_space_contains_the_b0_cifar_preset_exactly():
    space = load_space("cifar")
    name, params = space.baselines[0]
    assert name == "efficientnet-b0-cifar"
    rebuilt = space.to_spec(params, num_classes=10)
    preset = load_preset("efficientnet-b0-cifar")
    assert rebuilt.arch_string() == preset.arch_string()
    assert analytic_macs(rebuilt) == analytic_macs(preset) == 116_167_168


def test_macs_range_is_exact_against_brute_force():
    space = parse_space(MICRO, "micro")
    seen = []
    per_stage = []
    for st in space.stages:
        options = []
        for (block, expand), k, se, w, r in itertools.product(
                st.block_variants(), st.kernel, st.se, st.width, st.repeats_delta):
            options.append({"block": block, "expand": expand, "kernel": k, "se": se, "skip": True,
                            "width": w, "repeats": r})
        per_stage.append(options)
    for combo in itertools.product(*per_stage):
        params = {f"s{i}_{k}": v for i, choice in enumerate(combo) for k, v in choice.items()}
        seen.append(analytic_macs(space.to_spec(params)))
    assert space.macs_range() == (min(seen), max(seen))
    assert space.size() == len(seen) * 1  # skip has one value here


def test_params_round_trip_through_specs():
    space = load_space("tiny")
    for _, params in space.baselines:
        assert space.params_from_spec(space.to_spec(params)) == params


@pytest.mark.parametrize("change, message", [
    ({"colour": 1}, "unknown key 'colour'"),
    ({"stages": []}, "stages must be a non-empty list"),
    ({"choices": {**MICRO["choices"], "block": ["transformer"]}}, "block 'transformer' is not searchable"),
    ({"choices": {**MICRO["choices"], "kernel": [4]}}, "kernel 4 is not odd"),
    ({"stages": [{"out": 16, "repeats": 1, "stride": 3}]}, "stride 3 must be 1 or 2"),
    ({"stages": [{"out": 16, "repeats": 1, "stride": 1, "choices": {"colour": [1]}}]}, "unknown choice 'colour'"),
    ({"baselines": [{"name": "x", "stages": ["mbconv_r1_k7_s1_e1_c16", "mbconv_r2_k3_s2_e1_c24"]}]},
     "its kernel is not among the choices"),
])
def test_space_validation(change, message):
    with pytest.raises(SpaceError) as err:
        parse_space({**MICRO, **change}, "micro.yaml")
    assert message in str(err.value) and "micro.yaml" in str(err.value)


def test_unknown_space_name(tmp_path):
    with pytest.raises(SpaceError, match="unknown search space 'huge'; use a YAML file or one of"):
        load_space("huge")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(MICRO))
    assert load_space(str(path)).name == "micro"


def test_reward_formula():
    reward = Objective("reward", 400_000_000)
    assert reward.reward(0.75, 400_000_000) == pytest.approx(0.75)
    assert reward.reward(0.75, 800_000_000) == pytest.approx(0.75 * 2 ** -0.07)
    assert reward.reward(0.75, 200_000_000) == pytest.approx(0.75 * 0.5 ** -0.07)
    asym = Objective("reward", 100, w=0.0, w_above=-1.0)
    assert asym.reward(0.5, 50) == 0.5 and asym.reward(0.5, 200) == pytest.approx(0.25)
    hard = Objective("hard", 100)
    assert hard.rejects(101) and not hard.rejects(100)
    assert hard.reward(0.9, 80) == 0.9
    assert Objective("pareto", 1).directions == ["maximize", "minimize"]


def test_parse_macs():
    assert parse_macs("400M") == 400_000_000
    assert parse_macs("1.2G") == 1_200_000_000
    assert parse_macs("25k") == 25_000
    assert parse_macs("116167168") == 116_167_168
    with pytest.raises(Exception, match="cannot read MACs 'lots'"):
        parse_macs("lots")
