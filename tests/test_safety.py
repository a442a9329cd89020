"""User errors end in one line and exit 2, never a silent wrong answer or a traceback; a folder
that existed before a refused command is left byte-for-byte unchanged."""
import datetime
import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from conftest import ROOT, sigint_default
from nas.cli import build_parser, main
from nas.errors import NasError
from nas.runfolder.lock import RunLock

SEARCH = ["search", "--space", "tiny", "--dataset", "digits", "--recipe", "smoke", "--device", "cpu"]


def tree_hash(folder: Path) -> dict:
    """Every file under `folder` (the lock file too) -> sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith(("error:", "nas ")), err
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def spec_file(tmp_path, tiny_spec):
    return str(tiny_spec.save(tmp_path / "tiny.yaml"))


# item 1: scale emit / single never overwrite another run's outputs --------------------------

EMIT = ["scale", "emit", "--coefficients", "1.2,1.1,1.15"]


def test_emit_into_another_emission_is_refused_and_leaves_it_unchanged(tmp_path, spec_file, capsys):
    out = tmp_path / "scaled"
    assert main(EMIT + ["--base", spec_file, "--phi", "1,2", "--out", str(out)]) == 0
    before = tree_hash(out)
    assert main(EMIT + ["--base", spec_file, "--phi", "1,3", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "already holds another emission" in line and "tiny-phi2" in line and "tiny-phi3" in line
    assert tree_hash(out) == before
    assert main(EMIT + ["--base", spec_file, "--coefficients", "1.1,1.2,1.1", "--phi", "1,2",
                        "--out", str(out)]) == 2
    assert "scaled.csv: " in capsys.readouterr().err and tree_hash(out) == before
    # the same emission again is harmless
    assert main(EMIT + ["--base", spec_file, "--phi", "1,2", "--out", str(out)]) == 0


def test_single_into_another_single_is_refused(tmp_path, spec_file, capsys):
    out = tmp_path / "single"
    base = ["scale", "single", "--base", spec_file, "--out", str(out)]
    assert main(base + ["--dimension", "width", "--targets", "2x"]) == 0
    before = tree_hash(out)
    assert main(base + ["--dimension", "depth", "--targets", "2x"]) == 2
    assert "already holds another single-dimension scaling" in one_error_line(capsys.readouterr().err)
    assert tree_hash(out) == before


def test_emit_waits_for_no_one_while_another_run_holds_the_folder(tmp_path, spec_file, capsys):
    out = tmp_path / "busy"
    with RunLock(out):
        assert main(EMIT + ["--base", spec_file, "--phi", "1", "--out", str(out)]) == 2
    assert "another `nas` run is working in" in one_error_line(capsys.readouterr().err)
    assert not (out / "scaled.csv").exists()


def _png(path: Path, value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def test_empty_class_folder_is_refused_naming_it(tmp_path, spec_file, capsys):
    data = tmp_path / "imgs"
    for i in range(4):
        _png(data / "cat" / f"{i}.png", 40 * i)
    (data / "dog").mkdir()
    (data / "dog" / "notes.txt").write_text("no images here")
    before = tree_hash(data)
    out = tmp_path / "run"
    assert main(["train", spec_file, "--dataset", f"imagefolder:{data}", "--recipe", "smoke",
                 "--device", "cpu", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"class folder {data / 'dog'} holds no images" in line
    assert tree_hash(data) == before and not out.exists()


def test_data_resolution_below_the_spec_is_refused(tmp_path, spec_file, capsys):
    out = tmp_path / "run"
    assert main(["train", spec_file, "--dataset", "digits", "--data-resolution", "4", "--recipe", "smoke",
                 "--device", "cpu", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--data-resolution 4 is below tiny's 16 px input" in line and "MACs" in line
    assert not out.exists()
    assert main(SEARCH + ["--data-resolution", "8", "--target-macs", "2M", "--out", str(out)]) == 2
    assert "below space tiny's 16 px" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_search_without_a_best_does_not_name_best_yaml(tmp_path, capsys):
    # hard mode at the space's smallest MACs without redraws: the first (sampled) trial is rejected, and the
    # timeout stops the run
    out = tmp_path / "nobest"
    assert main(SEARCH + ["--objective", "hard", "--target-macs", "329344", "--baselines", "none", "--trials", "1",
                          "--budget-draws", "0",
                          "--timeout", "0.001", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no candidate finished training" in printed
    assert "best.yaml" not in printed and not (out / "best.yaml").exists()


def test_huge_phi_warns_and_phi_nan_is_refused_at_parse_time(tmp_path, spec_file, capsys):
    out = tmp_path / "huge"
    assert main(EMIT + ["--base", spec_file, "--phi", "1,25", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: tiny-phi25 (phi 25) is a huge net" in err and " px input" in err and "G MACs" in err
    assert "tiny-phi1 (phi" not in err
    for phi in ("nan", "inf", "1,nan"):
        with pytest.raises(SystemExit) as exc:
            main(EMIT + ["--base", spec_file, f"--phi={phi}", "--out", str(tmp_path / "nan")])
        assert exc.value.code == 2
        assert "is not a finite number" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "nan").exists()


# item 2: the cost card after a kill and resume --------------------------------------------

def _frozen(state, value, t0, start_min, end_min, attrs):
    trial = create_trial(state=state, value=value, user_attrs=attrs)
    trial.datetime_start = t0 + datetime.timedelta(minutes=start_min)
    trial.datetime_complete = t0 + datetime.timedelta(minutes=end_min)
    return trial


def test_cost_card_excludes_pauses_and_counts_requeued_trials_as_interrupted():
    from nas.search.report import busy_seconds, cost_card, cost_line, trials_frame

    study = optuna.create_study()
    done = dict(status="trained", macs=1000, images_seen=10, seconds=60.0, device="cpu")
    study.add_trial(_frozen(TrialState.COMPLETE, 0.5, datetime.datetime(2026, 1, 1), 0, 1, done))
    study.add_trial(_frozen(TrialState.COMPLETE, 0.5, datetime.datetime(2026, 1, 1), 0.5, 2, done))
    # killed at minute 3, closed by the resume at minute 600 (the night in between is no work)
    study.add_trial(_frozen(TrialState.FAIL, None, datetime.datetime(2026, 1, 1), 2, 600, {}))
    study.add_trial(_frozen(TrialState.COMPLETE, 0.5, datetime.datetime(2026, 1, 1), 600, 603,
                            {**done, "retry_of": 2}))
    study.add_trial(_frozen(TrialState.FAIL, None, datetime.datetime(2026, 1, 1), 603, 604,
                            {"status": "failed"}))
    cost = cost_card(trials_frame(study), study)
    assert cost["wall_seconds"] == pytest.approx((2 + 3 + 1) * 60)
    assert cost["interrupted"] == 1 and cost["failed"] == 1
    assert "1 failed, 1 interrupted and re-run" in cost_line(cost)
    t = datetime.datetime(2026, 1, 1)
    assert busy_seconds([]) == 0
    assert busy_seconds([(t, t + datetime.timedelta(seconds=5)),
                         (t + datetime.timedelta(seconds=1), t + datetime.timedelta(seconds=3))]) == 5


# item 3: study isolation --------------------------------------------------------------------

def test_another_storage_for_an_existing_out_is_refused(tmp_path):
    from nas.search.engine import SearchConfig
    from nas.study import open_study
    from nas.errors import StudyError

    out = tmp_path / "iso"
    config = SearchConfig(space="tiny", dataset="digits", target_macs=2_000_000, out=str(out))
    open_study(config.plan(), ["maximize"], log=lambda _: None)
    assert "storage" not in SearchConfig.RESUMABLE
    before = tree_hash(out)
    other = SearchConfig(space="tiny", dataset="digits", target_macs=2_000_000, out=str(out),
                         storage=str(tmp_path / "elsewhere.journal"))
    with pytest.raises(StudyError, match=r"other settings \(storage differ\)"):
        open_study(other.plan(), ["maximize"], log=lambda _: None)
    assert tree_hash(out) == before and not (tmp_path / "elsewhere.journal").exists()


# item 4: one line, exit 2 -----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    [*SEARCH, "--target-macs", bad, "--out", "x"] for bad in ("abc", "0", "-5M", "nan", "inf", "1e400")
] + [
    [*SEARCH, "--target-macs", "2M", "--timeout", "-1", "--out", "x"],
    ["scale", "emit", "--base", "b", "--paper", "--phi", "nan", "--out", "x"],
    ["compare", "a.yaml", "--dataset", "digits", "--seeds", "a,b", "--out", "x"],
])
def test_parse_time_errors_are_one_usage_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err)


def test_eval_of_an_empty_checkpoint_is_one_line(tmp_path, capsys):
    empty = tmp_path / "checkpoint.pt"
    empty.write_bytes(b"")
    assert main(["eval", str(empty), "--dataset", "digits", "--device", "cpu"]) == 2
    one_error_line(capsys.readouterr().err)


def test_unwritable_out_is_one_line_naming_the_path(tmp_path, spec_file, capsys, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0:  # root writes anywhere: then the refusal is simulated below
        out.chmod(0o500)
        try:
            assert main(EMIT + ["--base", spec_file, "--phi", "1", "--out", str(out)]) == 2
        finally:
            out.chmod(0o700)
        assert "cannot write" in one_error_line(capsys.readouterr().err)
    import nas.runfolder.outputs

    def refuse(*_a, **_k):
        raise PermissionError(13, "Permission denied", str(out / ".nas.lock"))

    monkeypatch.setattr(nas.runfolder.outputs, "RunLock", refuse)
    assert main(EMIT + ["--base", spec_file, "--phi", "1", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: cannot write {out / '.nas.lock'}: Permission denied; choose a writable --out"


def test_memory_estimate_refuses_before_training(tmp_path, spec_file, capsys, tiny_spec):
    from nas.train.memory import activation_elements, check_memory, training_bytes

    assert activation_elements(tiny_spec) > 0
    need = training_bytes(tiny_spec, 64)
    check_memory(tiny_spec, 64, "cpu", available=need + 1)
    with pytest.raises(NasError, match=r"use --batch-size \d+ or less"):
        check_memory(tiny_spec, 64, "cpu", available=need // 4)
    # a huge emitted net: nas train refuses in one line, nas flops counts it without tracing
    out = tmp_path / "huge"
    assert main(EMIT + ["--base", spec_file, "--phi", "30", "--out", str(out)]) == 0
    huge = str(out / "tiny-phi30.yaml")
    capsys.readouterr()
    assert main(["train", huge, "--dataset", "digits", "--recipe", "smoke", "--device", "cpu",
                 "--out", str(tmp_path / "t")]) == 2
    assert "GiB available" in one_error_line(capsys.readouterr().err)
    assert main(["flops", huge]) == 0
    assert "fvcore trace skipped" in capsys.readouterr().out


def test_scientific_notation_in_yaml_is_a_float(tmp_path, tiny_spec):
    from nas.recipe import resolve_recipe
    from nas.spec import ArchSpec

    path = tmp_path / "r.yaml"
    path.write_text("name: sci\nepochs: 1\nlr: 1e-3\nweight_decay: 5e-5\nlabel_smoothing: 1E-1\n")
    recipe = resolve_recipe(str(path))
    assert (recipe.lr, recipe.weight_decay, recipe.label_smoothing) == (0.001, 5e-5, 0.1)
    text = tiny_spec.to_yaml().replace("dropout: 0.1", "dropout: 1e-1")
    assert "1e-1" in text and ArchSpec.from_yaml(text).dropout == 0.1


@pytest.mark.slow
def test_ctrl_c_in_a_search_is_one_line_and_exit_130(tmp_path):
    """The search trains with the fake trainer (tests/fakes.py), 0.5 s an epoch: Ctrl-C lands in a trial."""
    from fakes import fake_env

    cmd = [sys.executable, "-m", "nas", *SEARCH, "--target-macs", "2M", "--trials", "20",
           "--out", str(tmp_path / "int")]
    proc = subprocess.Popen(cmd, cwd=ROOT, preexec_fn=sigint_default, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=fake_env(epoch_seconds=0.5))
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line or "trial " in line and "#" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("interrupted; ")


# item 5: newcomer guidance ----------------------------------------------------------------

def test_far_upsampled_data_warns():
    from nas.data import load_dataset
    from nas.data.fit import native_resolution_note

    digits = load_dataset("digits", resolution=8)
    assert native_resolution_note(digits, 16) is None
    note = native_resolution_note(digits, 224)
    assert note.startswith("warning: digits images are 8 px natively") and "28x" in note


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line.strip() for line in joined.splitlines() if line.strip().startswith("nas ")]
    return lines


def test_readme_commands_parse_with_the_real_parser(capsys):
    commands = _readme_commands()
    assert len(commands) >= 10
    for line in commands:
        argv = shlex.split(line, comments=True)[1:]
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"README command does not parse ({exc.code}): {line}\n{capsys.readouterr().err}")
    subcommands = {tuple(a for a in shlex.split(line, comments=True)[1:3] if not a.startswith("-"))
                   for line in commands}
    for words in subcommands:
        words = words[:2] if words[0] == "scale" else words[:1]
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args([*words, "--help"])
        assert exc.value.code == 0


def test_slow_cpu_run_warns_after_the_first_steps(tiny_spec):
    """The warning's arithmetic on a stand-in run (run_epoch calls it after ETA_PROBE_STEPS
    steps of the first epoch on a CPU; a real training run is too slow for this file)."""
    import types

    import nas.train.trainer as trainer
    from nas.recipe import resolve_recipe

    said = []
    run = types.SimpleNamespace(device=types.SimpleNamespace(type="cpu"), steps_per_epoch=100,
                                recipe=resolve_recipe("smoke").replace(epochs=10), spec=tiny_spec,
                                say=said.append)
    trainer._warn_if_slow(run, trainer.ETA_PROBE_STEPS * 0.1)  # 0.1 s a step: 100 s for the run
    assert said == []
    trainer._warn_if_slow(run, trainer.ETA_PROBE_STEPS * 5.0)  # 5 s a step: 5000 s
    assert len(said) == 1 and "about 8 min and the run about 1.4 h" in said[0]
    run.device.type = "cuda"
    trainer._warn_if_slow(run, trainer.ETA_PROBE_STEPS * 5.0)
    assert len(said) == 1
