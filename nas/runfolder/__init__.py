"""Run folders: everything that decides whether a command may write where it was asked.

- `lock`: one `nas` process per folder (RunLock); a second is refused, the folder untouched.
- `fingerprint`: spec, recipe with seed, and data of a run -- the one meaning of "the same
  configuration" (a run is reused or resumed only on an equal fingerprint).
- `runs`: how a command's runs fit a folder, and `--force` into a fresh OUT/run-N.
- `pinned`: the settings a study-shaped run pins in its folder and compares when resumed.
- `outputs`: output files that would replace another run's outputs are refused.
- `folders`: the lock and the --force choice together, for the commands that train.

Every refusal is a `nas.errors.FolderRefused`: one line naming the folder, what is in the way
and how to go on. Writes go through `nas.atomic` (a temporary file, then a rename).
Importing this package loads no torch (only reading a checkpoint does).
"""
from ..errors import FolderRefused

__all__ = ["FolderRefused"]
