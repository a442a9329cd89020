"""One resumable-study core for every multi-run command (search, grid, and the runs built on
them): the run folder's lock, pinned settings, storage, re-queue of interrupted trials,
worker processes, trial statuses, de-duplication by a canonical key and one progress line.

Only Optuna's public API is used, so an Optuna upgrade cannot break resuming.
"""
from __future__ import annotations

import contextlib
import enum
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..progress import fmt_seconds
from .rundir import RunLock, StudyError, pin_settings, spawn_workers
from .storage import is_file_storage, make_storage, requeue_interrupted

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own trial lines say more


class Status(str, enum.Enum):
    """What a trial did, stored as its ``status`` user attribute."""

    TRAINED = "trained"          # trained to the end
    PRUNED = "pruned"            # stopped early by the pruner
    DIVERGED = "diverged"        # the loss became NaN/inf
    FAILED = "failed"            # the trainer refused or crashed (message in ``error``)
    REJECTED = "rejected"        # over a hard budget: never trained
    DUPLICATE = "duplicate"      # the same network as an earlier trial: its numbers reused
    SURPLUS = "surplus"          # a worker asked for work after the queue ran dry

    @classmethod
    def spent_training(cls) -> tuple[str, ...]:
        """Statuses whose trial spent training compute."""
        return (cls.TRAINED.value, cls.PRUNED.value, cls.DIVERGED.value)


@dataclass(frozen=True)
class StudyPlan:
    """Where a study lives and which of its settings may change between runs.

    Args:
        out: the run folder (lock, pinned settings, default journal file).
        name: the study's name in its storage.
        storage: None (a journal file in `out`), a journal path, or an Optuna RDB URL.
        settings: the run's settings, pinned in `out/settings_file` and on the study.
        resumable: keys of `settings` that may differ when the run is resumed.
        settings_file: file name of the pinned settings inside `out`.
        what: the kind of run, for messages ("search", "grid", ...).
    """

    out: Path
    name: str
    storage: Optional[str]
    settings: dict
    resumable: tuple[str, ...]
    settings_file: str
    what: str

    def pinned(self) -> dict:
        return {k: v for k, v in self.settings.items() if k not in self.resumable}


@contextlib.contextmanager
def locked(plan: StudyPlan) -> Iterator[None]:
    """Hold the run folder's lock, and a shared journal file's own lock when there is one."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(RunLock(plan.out))
        if plan.storage is not None and is_file_storage(plan.storage):
            journal = Path(plan.storage.removeprefix("journal:")).resolve()
            if journal.parent != plan.out.resolve():
                stack.enter_context(RunLock(journal.parent, f".{journal.name}.lock"))
        yield


def open_study(plan: StudyPlan, directions: Sequence[str], log: Callable[[str], None] = print
               ) -> optuna.Study:
    """Pin the settings, create or load the study, check a joined study's own settings, and
    re-queue trials a killed run left behind (file storages: the lock makes that safe)."""
    pin_settings(plan.out, plan.settings_file, plan.settings, plan.resumable, plan.what)
    storage = make_storage(plan.storage, plan.out)
    study = optuna.create_study(study_name=plan.name, storage=storage, load_if_exists=True,
                                directions=list(directions))
    _check_study_settings(study, plan)
    if is_file_storage(plan.storage):
        requeued = requeue_interrupted(study)
        if requeued:
            log(f"re-queued interrupted trial(s) {', '.join(f'#{n}' for n in requeued)}")
    return study


def _check_study_settings(study: optuna.Study, plan: StudyPlan) -> None:
    pinned = {k: v for k, v in plan.pinned().items() if k not in ("out", "study_name")}
    saved = study.user_attrs.get("settings")
    if saved is None:
        if study.trials:
            return  # a study from before settings were recorded on it: the folder's pin rules
        study.set_user_attr("settings", pinned)
        return
    changed = sorted(k for k in set(saved) | set(pinned) if saved.get(k) != pinned.get(k))
    if changed:
        raise StudyError(f"study {plan.name!r} in that storage was made with other settings "
                         f"({', '.join(changed[:4])} differ); use the same settings, or another "
                         "--study-name / --out")


def load_for_worker(plan: StudyPlan, sampler: optuna.samplers.BaseSampler,
                    pruner: Optional[optuna.pruners.BasePruner] = None) -> optuna.Study:
    """The study as one worker process sees it, with its own sampler and pruner."""
    return optuna.load_study(study_name=plan.name, storage=make_storage(plan.storage, plan.out),
                             sampler=sampler, pruner=pruner)


def run_workers(worker: Callable[[dict, int], None], settings: dict, workers: int,
                in_process: Callable[[], None]) -> None:
    """One worker runs in this process (`in_process`); more are spawned as processes."""
    if workers == 1:
        in_process()
    else:
        spawn_workers(worker, settings, workers)


def finished_with(study: optuna.Study, key: str, statuses: Sequence[str]) -> Optional[FrozenTrial]:
    """The first finished trial whose canonical `key` attribute equals `key` and whose status
    is one of `statuses`: its result can be reused instead of training the same network twice."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("key") == key and t.user_attrs.get("status") in statuses:
            return t
    return None


def count_statuses(study: optuna.Study, statuses: Sequence[str]) -> int:
    """Finished (complete or pruned) trials whose status is one of `statuses`."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
               if t.user_attrs.get("status") in statuses)


def set_attrs(trial: optuna.Trial, **attrs: Any) -> None:
    """Set several user attributes of a trial at once."""
    for key, value in attrs.items():
        trial.set_user_attr(key, value.value if isinstance(value, Status) else value)


class ProgressLine:
    """'<what> i/N <details> <seconds>s elapsed m:ss, ETA m:ss' lines for trials of a study.

    The ETA divides the time of this session by the units finished in it, so a resumed run
    does not count the idle time between sessions.
    """

    def __init__(self, total: int, log: Callable[[str], None], prefix: str = "") -> None:
        self.total, self.log, self.prefix = total, log, prefix
        self.started = time.perf_counter()
        self.first_done: Optional[int] = None

    def say(self, done: int, details: str, seconds: float) -> None:
        if self.first_done is None:
            self.first_done = done - 1
        elapsed = time.perf_counter() - self.started
        finished_here = done - self.first_done
        eta = elapsed / finished_here * max(self.total - done, 0) if finished_here > 0 else None
        self.log(f"{self.prefix}{min(done, self.total)}/{self.total} {details}  {seconds:5.1f}s  "
                 f"elapsed {fmt_seconds(elapsed)}, ETA {fmt_seconds(eta) if eta is not None else '?'}")
