"""Several worker processes, one SIGKILLed mid-trial: nothing is lost, on a journal file and on
PostgreSQL (its own file, so the scheduler can run it beside the rest of test_safety.py)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import ROOT
from nas.cli import main
from nas.study.storage import optuna_retries
from test_safety import SEARCH


def _spawned_workers(pid: int) -> list[int]:
    """Child processes of `pid` that are multiprocessing spawn workers, oldest first."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    workers = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append((int(Path(f"/proc/{child}/stat").read_text().split(")")[1].split()[19]), child))
        except OSError:
            continue
    return [c for _, c in sorted(workers)]


def _study_trials(out: Path, storage: optuna.storages.BaseStorage | None):
    if storage is None:  # the run folder's journal file, read afresh (its study: the folder's name)
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(out / "study.journal")))
        return optuna.load_study(study_name=out.name, storage=storage).trials
    # a shared storage: the study is named after the whole --out path
    return optuna.load_study(study_name=str(out.resolve()), storage=storage).trials


def _retries_of(trials, number: int) -> list:
    """Trials queued again for `number`: by our resume (retry_of) or by a stale heartbeat."""
    return [t for t in trials if t.user_attrs.get("retry_of") == number
            or number in optuna_retries(t)]


def _kill_a_worker_mid_trial(proc, out: Path, storage) -> tuple[int, dict]:
    """SIGKILL the worker process running a trial, once one trial has finished and two run.
    Returns the killed trial's number and the finished trials (number -> (arch, value))."""
    deadline = time.time() + 150
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
        try:
            trials = _study_trials(out, storage)
        except Exception:
            continue
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        running = [t for t in trials if t.state == TrialState.RUNNING  # (worker is written after arch)
                   and {"arch", "worker"} <= t.user_attrs.keys()]
        workers = _spawned_workers(proc.pid)  # in spawn order: worker i is workers[i]
        if done and len(running) >= 2 and len(workers) == 3:
            # the trial started last: the most of its epochs left, so it cannot finish between this
            # read of the study and the kill (the oldest running one might, on a loaded machine)
            victim = max(running, key=lambda t: t.datetime_start)
            os.kill(workers[victim.user_attrs["worker"]], signal.SIGKILL)
            return victim.number, {t.number: (t.user_attrs["arch"], t.value) for t in done}
    _, err = proc.communicate(timeout=60)
    pytest.fail(f"no worker was killed mid-trial: {err}")


@pytest.mark.slow  # no real training, but three worker processes started twice
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("kind", ["journal", "postgres"])
def test_three_workers_one_killed_mid_trial_loses_nothing(tmp_path, request, kind, fake_trainer):
    """Journal: the resumed run re-queues the killed trial (the lock says no one else runs).
    PostgreSQL: a live worker finds the trial stale by its heartbeat and runs it again while
    the others go on. Either way, after a pause the run resumes for one more candidate.
    The workers train with the fake trainer (tests/fakes.py), 1 s an epoch, so a kill lands
    mid-trial and the study core, not training, is what takes the time."""
    from fakes import fake_env

    env = fake_env(epoch_seconds=1.0)  # the first run's process and its three workers
    out = tmp_path / f"three-{kind}"
    trials, storage, storage_args, pause = 4, None, [], 3
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        storage = optuna.storages.RDBStorage(url)
        # 4 s grace; 10 candidates keep the two live workers busy well past it
        trials, storage_args, pause = 10, ["--storage", url, "--heartbeat", "1"], 5
    args = [*SEARCH, "--target-macs", "2M", "--pruner", "none", "--sampler", "random", *storage_args,
            "--out", str(out)]
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "nas", *args, "--workers", "3", "--trials", str(trials)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    victim, finished = _kill_a_worker_mid_trial(proc, out, storage)
    _, err = proc.communicate(timeout=300)
    first = time.time() - started
    assert proc.returncode == 2 and "worker(s) exited with an error" in err and "Traceback" not in err
    after_first = _study_trials(out, storage)
    if kind == "postgres":  # re-queued and trained while the two live workers went on
        assert after_first[victim].state == TrialState.FAIL
        assert [r.user_attrs.get("status") for r in _retries_of(after_first, victim)] == ["trained"]
    more = sum(t.user_attrs.get("status") == "trained" for t in after_first) + 1  # workers overshoot
    time.sleep(pause)  # the pause between the kill and the resume is no search time
    started = time.time()
    # resume, one candidate more, in this process (--workers is a resumable setting): what is under
    # test is what the killed run left, and three workers starting again would add only their start-up
    assert main([*args, "--workers", "1", "--trials", str(more)]) == 0
    second = time.time() - started
    trials_now = _study_trials(out, storage)
    assert [t.number for t in trials_now] == list(range(len(trials_now)))  # every trial once
    assert sum(t.user_attrs.get("status") == "trained" for t in trials_now) >= more
    for number, (arch, value) in finished.items():  # no finished trial lost
        assert trials_now[number].user_attrs["arch"] == arch
        assert trials_now[number].value == pytest.approx(value)
    killed = [t for t in trials_now if t.state == TrialState.FAIL]
    assert [k.number for k in killed] == [victim]
    assert len(_retries_of(trials_now, victim)) == 1  # queued again exactly once
    cost = json.loads((out / "cost.json").read_text())
    assert cost["interrupted"] == 1 and cost["failed"] == 0
    assert cost["wall_seconds"] <= first + second  # the pause is not counted ...
    ended = [t for t in trials_now if t.datetime_complete is not None]
    span = (max(t.datetime_complete for t in ended) - min(t.datetime_start for t in ended)).total_seconds()
    assert cost["wall_seconds"] <= span - pause  # ... though the resumed trial ended after it
