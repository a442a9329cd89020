"""Which folder a command trains into: the one that holds its runs, or a fresh one.

A run folder holds one configuration, named by its fingerprint (spec, recipe with seed,
data) in result.json and checkpoint.pt. Running the same configuration again finds it: a
finished run is reused, an interrupted one resumed. A command whose runs would land on
folders holding another configuration is refused with the difference named, unless
`--force`: then the whole command (its runs and its tables) goes to the first fresh
sub-folder OUT/run-2, OUT/run-3, ... and nothing in OUT is touched. A later run of either
command finds its own folder again.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Iterable, Optional

from .checkpoint import CHECKPOINT, TrainError, fingerprint_difference, read_checkpoint

RESULT = "result.json"
RERUN = re.compile(r"run-(\d+)")
Conflict = Callable[[Path], Optional[str]]  # out folder -> why the command's runs do not fit it


def saved_fingerprint(folder: Path) -> Optional[dict]:
    """The fingerprint of the run in `folder`, from result.json or checkpoint.pt; None when the
    folder holds no run. A checkpoint from before fingerprints counts as its spec and recipe."""
    result = folder / RESULT
    if result.is_file():
        try:
            saved = json.loads(result.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise TrainError(f"{result} is not readable JSON; move that run folder away, or choose "
                             "another --out") from None
        return saved.get("fingerprint") or {"spec": None}  # unknown: never taken for a match
    if (folder / CHECKPOINT).is_file():
        state = read_checkpoint(folder / CHECKPOINT)
        return state.get("fingerprint") or {"spec": state["spec"], "recipe": state.get("recipe")}
    return None


def difference(folder: Path, wanted: dict) -> Optional[str]:
    """How the run in `folder` differs from `wanted`, in words; None when it matches or the
    folder holds no run. Parts an older file lacks are not compared."""
    saved = saved_fingerprint(folder)
    if saved is None:
        return None
    return fingerprint_difference(saved, {k: v for k, v in wanted.items() if k in saved})


def first_conflict(runs: Iterable[tuple[Path, dict]]) -> Optional[str]:
    """The first (folder, wanted fingerprint) whose folder holds another configuration, in words."""
    for folder, wanted in runs:
        diff = difference(folder, wanted)
        if diff:
            return f"{folder} holds a run of another configuration ({diff})"
    return None


def holds_run(folder: Path) -> bool:
    """True when `folder` holds a run (finished or interrupted)."""
    return (folder / RESULT).is_file() or (folder / CHECKPOINT).is_file()


def reruns(out: Path) -> list[Path]:
    """The forced sub-folders OUT/run-2, OUT/run-3, ... that exist, in order."""
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := RERUN.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def next_rerun(out: Path) -> Path:
    """The first OUT/run-N that does not exist yet (N >= 2; OUT itself is run 1)."""
    numbers = [int(RERUN.fullmatch(p.name).group(1)) for p in reruns(out)]
    return out / f"run-{max([1, *numbers]) + 1}"


def refusal(conflict: str, out: Path, force_hint: bool = True) -> TrainError:
    """The one-line refusal of a command whose runs do not fit `out`."""
    fix = (f"pass --force to start this one over in a fresh sub-folder ({out}/run-N), "
           if force_hint else "")
    return TrainError(f"{conflict}; run the same spec, recipe and data to reuse it, {fix}or choose "
                      "another --out")


def choose_out(out: Path, conflict: Conflict, force: bool) -> Path:
    """The folder a command writes into.

    Args:
        out: its --out.
        conflict: why the command's runs would not fit a folder (None: they fit: free, or
            holding the same configurations).
        force: when `out` does not fit, use a fresh OUT/run-N instead of refusing.

    Returns:
        `out` when it fits; else the first OUT/run-N that fits (an earlier forced run of this
        command); else, with `force`, a new OUT/run-N.
    """
    first = conflict(out)
    if first is None:
        return out
    for alt in reruns(out):
        if conflict(alt) is None:
            return alt
    if not force:
        raise refusal(first, out)
    return next_rerun(out)


def train_folder(out: Path, wanted: dict, resume: bool, force: bool) -> tuple[Path, bool]:
    """(folder, resume) for `nas train --out OUT [--resume] [--force]`.

    --resume continues the run of this configuration (in OUT or a forced OUT/run-N); --force
    starts over in a fresh OUT/run-N when OUT holds a run (with --resume: only when none holds
    this configuration). Without either, the trainer refuses an OUT that holds a run.
    """
    if resume:
        folder = choose_out(out, lambda f: first_conflict([(f, wanted)]), force)
        return folder, holds_run(folder) or not force
    if force and holds_run(out):
        return next((f for f in reruns(out) if not holds_run(f)), None) or next_rerun(out), False
    return out, False
