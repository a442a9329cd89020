"""Evaluators: zero-cost proxies on cases with known answers, determinism, counts, registry."""
import dataclasses
import math

import pytest
import torch

from nas.builder import build
from nas.counting import analytic_count
from nas.data import Split, load_dataset
from nas.evaluators import EvaluatorError, evaluator_names, resolve_evaluator
from nas.evaluators import training, zero_cost
from nas.spec import ArchSpec

from conftest import smoke_recipe_file

ALL = ["synflow", "naswot", "grad_norm", "snip", "zico", "params", "macs"]


def _spec(name, stages, activation="silu", head=32):
    return ArchSpec.from_dict({"name": name, "resolution": 16, "num_classes": 10, "activation": activation,
                               "stem": {"channels": 8, "kernel": 3, "stride": 2}, "stages": stages,
                               "head": {"channels": head}, "dropout": 0.1, "drop_path": 0.1})


SPECS = [_spec("a", ["mbconv_r1_k3_s1_e2_c8_se0.25", "mbconv_r1_k3_s2_e3_c16"]),
         _spec("b", ["ds_r1_k3_s1_e1_c8", "conv_r1_k3_s2_e1_c12"], activation="relu"),
         _spec("c", ["mbconv_r2_k5_s2_e4_c16_se0.25"], head=48)]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory):
    return smoke_recipe_file(tmp_path_factory, "tiny-test", epochs=2, batch_size=64, train_fraction=0.2)


@pytest.mark.slow
def test_every_evaluator_scores_three_specs_deterministically(digits, recipe_file):
    names = ALL + [f"train:{recipe_file}", f"sotl:{recipe_file}"]
    for name in names:
        evaluator = resolve_evaluator(name)
        first = [evaluator.score(s, digits, seed=3) for s in SPECS]
        training._RUNS.clear()  # train again rather than read the remembered run
        again = [evaluator.score(s, digits, seed=3) for s in SPECS]
        assert [a.value for a in first] == [b.value for b in again], name
        assert all(math.isfinite(a.value) and a.seconds >= 0 for a in first), name
        assert len({a.value for a in first}) == 3, f"{name} tells the three nets apart"


def test_sotl_is_minus_the_sum_of_the_runs_epoch_losses(digits, recipe_file):
    sotl = resolve_evaluator(f"sotl:{recipe_file}").score(SPECS[0], digits, seed=1)
    acc = resolve_evaluator(f"train:{recipe_file}").score(SPECS[0], digits, seed=1)
    assert len(sotl.details["train_losses"]) == 2
    assert sotl.value == pytest.approx(-sum(sotl.details["train_losses"]))
    assert acc.details["cached"] and 0 < acc.value <= 1  # the same run serves both


def test_synflow_does_not_depend_on_the_data(digits):
    noise = torch.randint(0, 256, digits.train.images.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    other = dataclasses.replace(digits, train=Split(noise, digits.train.labels.flip(0)), _staged={}, _stats=None)
    synflow = resolve_evaluator("synflow")
    for spec in SPECS:
        assert synflow.score(spec, digits).value == synflow.score(spec, other).value
    snip = resolve_evaluator("snip")  # a data-dependent proxy does see the difference
    assert snip.score(SPECS[0], digits).value != snip.score(SPECS[0], other).value


@pytest.mark.parametrize("proxy", ["synflow", "snip", "grad_norm"])
def test_a_net_with_a_zeroed_layer_scores_lowest(digits, proxy):
    fn = getattr(zero_cost, proxy)
    batches = zero_cost.train_batches(digits, 16, torch.device("cpu"), 1, 64, 0)
    scores = [fn(zero_cost.init_model(s, 0, torch.device("cpu")), batches)[0] for s in SPECS]
    dead = zero_cost.init_model(SPECS[0], 0, torch.device("cpu"))
    with torch.no_grad():
        dead.classifier.weight.zero_()  # no signal reaches the logits
    assert fn(dead, batches)[0] < min(scores)


def test_naswot_is_finite_on_a_silu_net_and_skips_se_gates(digits):
    spec = SPECS[0]
    model = zero_cost.init_model(spec, 0, torch.device("cpu"))
    batches = zero_cost.train_batches(digits, 16, torch.device("cpu"), 1, 32, 0)
    value, details = zero_cost.naswot(model, batches)
    assert math.isfinite(value) and value > 0
    silu = sum(isinstance(m, torch.nn.SiLU) for m in model.modules())
    assert details["hooked"] == silu - 1  # the one SE's inner SiLU is not a feature unit


def test_params_and_macs_equal_the_counts_of_the_net(digits):
    for spec in SPECS:
        assert resolve_evaluator("params").score(spec, digits).value == sum(
            p.numel() for p in build(spec).parameters())  # the built module's own count
        assert resolve_evaluator("macs").score(spec, digits).value == analytic_count(spec).macs


def test_unknown_or_misspelt_evaluators_are_one_line_listing_the_known_ones():
    for bad in ("synflo", "train", "synflow:3"):
        with pytest.raises(EvaluatorError) as err:
            resolve_evaluator(bad)
        assert "\n" not in str(err.value) and "train:RECIPE" in str(err.value) and "zico" in str(err.value)
    assert set(ALL) <= set(evaluator_names())
