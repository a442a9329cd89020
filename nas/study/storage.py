"""Where a study lives, and recovery of trials that a killed run left behind."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryFailedTrialCallback, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from ..errors import StudyError
from ..runfolder.pinned import read_pinned

DEFAULT_JOURNAL = "study.journal"
STUDY_KEY = "study"  # the study's name, recorded in the pinned settings beside them
DEFAULT_HEARTBEAT = 30  # seconds between an RDB worker's heartbeats
GRACE_HEARTBEATS = 4    # a running trial silent for this many heartbeats is from a dead worker
# what a re-queued trial keeps of the interrupted one (a baseline's record and fixed spec too)
CARRIED_ATTRS = ("baseline", "baseline_mode", "baseline_target", "baseline_gap_pct", "fixed_spec",
                 "grid_point", "bench_run")


def is_file_storage(url: Optional[str]) -> bool:
    """True for the default journal file (None) or a journal path; False for an RDB URL."""
    return url is None or "://" not in url


def journal_path(url: Optional[str], out: Path) -> Path:
    """The journal file of a file storage: OUT/study.journal by default, else the path given."""
    return out / DEFAULT_JOURNAL if url is None else Path(url.removeprefix("journal:"))


def checked_journal(url: Optional[str], out: Path) -> Path:
    """The journal path; the default one (OUT/study.journal) may not be a link planted in --out,
    which would make Optuna append to a file elsewhere."""
    path = journal_path(url, out)
    if url is None and path.is_symlink():
        raise StudyError(f"{path} is a symbolic link; remove it, or name the journal you mean "
                         "with --storage")
    return path


def default_study_name(out: Path, storage: Optional[str], settings_file: str, suffix: str = "") -> str:
    """A study's name when no --study-name is given: the name recorded in the run folder's
    pinned settings when it has one; for a folder pinned before names were recorded, its last
    name (as it was then); for a new folder, the last name when the journal is its own
    (OUT/study.journal), else the whole resolved path, so `runs/p1/s` and `runs/p3/s` sharing
    one journal or server never share a study."""
    saved = out / settings_file
    if saved.is_file():
        return read_pinned(saved).get(STUDY_KEY) or out.resolve().name + suffix
    return (out.resolve().name if storage is None else str(out.resolve())) + suffix


def grace_seconds(heartbeat: int) -> int:
    """How long an RDB trial may go without a heartbeat before it counts as a dead worker's."""
    return GRACE_HEARTBEATS * heartbeat


def make_storage(url: Optional[str], out: Path, heartbeat: int = DEFAULT_HEARTBEAT
                 ) -> optuna.storages.BaseStorage:
    """The storage a study lives in.

    Args:
        url: None (a journal file in `out`, no server), a journal path, or an RDB URL
            (postgresql+psycopg://..., sqlite:///...).
        out: the run folder.
        heartbeat: RDB only: seconds between a worker's heartbeats. A trial silent for
            `grace_seconds(heartbeat)` is failed and queued again by a live worker, so a dead
            worker's trial is re-run while the others go on.
    """
    if is_file_storage(url):
        path = checked_journal(url, out)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace_seconds(heartbeat),
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback())
    except Exception as exc:  # SQLAlchemy raises many kinds on a bad URL or a dead server
        raise StudyError(f"cannot open storage {url}: {str(exc).splitlines()[0]}") from exc


def optuna_retries(trial: optuna.trial.FrozenTrial) -> list[int]:
    """The trials Optuna re-queued `trial` from after a stale heartbeat, oldest first.

    `RetryFailedTrialCallback.retry_history` is Optuna's public accessor for what its retry
    callbacks record; it is marked experimental, so this is the one place that calls it and
    silences that warning (the toolkit never reads Optuna's system attributes itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return list(RetryFailedTrialCallback.retry_history(trial))


def retried_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of trials already queued again: by us (``retry_of``) or by Optuna after a stale
    heartbeat (`optuna_retries`)."""
    numbers = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        numbers.update(optuna_retries(t))
    return numbers - {None}


def requeue_interrupted(study: optuna.Study, carry: tuple[str, ...] = CARRIED_ATTRS,
                        fail_running: bool = True) -> list[int]:
    """Queue again the trials an interrupted run left behind; return their numbers.

    A trial counts as interrupted when it ended without the status our objective always
    records (Ctrl-C, SIGKILL, power loss); each is re-queued once.

    Args:
        study: the study to repair.
        carry: user attributes the new trial keeps.
        fail_running: also fail and re-queue RUNNING trials. Only safe while no other worker
            uses the study: the run lock guarantees it for file storages. On an RDB storage
            pass False and let `recover_stale` find the dead workers' trials by heartbeat.
    """
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    requeued = []
    for t in trials:
        if t.state == TrialState.RUNNING and fail_running:
            study.tell(t.number, state=TrialState.FAIL)
        elif not (t.state == TrialState.FAIL and "status" not in t.user_attrs):
            continue
        if t.number in retried:
            continue
        attrs = {"retry_of": t.number, **{k: t.user_attrs[k] for k in carry if k in t.user_attrs}}
        study.enqueue_trial(dict(t.params), user_attrs=attrs)
        requeued.append(t.number)
    return requeued


def recover_stale(study: optuna.Study) -> list[int]:
    """RDB storages: fail the running trials whose heartbeat stopped more than the grace period
    ago (their worker died) and queue them again; return their numbers. Safe beside live
    workers, on any machine. A no-op on storages without heartbeats."""
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return sorted(after - before)


def running_numbers(study: optuna.Study) -> list[int]:
    """Numbers of the trials running now (in live workers, or in dead ones not yet found stale)."""
    return [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
