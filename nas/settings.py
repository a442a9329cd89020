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


@dataclass(frozen=True)
class DataRequest:
    """Which data set a command trains on, resolved once from its options: the name, folder,
    validation share and an optional decode size (`--data-resolution`, at least every net's input)."""

    dataset: str
    data_dir: Optional[str] = None
    data_resolution: Optional[int] = None
    val_fraction: float = 0.1
    download: bool = False

    @classmethod
    def from_args(cls, args: Any) -> "DataRequest":
        """From a command's --dataset, --data-dir, --data-resolution, --val-fraction, --download."""
        return cls(args.dataset, args.data_dir, args.data_resolution, args.val_fraction, args.download)

    def load(self, resolution: Optional[int] = None) -> Any:
        """The Dataset, decoded at --data-resolution or else `resolution`."""
        from .data import load_dataset  # the data package loads torch
        return load_dataset(self.dataset, data_dir=self.data_dir, resolution=self.data_resolution or resolution,
                            val_fraction=self.val_fraction, download=self.download)

    def for_nets(self, nets: Any, loaded: Any = None) -> Any:
        """The Dataset decoded for `nets` (nas.preflight.decode_resolution): the largest input
        among them, or a larger --data-resolution; `loaded` is reused when it has that size."""
        from .preflight import decode_resolution
        size = decode_resolution(nets, self.data_resolution)
        if loaded is not None and loaded.resolution == size:
            return loaded
        return self.load(size)
