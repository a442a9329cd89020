"""One resumable-study core for every multi-run command (search, grid, and the runs built on
them): the run folder's lock, pinned settings, storage, re-queue of interrupted trials,
worker processes, trial statuses, de-duplication by a canonical key and one progress line.

Only Optuna's public API is used, so an Optuna upgrade cannot break resuming.
"""
from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import enum
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..progress import fmt_seconds
from ..errors import StudyError
from ..runfolder.lock import RunLock
from ..runfolder.pinned import check_pinned, pin_settings
from .storage import (DEFAULT_HEARTBEAT, checked_journal, grace_seconds, is_file_storage, make_storage,
                      recover_stale, requeue_interrupted, running_numbers)

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
        heartbeat: RDB storages only: seconds between a worker's heartbeats (see make_storage).
    """

    out: Path
    name: str
    storage: Optional[str]
    settings: dict
    resumable: tuple[str, ...]
    settings_file: str
    what: str
    heartbeat: int = DEFAULT_HEARTBEAT

    def storage_object(self) -> optuna.storages.BaseStorage:
        """The Optuna storage this study lives in."""
        return make_storage(self.storage, self.out, self.heartbeat)

    def pinned(self) -> dict:
        """The settings that must not change between runs (all but the `resumable` keys)."""
        return {k: v for k, v in self.settings.items() if k not in self.resumable}


@contextlib.contextmanager
def locked(plan: StudyPlan) -> Iterator[None]:
    """Hold the run folder's lock and, on a file storage, the journal file's own lock (a file
    beside the journal, whichever --out names it): two runs writing one journal would fail
    each other's running trials.

    Args:
        plan: the study; its out folder and storage are locked.
    """
    with contextlib.ExitStack() as stack:
        if is_file_storage(plan.storage):  # first: a busy journal is refused before --out is made
            journal = checked_journal(plan.storage, plan.out).resolve()
            stack.enter_context(RunLock(journal.parent, f".{journal.name}.lock", busy=(
                f"journal {journal} is in use by another `nas` run; wait for it to finish, or use "
                "another journal (--storage PATH) or a PostgreSQL --storage for concurrent runs")))
        stack.enter_context(RunLock(plan.out))
        yield


def open_study(plan: StudyPlan, directions: Sequence[str], log: Callable[[str], None] = print
               ) -> optuna.Study:
    """Pin the settings, create or load the study, check a joined study's own settings, and
    re-queue trials a killed run left behind: on a file storage every unfinished one (the lock
    says no one else runs); on an RDB storage those whose heartbeat stopped, since workers on
    other machines may still be running theirs.

    Args:
        plan: the study and its settings.
        directions: Optuna directions, one per objective ("maximize", "minimize").
        log: where the re-queue message goes.
    """
    pinned = (plan.out, plan.settings_file, plan.settings, plan.resumable, plan.what)
    check_pinned(*pinned)
    storage = plan.storage_object()  # before the pin: a storage that cannot open pins nothing
    pin_settings(*pinned)
    study = optuna.create_study(study_name=plan.name, storage=storage,
                                load_if_exists=True, directions=list(directions))
    _check_study_settings(study, plan)
    if is_file_storage(plan.storage):
        requeued = requeue_interrupted(study)
    else:
        requeued = recover_stale(study) + requeue_interrupted(study, fail_running=False)
        running = running_numbers(study)
        if running:
            log(f"{len(running)} trial(s) running elsewhere ({_numbers(running)}); one whose worker "
                f"died is re-queued {grace_seconds(plan.heartbeat)} s after its last heartbeat")
    if requeued:
        log(f"re-queued interrupted trial(s) {_numbers(requeued)}")
    return study


def _numbers(numbers: Sequence[int]) -> str:
    return ", ".join(f"#{n}" for n in numbers)


def await_stale(study: optuna.Study, plan: StudyPlan, poll: Optional[float] = None,
                timeout: Optional[float] = None) -> bool:
    """After a worker's queue ran dry: wait while other workers' trials run on an RDB storage,
    and return True as soon as one of them is found stale (its worker died) and is queued
    again, so the caller runs the queue once more. False when nothing runs any more, and at
    once on a file storage (there the resumed run re-queues a dead worker's trials).

    Args:
        study: the study as this worker sees it.
        plan: the study's plan (storage kind and heartbeat).
        poll: seconds between checks (default: one heartbeat).
        timeout: give up after this many seconds (default: wait as long as others run).
    """
    if is_file_storage(plan.storage):
        return False
    deadline = None if timeout is None else time.monotonic() + timeout
    while running_numbers(study):
        if recover_stale(study):
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(plan.heartbeat if poll is None else poll)
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


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
    """The study as one worker process sees it, with its own sampler and pruner.

    Args:
        plan: the study (its name and storage are used).
        sampler: the worker's sampler.
        pruner: the worker's pruner (None: Optuna's default).
    """
    return optuna.load_study(study_name=plan.name, storage=plan.storage_object(),
                             sampler=sampler, pruner=pruner)


@contextlib.contextmanager
def quiet_interrupt() -> Iterator[None]:
    """Around a spawned worker process's work: Ctrl-C reaches every worker, and the parent says
    it once, so a worker exits with 130 and no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def run_workers(worker: Callable[[dict, int], None], settings: dict, workers: int,
                in_process: Callable[[], None]) -> None:
    """One worker runs in this process (`in_process`); more are spawned as processes.

    Args:
        worker: run as worker(settings, i) in each spawned process (it must be importable).
        settings: passed to every spawned worker.
        workers: how many workers; 1 runs `in_process` here and spawns nothing.
        in_process: the single-worker run.
    """
    if workers == 1:
        in_process()
    else:
        spawn_workers(worker, settings, workers)


