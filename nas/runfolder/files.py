"""The names a run folder's files go by, and the refusals that name them."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import FolderRefused

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
RERUN = re.compile(r"run-(\d+)")
FORCED_MARK = ".nas-forced"  # an empty file in every OUT/run-N that --force made


def occupied(out: Path) -> FolderRefused:
    """The refusal of a fresh run into a folder that already holds one."""
    return FolderRefused(f"{out} already holds a run ({CHECKPOINT}); pass --resume to continue it, "
                      "--force to start over in a fresh sub-folder, or choose another --out")


def refusal(conflict: str, out: Path, force_hint: bool = True) -> FolderRefused:
    """The one-line refusal of a command whose runs do not fit `out`."""
    fix = (f"pass --force to start this one over in a fresh sub-folder ({out}/run-N), "
           if force_hint else "")
    return FolderRefused(f"{conflict}; run the same spec, recipe and data to reuse it, {fix}or choose "
                      "another --out")
