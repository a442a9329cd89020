"""The folder a training command writes into: --out under its lock, or with --force a fresh
--out/run-N when --out holds runs of another configuration."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .lock import RunLock, check_unlocked

if TYPE_CHECKING:
    from .runs import FitOf


@contextlib.contextmanager
def run_folder(out: Path, fit: "FitOf", force: bool) -> Iterator[Path]:
    """Hold --out's lock and yield the folder a training command writes into: --out, or with
    --force a fresh --out/run-N when --out holds runs of another configuration (an earlier
    forced run of the same command is found again). Refusals come before anything is written;
    a forced folder is locked too, so `--out OUT/run-N` from elsewhere waits its turn."""
    from .runs import choose_out

    check_unlocked(out)  # another process may be writing the run files read below
    chosen = choose_out(out, fit, force)
    with locked_folders(out, chosen):
        if chosen != out:
            print(f"{out} holds runs of another configuration; writing into {chosen}")
        yield chosen


@contextlib.contextmanager
def locked_folders(out: Path, chosen: Path) -> Iterator[None]:
    """Lock --out and, when a command writes into a sub-folder of it, that folder as well
    (made and marked as forced when it is new)."""
    from .runs import mark_forced

    with RunLock(out), contextlib.ExitStack() as stack:
        if chosen != out:
            if not chosen.exists():
                mark_forced(chosen)
            stack.enter_context(RunLock(chosen))
        yield
