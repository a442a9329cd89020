"""Unit tests of the shared core: study lock and settings, re-queue, grid resume, statuses,
the block registry (a toy block registered here is searched, built and counted), canonical
network strings, safe checkpoints and safe file names."""
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from torch import nn

from conftest import ROOT
from nas.blocks import ConvBNAct
from nas.builder import build
from nas.counting import analytic_count
from nas.model_counting import fvcore_macs
from nas.data import load_dataset
from nas.errors import NasError
from nas.paths import safe_name
from nas.registry import BlockType, Conv, get_block, out_size, register_block, unregister_block
from nas.search.engine import SearchConfig, run_search
from nas.search.space import load_space
from nas.spec import ArchSpec, SpecError, StageSpec
from nas.study import (RunLock, Status, StudyError, StudyPlan, await_stale, open_study,
                       requeue_interrupted)
from nas.study.storage import optuna_retries
from nas.train import TrainError, evaluate, evaluate_checkpoint, load_checkpoint, train
from nas.train.augment import Normalize
from nas.train.runtime import Runtime
from nas.recipe import resolve_recipe
from scaling.grid import GridConfig, plan_points, run_grid
from scaling.grid_report import grid_frame

CPU = Runtime(device="cpu", quiet=True)


def _plan(tmp_path, **settings):
    return StudyPlan(tmp_path, "s", None, {"a": 1, "b": 2, **settings}, ("b",), "settings.yaml", "test")


def test_lock_refuses_a_second_holder(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(StudyError, match="another `nas` run is working"):
            with RunLock(tmp_path):
                pass
    with RunLock(tmp_path):  # released
        pass


def test_pinned_settings_refuse_a_change_but_allow_resumable_keys(tmp_path):
    open_study(_plan(tmp_path), ["maximize"], log=lambda _: None)
    open_study(_plan(tmp_path, b=5), ["maximize"], log=lambda _: None)  # b may change
    with pytest.raises(StudyError, match="a differ"):
        open_study(_plan(tmp_path, a=9), ["maximize"], log=lambda _: None)


def test_study_records_its_settings_and_refuses_a_different_joiner(tmp_path):
    journal = str(tmp_path / "shared.journal")
    first = StudyPlan(tmp_path / "one", "same", journal, {"a": 1}, (), "s.yaml", "test")
    study = open_study(first, ["maximize"], log=lambda _: None)
    study.optimize(lambda t: 1.0, n_trials=1)
    other = StudyPlan(tmp_path / "two", "same", journal, {"a": 2}, (), "s.yaml", "test")
    with pytest.raises(StudyError, match="other settings"):
        open_study(other, ["maximize"], log=lambda _: None)


def test_requeue_fails_running_and_queues_it_once(tmp_path):
    study = open_study(_plan(tmp_path), ["maximize"], log=lambda _: None)
    study.enqueue_trial({"x": 1}, user_attrs={"grid_point": 0})
    trial = study.ask({"x": optuna.distributions.IntDistribution(0, 3)})  # left RUNNING, as by a kill
    assert requeue_interrupted(study) == [trial.number]
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].user_attrs == {"retry_of": trial.number, "grid_point": 0}
    assert requeue_interrupted(study) == []  # never twice


