"""The weight-sharing supernet (issue 20): coverage of the spaces, exact extraction,
training with resume after SIGKILL, judging with precise BN, and a search that uses it."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from nas.counting import analytic_count
from nas.model_counting import count_params, fvcore_macs
from nas.search.space import load_space, parse_space
from nas.supernet import SupernetError, plan_supernet
from nas.supernet.modules import Supernet, extract

ROOT = Path(__file__).resolve().parents[1]

# a two-stage space small enough to train a supernet in seconds on digits
MICRO = """
name: micro
description: two stages for the supernet tests
resolution: 16
activation: silu
dropout: 0.0
drop_path: 0.0
bn: {eps: 0.001, momentum: 0.01}
stem: {channels: 8, kernel: 3, stride: 2}
head: {channels: 32}
choices:
  block: [mbconv, ds, conv]
  expand: [2, 4]
  kernel: [3, 5]
  se: [0.0, 0.25]
  skip: [true, false]
  width: [0.5, 1.0]
  repeats: [0, 1]
stages:
  - {out: 16, repeats: 1, stride: 2}
  - {out: 24, repeats: 1, stride: 2}
"""


def _scramble_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine weights, so equal outputs mean equal slices."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=gen))
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen))


@pytest.mark.parametrize("space_name", ["tiny", "cifar16"])
def test_extracted_subnets_match_the_supernet_and_their_specs(space_name):
    plan = plan_supernet(load_space(space_name))
    supernet = Supernet(plan, 10).eval()
    _scramble_bn(supernet)
    rng = random.Random(0)
    specs = [plan.largest(10), plan.smallest(10)] + [plan.random(rng, 10, f"r{i}") for i in range(12)]
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    seen_ops = set()
    for spec in specs:
        plan.check_runs(spec)
        net = extract(supernet, spec)
        with torch.no_grad():
            diff = (net(x) - supernet(x, spec)).abs().max().item()
        assert diff <= 1e-5, (spec.arch_string(), diff)
        count = analytic_count(spec)
        assert count.params == count_params(net)
        assert count.macs == fvcore_macs(net, spec.resolution)
        seen_ops.update(s.block for s in spec.stages)
    assert {"mbconv", "conv"} <= seen_ops  # the random subnets reached the separate operations


def test_the_largest_subnet_holds_the_supernets_own_weights():
    plan = plan_supernet(load_space("tiny"))
    supernet = Supernet(plan, 10)
    largest = plan.largest(10)
    assert all(s.block == "mbconv" and s.expand == 6 and s.kernel == 5 for s in largest.stages)
    state = supernet.subnet_state(largest)
    # every tensor of the mbconv path in every position is used whole by the largest subnet
    whole = {k: v for k, v in supernet.state_dict().items() if ".mbconv." in k and "num_batches" not in k}
    used = 0
    for name, tensor in whole.items():
        stage, position = int(name.split(".")[1]), int(name.split(".")[2])
        if position >= largest.stages[stage].repeats:
            continue
        used += 1
        assert any(t.shape == tensor.shape and torch.equal(t, tensor) for t in state.values()), name
    assert used > 20


def test_a_space_the_supernet_cannot_cover_is_refused_in_one_line():
    import dataclasses

    import yaml

    from nas.registry import get_block, register_block, unregister_block

    # a searchable ResNet basic block, as a user might register one: no supernet operation has it
    register_block(dataclasses.replace(get_block("basic"), name="sbasic", searchable=True))
    try:
        space = parse_space(yaml.safe_load(MICRO.replace("block: [mbconv, ds, conv]", "block: [mbconv, sbasic]")),
                            "micro")
        with pytest.raises(SupernetError) as info:
            plan_supernet(space)
    finally:
        unregister_block("sbasic")
    message = str(info.value)
    assert "\n" not in message and "stage 1" in message and "block=sbasic" in message


def test_a_net_outside_the_supernet_is_refused_naming_stage_and_choice():
    plan = plan_supernet(load_space("tiny"))
    wide = plan.largest(10)
    stages = list(wide.stages)
    stages[1] = stages[1].__class__(**{**stages[1].__dict__, "out": stages[1].out + 8})
    with pytest.raises(SupernetError, match=r"stage 2 .*channels exceed the widest 32"):
        plan.check_runs(wide.replace(stages=tuple(stages)))


@pytest.fixture(scope="module")
def micro_supernet(tmp_path_factory):
    """A supernet of the micro space trained 2 epochs on digits, killed after epoch 1 and resumed."""
    root = tmp_path_factory.mktemp("supernet")
    space = root / "micro.yaml"
    space.write_text(MICRO)
    out = root / "sn"
    cmd = [sys.executable, "-m", "nas", "supernet", "train", "--space", str(space), "--dataset", "digits",
           "--recipe", "smoke", "--epochs", "3", "--batch-size", "128", "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "history.csv").exists() and proc.poll() is None:
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    first = pd.read_csv(out / "history.csv")
    assert len(first) == 1  # killed after its first epoch was saved, before the last
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 2 and "already holds a supernet" in again.stderr + again.stdout
    resumed = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the supernet" in resumed.stdout and "epoch 3/3" in resumed.stdout
    return out, first, space


@pytest.mark.slow
def test_supernet_trains_resumes_after_sigkill_and_writes_its_folder(micro_supernet):
    out, first, _space = micro_supernet
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    assert history.loc[0, "loss"] == pytest.approx(first.loc[0, "loss"])  # epoch 1 kept, not redone
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    meta = json.loads((out / "supernet.json").read_text())
    assert meta["dataset"] == "digits" and meta["num_classes"] == 10
    assert (out / "space.yaml").is_file()
    assert history["val_largest"].iloc[-1] > 0.3  # 10 classes: chance is 0.1


def test_supernet_evaluator_is_deterministic_and_judges_only_its_nets(micro_supernet):
    from nas.data import load_dataset
    from nas.evaluators import EvaluatorError, resolve_evaluator

    out, _first, space_file = micro_supernet
    evaluator = resolve_evaluator(f"supernet:{out}")
    dataset = load_dataset("digits")
    plan = plan_supernet(load_space(str(space_file)))
    spec = plan.largest(10)
    a, b = evaluator.score(spec, dataset), evaluator.score(spec, dataset)
    assert a.value == b.value and 0.0 <= a.value <= 1.0 and a.seconds > 0
    small = evaluator.score(plan.smallest(10), dataset)
    assert small.value != a.value
    with pytest.raises(EvaluatorError, match="stages"):
        evaluator.score(plan.largest(10).replace(stages=plan.largest(10).stages * 2), dataset)


@pytest.mark.slow
def test_search_with_the_supernet_judges_hundreds_of_candidates(micro_supernet, tmp_path):
    out, _first, space_file = micro_supernet
    run = tmp_path / "search"
    proc = subprocess.run([sys.executable, "-m", "nas", "search", "--space", str(space_file), "--dataset", "digits",
                           "--evaluator", f"supernet:{out}", "--target-macs", "200k", "--trials", "200",
                           "--baselines", "none", "--sampler", "random", "--device", "cpu", "--out", str(run)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = pd.read_csv(run / "trials.csv")
    judged = trials[trials["status"] == "trained"]
    assert len(judged) >= 200 and len(trials) >= 200  # --trials counts judged candidates, not duplicates
    assert judged["evaluator"].str.startswith("supernet:").all()
    assert judged["val_acc"].between(0, 1).all() and judged["val_acc"].nunique() > 10


def test_extract_writes_a_run_that_fine_tunes_and_matches(micro_supernet, tmp_path, capsys):
    from nas.interop.checkpoint import read_checkpoint
    from nas.interop.finetune import init_weights_for
    from nas.spec import ArchSpec

    out, _first, space_file = micro_supernet
    plan = plan_supernet(load_space(str(space_file)))
    arch = plan.smallest(10).arch_string()
    target = tmp_path / "sub"
    from nas.cli import main

    assert main(["supernet", "extract", str(out), arch, "--out", str(target), "--device", "cpu"]) == 0
    spec, weights = read_checkpoint(target)
    assert spec.arch_string() == arch and ArchSpec.load(target / "spec.yaml") == spec
    assert set(init_weights_for(spec, target, log=lambda _l: None)) == set(weights)
    capsys.readouterr()
    assert main(["supernet", "eval", str(out), arch, "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    accuracy = json.loads((target / "convert.json").read_text())["val_acc"]
    assert f"val {accuracy * 100:.2f}%" in printed


def test_pipeline_supernet_option_searches_with_the_supernet_evaluator(monkeypatch, capsys, tmp_path):
    import scaling.pipeline
    from nas.cli import main

    seen = {}

    class Recorder:
        def __init__(self, config):
            seen["config"] = config

        def check(self, log=None):
            pass

        def run(self, trainer=None, log=None):
            return None

        def report(self, result, log=None):
            return result

    monkeypatch.setattr(scaling.pipeline, "Pipeline", Recorder)
    base = ["pipeline", "--space", "tiny", "--dataset", "digits", "--target-macs", "1.5M", "--out", str(tmp_path / "p")]
    assert main(base + ["--supernet", "runs/sn"]) == 0
    assert seen["config"].evaluator == "supernet:runs/sn"
    capsys.readouterr()
    assert main(base[:-1] + [str(tmp_path / "q"), "--supernet", "runs/sn", "--evaluator", "synflow"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "give one" in err and not (tmp_path / "q").exists()


def test_ridge_predictor_recovers_a_linear_rule_out_of_fold():
    import numpy as np
    from scipy.stats import kendalltau

    from nas.supernet.predictor import cross_validated

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = 0.5 + x @ np.array([0.02, -0.01, 0.03, 0.0, 0.01])
    predictor, out_of_fold = cross_validated(x, y)
    assert kendalltau(out_of_fold, y)[0] > 0.95
    assert np.allclose(predictor.predict_features(x), y, atol=2e-3)
    assert predictor.penalty <= 0.1  # noiseless data: the least penalty wins


def test_predictor_fits_on_judged_subnets_and_drives_a_search(micro_supernet, tmp_path, capsys):
    from nas.cli import main

    out, _first, space_file = micro_supernet
    assert main(["supernet", "predictor", str(out), "--samples", "20", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "out-of-fold Kendall tau" in printed
    samples = pd.read_csv(out / "predictor.csv")
    assert len(samples) == 20 and samples["arch"].is_unique and samples["val_acc"].between(0, 1).all()
    assert main(["supernet", "predictor", str(out), "--samples", "22", "--device", "cpu"]) == 0  # goes on
    assert pd.read_csv(out / "predictor.csv")["arch"].head(20).tolist() == samples["arch"].tolist()
    run = tmp_path / "search"
    assert main(["search", "--space", str(space_file), "--dataset", "digits", "--evaluator", f"predictor:{out}",
                 "--target-macs", "200k", "--trials", "60", "--baselines", "none", "--sampler", "random",
                 "--device", "cpu", "--out", str(run)]) == 0
    judged = pd.read_csv(run / "trials.csv").query("status == 'trained'")
    assert len(judged) >= 60 and judged["val_acc"].nunique() > 10
