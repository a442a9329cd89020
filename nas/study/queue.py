"""Studies of planned work: every unit an enqueued fixed trial, keyed by a user attribute.

A planned study (a benchmark; the scaling grid works the same way) knows all its units up
front. `enqueue_missing` queues each unit that is neither finished, waiting nor running,
so a resumed run adds only what a killed one left; `drain_queue` runs the queue in one
worker until it is empty, then waits for units running under workers that may have died.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

import optuna
from optuna.trial import TrialState

from .core import Status, StudyPlan, await_stale, load_for_worker, set_attrs

PRESENT = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)


def enqueue_missing(study: optuna.Study, key: str, units: int, params: Callable[[int], dict]) -> int:
    """Queue every unit 0..units-1 whose `key` attribute no finished, waiting or running trial
    holds; returns how many units are waiting.

    Args:
        study: the study.
        key: the user attribute naming a trial's unit.
        units: how many units are planned.
        params: the fixed parameters of unit i.
    """
    present = {t.user_attrs.get(key) for t in study.get_trials(deepcopy=False, states=PRESENT)}
    for i in range(units):
        if i not in present:
            study.enqueue_trial(params(i), user_attrs={key: i})
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _stop_when_queue_empty(study: optuna.Study, _trial: Any) -> None:
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        study.stop()


def drain_queue(study: optuna.Study, plan: StudyPlan, objective: Callable[[optuna.Trial], Any],
                catch: tuple, timeout: Optional[float] = None) -> None:
    """Run queued trials until none waits (or `timeout` seconds pass); on an RDB storage also
    run, once found stale, the trials of workers that died.

    Args:
        study: the study as this worker sees it.
        plan: the study's plan (its storage kind and heartbeat).
        objective: the trial function.
        catch: exceptions that fail one trial and let the worker go on.
        timeout: start no trial after this many seconds.
    """
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        study.optimize(objective, callbacks=[_stop_when_queue_empty], catch=catch, timeout=left)
        if not await_stale(study, plan):  # a dead worker's trial is run here once found stale
            return


def queued_unit(trial: optuna.Trial, key: str, param: str, units: int) -> int:
    """The planned unit `trial` was enqueued for (its fixed `param`). A trial that was not
    enqueued -- a worker asked for work after another took the last unit -- is marked surplus,
    stops its worker's loop and is pruned, so it is never counted as work done."""
    if key not in trial.user_attrs:
        set_attrs(trial, status=Status.SURPLUS)
        trial.study.stop()
        raise optuna.TrialPruned()
    return trial.suggest_categorical(param, list(range(units)))


def queue_worker(plan: StudyPlan, worker: int, seed: int, make_runner: Callable[[], Callable[[optuna.Trial], Any]],
                 catch: tuple, timeout: Optional[float] = None) -> None:
    """One worker of a planned study: nothing when no unit waits, else `drain_queue` with the
    objective `make_runner()` builds (built only then: it loads the data)."""
    study = load_for_worker(plan, optuna.samplers.RandomSampler(seed=seed + 7919 * worker))
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return
    drain_queue(study, plan, make_runner(), catch, timeout)