DIE_MID_TRIAL = """
import os, signal, sys, time, optuna
from nas.study.storage import make_storage
from pathlib import Path
storage = make_storage(sys.argv[1], Path("."), heartbeat=1)
study = optuna.load_study(study_name=sys.argv[2], storage=storage)
def objective(trial):
    trial.suggest_int("x", 0, 3)
    time.sleep(1.5)  # Optuna's heartbeat thread records the trial's first beat (interval 1 s)
    os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-trial; its heartbeats stop
study.optimize(objective, n_trials=1)
"""


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test asks trials by hand
def test_rdb_study_requeues_a_dead_workers_trial_by_its_heartbeat(tmp_path, postgres_url):
    plan = StudyPlan(tmp_path, "heartbeat-core", postgres_url, {"a": 1}, (), "s.yaml", "test",
                     heartbeat=1)
    study = open_study(plan, ["maximize"], log=lambda _: None)
    study.enqueue_trial({"x": 2}, user_attrs={"grid_point": 2})
    worker = subprocess.run([sys.executable, "-c", DIE_MID_TRIAL, postgres_url, plan.name],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    assert worker.returncode == -signal.SIGKILL
    stopped = study.ask()  # a Ctrl-C'd trial: FAIL without our status attribute
    study.tell(stopped.number, state=optuna.trial.TrialState.FAIL)
    said = []
    study = open_study(plan, ["maximize"], log=said.append)  # joined within the grace period
    states = [t.state for t in study.trials]
    assert states[0] == optuna.trial.TrialState.RUNNING  # may be a live worker: left alone
    assert said == ["1 trial(s) running elsewhere (#0); one whose worker died is re-queued 4 s after "
                    "its last heartbeat", "re-queued interrupted trial(s) #1"]
    started = time.monotonic()
    assert await_stale(study, plan, poll=0.2, timeout=60)  # found stale by a live worker, queued again
    # not before its grace ran out (it was left RUNNING above); how long after the open is up to
    # how long the dying worker took to start, so only an upper bound is asserted
    assert time.monotonic() - started < 15
    retry = [t for t in study.trials if t.state == optuna.trial.TrialState.WAITING
             and 0 in optuna_retries(t)]
    assert len(retry) == 1 and retry[0].params == {"x": 2} and retry[0].user_attrs["grid_point"] == 2
    said.clear()
    open_study(plan, ["maximize"], log=said.append)
    assert said == []  # nothing queued twice
    study.optimize(lambda t: t.suggest_int("x", 0, 3), n_trials=2)  # the two queued trials
    assert not await_stale(study, plan, poll=0.2, timeout=60)  # nothing runs or waits any more


def test_status_values_and_spent_training():
    assert Status.TRAINED.value == "trained" and Status("duplicate") is Status.DUPLICATE
    assert set(Status.spent_training()) == {"trained", "pruned", "diverged"}


# ---- block registry -----------------------------------------------------------------
class ToyBlock(nn.Module):
    """A 1x1 conv to the output width, then a kxk depthwise conv (toy)."""

    def __init__(self, stage, cin, cout, stride, ctx):
        super().__init__()
        self.point = ConvBNAct(cin, cout, 1, 1, ctx.bn, ctx.activation)
        self.depth = ConvBNAct(cout, cout, stage.kernel, stride, ctx.bn, None, groups=cout)

    def forward(self, x):
        return self.depth(self.point(x))


def _toy_layers(stage, cin, cout, stride, hw):
    out_hw = out_size(hw, stride)
    yield Conv(cin, cout, 1, 1, hw), hw * hw * cout
    yield Conv(cout, cout, stage.kernel, cout, out_hw), 0


@pytest.fixture
def toy_block():
    register_block(BlockType("toy", ToyBlock, _toy_layers, searchable=True, summary="toy"))
    yield get_block("toy")
    unregister_block("toy")


def test_a_registered_toy_block_is_validated_built_counted_and_searched(toy_block, tmp_path, fake_trainer):
    spec = ArchSpec.from_yaml(Path("search_spaces/tiny.yaml").read_text().split("choices:")[0]
                              .replace("name: tiny\n", "name: toy\n").split("description")[0]
                              + "resolution: 16\nnum_classes: 10\nstem: {channels: 16, stride: 1}\n"
                              "head: {channels: 64}\nstages: [toy_r2_k3_s2_e1_c24, mbconv_r1_k3_s2_e3_c32]\n")
    model = build(spec)
    assert analytic_count(spec).macs == fvcore_macs(model, 16)
    assert analytic_count(spec).params == sum(p.numel() for p in model.parameters())
    with pytest.raises(SpecError, match="expand must be 1"):
        StageSpec("toy", 1, 3, 1, 8, expand=2)
    space_file = tmp_path / "toyspace.yaml"
    space_file.write_text(Path("search_spaces/tiny.yaml").read_text()
                          .replace("block: [mbconv, ds, conv]", "block: [toy, mbconv]")
                          .replace("name: tiny", "name: toyspace").split("references:")[0])
    space = load_space(str(space_file))
    study = run_search(SearchConfig(space=str(space_file), dataset="digits", target_macs=2_000_000,
                                    out=str(tmp_path / "s"), trials=2, recipe="smoke", device="cpu",
                                    pruner="none"), log=lambda _: None)
    archs = [t.user_attrs["arch"] for t in study.trials if t.user_attrs.get("status") == "trained"]
    assert len(archs) >= 2 and any("toy_" in a for a in archs)
    mbconv_only = tmp_path / "mbconvonly.yaml"
    mbconv_only.write_text(space_file.read_text().replace("block: [toy, mbconv]", "block: [mbconv]")
                           .replace("name: toyspace", "name: mbconvonly"))
    assert space.size() > load_space(str(mbconv_only)).size()  # the toy block's choices are counted


# ---- canonical networks ---------------------------------------------------------------
def test_ds_and_mbconv_e1_are_one_network():
    a = ArchSpec.from_yaml(_tiny_yaml(["ds_r1_k3_s1_e1_c16", "mbconv_r2_k3_s2_e6_c24"]))
    b = ArchSpec.from_yaml(_tiny_yaml(["mbconv_r1_k3_s1_e1_c16", "mbconv_r2_k3_s2_e6_c24"]))
    assert a.arch_string() != b.arch_string() and a.canonical_string() == b.canonical_string()
    space = load_space("tiny")
    st = space.stages[0]
    assert len(st.block_variants()) == 4  # mbconv e1/e3/e6 and conv; ds counts as mbconv e1


def _tiny_yaml(stages):
    return ("name: x\nresolution: 16\nnum_classes: 10\nstem: {channels: 16, stride: 1}\n"
            "head: {channels: 64}\nstages: [" + ", ".join(stages) + "]\n")


TWIN_SPACE = """name: twin
resolution: 16
stem: {channels: 16, kernel: 3, stride: 1}
head: {channels: 64}
choices: {block: [mbconv, ds], expand: [1], kernel: [3], se: [0.0], skip: [true], width: [1.0], repeats: [0]}
stages:
  - {out: 16, repeats: 1, stride: 1}
  - {out: 24, repeats: 1, stride: 2}
baselines:
  - {name: as-ds, stages: [ds_r1_k3_s1_e1_c16, ds_r1_k3_s2_e1_c24]}
  - {name: as-mbconv, stages: [mbconv_r1_k3_s1_e1_c16, mbconv_r1_k3_s2_e1_c24]}
"""


def test_search_counts_the_ds_mbconv_twin_as_a_duplicate(tmp_path, fake_trainer):
    space_file = tmp_path / "twin.yaml"
    space_file.write_text(TWIN_SPACE)
    assert load_space(str(space_file)).size() == 1  # ds and mbconv e1 are the same network
    largest = load_space(str(space_file)).macs_range(10)[1]  # a target the space can reach
    study = run_search(SearchConfig(space=str(space_file), dataset="digits", target_macs=largest,
                                    out=str(tmp_path / "s"), trials=2, recipe="smoke", device="cpu",
                                    sampler="random", pruner="none"), log=lambda _: None)
    first, second = study.trials[:2]
    assert first.user_attrs["status"] == "trained" and second.user_attrs["status"] == "duplicate"
    assert second.user_attrs["duplicate_of"] == first.number
    assert [t.user_attrs.get("status") for t in study.trials].count("trained") == 1


# ---- grid at equal realised MACs ------------------------------------------------------
def _tiny_base(tmp_path, resolution=16, name="tiny-mbconv"):
    space = load_space("tiny")
    base = space.to_spec(dict(space.baselines)[name], num_classes=10, name=name)
    return base.replace(resolution=resolution).save(tmp_path / f"base{resolution}.yaml")


def test_grid_keeps_only_points_at_the_realised_target(tmp_path):
    config = GridConfig(base=str(_tiny_base(tmp_path)), dataset="digits", out=str(tmp_path / "g"))
    points = plan_points(ArchSpec.load(config.base), config)
    assert points and all(abs(p.realised_ratio - 2) <= 0.1 for p in points)
    assert len({p.spec.canonical_string() for p in points}) == len(points)
    loose = plan_points(ArchSpec.load(config.base), GridConfig(**{**config.to_dict(), "tolerance": 10}))
    assert any(abs(p.realised_ratio - 2) > 0.1 for p in loose)  # the filter is what removed them


def test_gamma_1_1_changes_a_32px_resolution(tmp_path):
    from scaling.coefficients import Coefficients
    from scaling.grid import grow
    base = ArchSpec.load(_tiny_base(tmp_path, 32))
    assert grow(base, Coefficients(1.0, 1.0, 1.1)).resolution == 36 != base.resolution
    assert grow(base, Coefficients(1.0, 1.0, 1.1), multiple=8).resolution == 32  # the old rule


def test_grid_resumes_with_one_point_left(tmp_path, fake_trainer):
    args = dict(base=str(_tiny_base(tmp_path, name="tiny-separable")), dataset="digits",
                out=str(tmp_path / "g"), closest=2, recipe="smoke", device="cpu", tolerance=0.3)
    run_grid(GridConfig(**args, timeout=0.001), log=lambda _: None)  # stops after one point
    first = grid_frame(run_grid(GridConfig(**args, timeout=0.001), log=lambda _: None))
    study = run_grid(GridConfig(**args), log=lambda _: None)
    frame = grid_frame(study)
    assert len(first) >= 1 and len(frame) == 2 and frame["point"].is_unique
    assert sum(1 for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE) == 2


# ---- trainer seams ----------------------------------------------------------------------
def test_trainer_refuses_a_class_mismatch_and_evaluate_restores_the_mode(tmp_path):
    digits = load_dataset("digits")
    spec = ArchSpec.from_yaml(_tiny_yaml(["mbconv_r1_k3_s2_e3_c16"])).replace(num_classes=7)
    with pytest.raises(TrainError, match="7 classes"):
        train(spec, digits, resolve_recipe("smoke"), runtime=CPU)
    model = build(spec.replace(num_classes=10)).train()
    evaluate(model, digits.staged("val", "cpu", 16), Normalize(*digits.mean_std(), False), None, 256)
    assert model.training
    model.eval()
    evaluate(model, digits.staged("val", "cpu", 16), Normalize(*digits.mean_std(), False), None, 256)
    assert not model.training


def test_checkpoints_never_unpickle_code_and_refuse_other_classes(tmp_path):
    digits = load_dataset("digits")
    spec = ArchSpec.from_yaml(_tiny_yaml(["mbconv_r1_k3_s2_e3_c16"]))
    train(spec, digits, resolve_recipe("smoke").replace(epochs=1), runtime=CPU, out_dir=tmp_path / "run")
    assert evaluate_checkpoint(tmp_path / "run", digits, "test", "cpu")["accuracy"] > 0
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"spec": {}, "weights": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(TrainError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(TrainError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    two = load_dataset("digits").__class__  # a data set with another class count
    small = digits
    small = two(small.name, small.classes[:2], small.train, small.val, small.test, small.source)
    with pytest.raises(NasError, match="10 classes"):
        evaluate_checkpoint(tmp_path / "run", small, "test", "cpu")


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a/b", "..", "ok-name_1.2"])
def test_safe_name_stays_inside_the_folder(tmp_path, name):
    slug = safe_name(name)
    assert "/" not in slug and ".." not in slug and slug and not slug.startswith(".")
    assert (tmp_path / slug).resolve().parent == tmp_path.resolve()