def finished_with(study: optuna.Study, key: str, statuses: Sequence[str]) -> Optional[FrozenTrial]:
    """The first finished trial whose canonical `key` attribute equals `key` and whose status
    is one of `statuses`: its result can be reused instead of training the same network twice.

    Args:
        study: the study searched.
        key: the canonical key of the network (its user attribute ``key``).
        statuses: the statuses whose results may be reused.
    """
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("key") == key and t.user_attrs.get("status") in statuses:
            return t
    return None


def count_statuses(study: optuna.Study, statuses: Sequence[str]) -> int:
    """Finished (complete or pruned) trials whose status is one of `statuses`.

    Args:
        study: the study counted.
        statuses: the status values counted (e.g. `Status.spent_training()`).
    """
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
               if t.user_attrs.get("status") in statuses)


def set_attrs(trial: optuna.Trial, **attrs: Any) -> None:
    """Set several user attributes of a trial at once.

    Args:
        trial: the trial to annotate.
        **attrs: attribute name -> value; a Status is stored as its string value.
    """
    for key, value in attrs.items():
        trial.set_user_attr(key, value.value if isinstance(value, Status) else value)


class ProgressLine:
    """'<what> i/N <details> <seconds>s elapsed m:ss, ETA m:ss' lines for trials of a study.

    The ETA divides the time of this session by the units finished in it, so a resumed run
    does not count the idle time between sessions.

    Args:
        total: trials in the whole run.
        log: where lines go.
        prefix: text before 'i/N' (e.g. "trial ").
    """

    def __init__(self, total: int, log: Callable[[str], None], prefix: str = "") -> None:
        self.total, self.log, self.prefix = total, log, prefix
        self.started = time.perf_counter()
        self.first_done: Optional[int] = None

    def say(self, done: int, details: str, seconds: float) -> None:
        """Log one line for a finished unit.

        Args:
            done: units finished so far, this one included; the first call marks where this
                session started counting.
            details: what to say about the unit (its result).
            seconds: how long the unit took.
        """
        if self.first_done is None:
            self.first_done = done - 1
        elapsed = time.perf_counter() - self.started
        finished_here = done - self.first_done
        eta = elapsed / finished_here * max(self.total - done, 0) if finished_here > 0 else None
        self.log(f"{self.prefix}{min(done, self.total)}/{self.total} {details}  {seconds:5.1f}s  "
                 f"elapsed {fmt_seconds(elapsed)}, ETA {fmt_seconds(eta) if eta is not None else '?'}")


FLUSH_EVERY = 100  # trials a buffered study keeps in memory before appending them to its storage


@contextlib.contextmanager
def buffered(study: optuna.Study, plan: StudyPlan, every: int = FLUSH_EVERY
             ) -> Iterator[tuple[optuna.Study, Callable[[optuna.Study, Any], None]]]:
    """An in-memory copy of `study` for trials that cost milliseconds (a predictor, a count):
    the journal file fsyncs every parameter and attribute (~50 writes a trial, ~2 ms each),
    so storing trials one write at a time would cost more than judging them. The copy's
    finished trials are appended to `study` as one write each, every `every` trials (the
    callback this yields) and on exit, Ctrl-C included; a kill -9 loses at most `every`
    trials, which a resumed run judges again.

    Only for one worker on a file storage whose trials are all finished (no queued or
    running trial, whose numbers the copy could not keep): otherwise `study` itself is
    yielded, with a callback that does nothing.
    """
    simple = (is_file_storage(plan.storage) and all(t.state.is_finished() for t in study.trials))
    if not simple:
        yield study, lambda _study, _trial: None
        return
    memory = optuna.create_study(storage=optuna.storages.InMemoryStorage(), sampler=study.sampler,
                                 pruner=study.pruner, directions=study.directions)
    for key, value in study.user_attrs.items():
        memory.set_user_attr(key, value)
    memory.add_trials(study.trials)
    flushed = len(study.trials)

    def flush() -> None:
        nonlocal flushed
        done = memory.get_trials(deepcopy=False)[flushed:]
        ready = list(itertools.takewhile(lambda t: t.state.is_finished(), done))
        if ready:
            study.add_trials(ready)
            flushed += len(ready)

    def callback(_study: optuna.Study, _trial: Any) -> None:
        if len(memory.get_trials(deepcopy=False)) - flushed >= every:
            flush()

    try:
        yield memory, callback
    finally:
        flush()


def spawn_workers(target: Callable[[dict, int], None], settings: dict, workers: int) -> None:
    """Run target(settings, i) in `workers` fresh processes and wait for all of them."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(settings, i)) for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        raise StudyError(f"{len(bad)} worker(s) exited with an error (codes {bad}); re-run the same "
                          "command to resume")
