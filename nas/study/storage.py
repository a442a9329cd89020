"""Where a study lives, and recovery of trials that a killed run left behind."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from .rundir import StudyError

DEFAULT_JOURNAL = "study.journal"


def is_file_storage(url: Optional[str]) -> bool:
    """True for the default journal file (None) or a journal path; False for an RDB URL."""
    return url is None or "://" not in url


def make_storage(url: Optional[str], out: Path) -> optuna.storages.BaseStorage:
    """None: a journal file in the run directory (no server). A path: a journal file there.
    An RDB URL (postgresql+psycopg://..., sqlite:///...): Optuna's RDBStorage with heartbeats,
    so trials of a dead worker are failed and re-queued by the live ones."""
    if is_file_storage(url):
        path = out / DEFAULT_JOURNAL if url is None else Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=30, grace_period=120,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback())
    except Exception as exc:  # SQLAlchemy raises many kinds on a bad URL or a dead server
        raise StudyError(f"cannot open storage {url}: {str(exc).splitlines()[0]}") from exc


def requeue_interrupted(study: optuna.Study, carry: tuple[str, ...] = ("baseline", "grid_point")
                        ) -> list[int]:
    """Fail trials a killed run left RUNNING, and queue the interrupted ones again.

    Only safe while no other worker uses the study (the run lock guarantees it for
    file storages). A trial counts as interrupted when it ended without the status
    our objective always records (Ctrl-C, SIGKILL, power loss), and is re-queued once.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    requeued = []
    for t in trials:
        if t.state == TrialState.RUNNING:
            study.tell(t.number, state=TrialState.FAIL)
        elif not (t.state == TrialState.FAIL and "status" not in t.user_attrs):
            continue
        if t.number in retried:
            continue
        attrs = {"retry_of": t.number, **{k: t.user_attrs[k] for k in carry if k in t.user_attrs}}
        study.enqueue_trial(dict(t.params), user_attrs=attrs)
        requeued.append(t.number)
    return requeued
