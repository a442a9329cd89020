"""Settings every study-shaped command shares: where its study lives and how its workers run,
and where its data comes from and what it trains on.

Search, grid, benchmark and pipeline configs inherit them, so one option means one field with
one default everywhere. They are keyword-only mixins: the configs keep their own required
fields first, and stay flat, so the settings pinned in a run folder (search.yaml, grid.yaml,
bench.yaml, pipeline.yaml) keep the keys older folders were made with.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from .study.storage import DEFAULT_HEARTBEAT


@dataclass(frozen=True, kw_only=True)
class StudySettings:
    """The study: its seed, storage and workers, and when it stops starting trials."""

    seed: int = 0
    storage: Optional[str] = None      # an Optuna storage URL (None: a journal file in --out)
    workers: int = 1
    timeout: Optional[float] = None    # seconds after which no new trial starts
    heartbeat: int = DEFAULT_HEARTBEAT  # RDB storages: seconds between a worker's heartbeats


@dataclass(frozen=True, kw_only=True)
class DataSettings:
    """The data set's folder and validation share, and the device that trains on it."""

    device: str = "auto"
    data_dir: Optional[str] = None
    val_fraction: float = 0.1
    download: bool = False


def shared_settings(config: Any) -> dict[str, Any]:
    """The StudySettings and DataSettings fields of `config`, to pass on to a sub-config."""
    names = [f.name for cls in (StudySettings, DataSettings) for f in dataclasses.fields(cls)]
    return {name: getattr(config, name) for name in names}
