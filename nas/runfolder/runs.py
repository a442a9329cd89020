"""Which folder a command trains into: the one that holds its runs, or a fresh one.

A run folder holds one configuration, named by its fingerprint (spec, recipe with seed,
data) in result.json and checkpoint.pt. Running the same configuration again finds it: a
finished run is reused, an interrupted one resumed. A command whose runs would land on
folders holding another configuration is refused with the difference named, unless
`--force`: then the whole command (its runs and its tables) goes to a fresh sub-folder
OUT/run-2, OUT/run-3, ... (marked as such, so a net's own folder is never taken for one)
and nothing in OUT is touched. The same command run again finds its forced folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from ..errors import FolderRefused
from .files import CHECKPOINT, FORCED_MARK, RESULT, RERUN, occupied, refusal  # noqa: F401 (RESULT re-exported)
from .fingerprint import fingerprint_difference


@dataclass(frozen=True)
class Fit:
    """How a command's runs fit a folder: the first conflict (None: none) and how many of
    them the folder already holds with the same configuration."""
    conflict: Optional[str]
    matched: int


FitOf = Callable[[Path], Fit]  # a folder -> how the command's runs fit it


def saved_fingerprint(folder: Path) -> Optional[dict]:
    """The fingerprint of the run in `folder`, from result.json or checkpoint.pt; None when the
    folder holds no run; {} for a result from before fingerprints."""
    result = folder / RESULT
    if result.is_file():
        try:
            saved = json.loads(result.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FolderRefused(f"{result} is not readable JSON; move that run folder away, or choose "
                             "another --out") from None
        return saved.get("fingerprint") or {}
    if (folder / CHECKPOINT).is_file():
        from ..train.checkpoint import read_checkpoint  # torch, only for a checkpoint
        from .fingerprint import checkpoint_fingerprint
        return checkpoint_fingerprint(read_checkpoint(folder / CHECKPOINT, mmap=True))
    return None


def fit_of_runs(runs: Iterable[tuple[Path, dict]]) -> Fit:
    """How (run folder, wanted fingerprint) pairs fit: the first folder holding another
    configuration, in words, and how many hold the wanted one."""
    matched = 0
    for folder, wanted in runs:
        saved = saved_fingerprint(folder)
        if saved is None:
            continue
        diff = fingerprint_difference(saved, wanted)
        if diff:
            return Fit(f"{folder} holds a run of another configuration ({diff})", matched)
        matched += 1
    return Fit(None, matched)


def holds_run(folder: Path) -> bool:
    """True when `folder` holds a run (finished or interrupted)."""
    return (folder / RESULT).is_file() or (folder / CHECKPOINT).is_file()


def is_rerun_name(name: str) -> bool:
    """True for the names forced sub-folders take (run-2, run-3, ...)."""
    return RERUN.fullmatch(name) is not None


def reruns(out: Path) -> list[Path]:
    """The forced sub-folders OUT/run-2, OUT/run-3, ... that --force made, in order."""
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir()
             if (m := RERUN.fullmatch(p.name)) and (p / FORCED_MARK).is_file()]
    return [p for _, p in sorted(found)]


def next_rerun(out: Path) -> Path:
    """The first OUT/run-N (N >= 2; OUT itself is run 1) that does not exist yet."""
    n = 2
    while (out / f"run-{n}").exists():
        n += 1
    return out / f"run-{n}"


def mark_forced(folder: Path) -> None:
    """Make `folder` (a fresh OUT/run-N) and mark it as made by --force."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FORCED_MARK).touch()


def choose_out(out: Path, fit: FitOf, force: bool) -> Path:
    """The folder a command writes into.

    Args:
        out: its --out.
        fit: how the command's runs fit a folder.
        force: when `out` holds another configuration, use a fresh OUT/run-N instead of refusing.

    Returns:
        `out` when nothing in it conflicts; else the forced OUT/run-N that holds this command's
        runs (an earlier --force run of it, found with or without --force); else, with
        `force`, a new OUT/run-N (made and marked by `mark_forced` under the lock).
    """
    first = fit(out)
    if first.conflict is None:
        return out
    for alt in reruns(out):
        here = fit(alt)
        if here.conflict is None and here.matched:
            return alt
    if not force:
        raise refusal(first.conflict, out)
    return next_rerun(out)


def train_folder(out: Path, wanted: dict, resume: bool, force: bool) -> tuple[Path, bool]:
    """(folder, resume) for `nas train --out OUT [--resume] [--force]`, checked before the lock.

    --resume continues the run of this configuration (in OUT or a forced OUT/run-N); --force
    starts over in a fresh OUT/run-N when OUT holds a run (with --resume: only when none holds
    this configuration). Without either, an OUT holding a run is refused.
    """
    if resume:
        folder = choose_out(out, lambda f: fit_of_runs([(f, wanted)]), force)
        return folder, holds_run(folder) or not force
    if force and holds_run(out):
        return next_rerun(out), False
    if holds_run(out):
        raise occupied(out)
    return out, False
