"""Writing a set of output files into a folder that may hold an earlier run's outputs.

`write_files` refuses (one line, the folder untouched) when the folder already holds
different contents under any of the names it would write, so a second `scale emit` or
`scale single` into the same --out never silently replaces another run's scaled.csv.
Writing the very same contents again is allowed (re-running a command is harmless).
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Mapping, Optional

from ..atomic import write_text
from ..errors import FolderRefused
from .lock import RunLock


class OutputClash(FolderRefused):
    """The output folder holds other outputs under the names a command writes."""


def new_folder(out: Path) -> Optional[Path]:
    """The outermost folder of `out` (itself or a parent) that does not exist yet: what a
    command asked to write into `out` creates. None when `out` exists."""
    created = None
    for folder in (out, *out.parents):
        if folder.exists() or folder.is_symlink():
            break
        created = folder
    return created


def remove_if_bare(folder: Optional[Path]) -> None:
    """Remove a folder this command created when it holds nothing but empty lock files and
    folders: a refused command leaves no new --out behind."""
    if folder is None or folder.is_symlink() or not folder.is_dir():
        return
    for path in folder.rglob("*"):
        if path.is_symlink() or (path.is_file() and (path.stat().st_size or not path.name.endswith(".lock"))):
            return
    shutil.rmtree(folder)


def _csv_difference(old: str, new: str) -> str:
    """Which columns (or rows) of two CSV texts differ, in words."""
    import pandas as pd

    try:
        a, b = pd.read_csv(io.StringIO(old)), pd.read_csv(io.StringIO(new))
    except Exception:  # not a CSV we can read: say only that it differs
        return "other contents"
    if "name" in a.columns and "name" in b.columns and list(a["name"]) != list(b["name"]):
        return f"models {', '.join(map(str, a['name']))} vs {', '.join(map(str, b['name']))}"
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return "other columns or rows"
    cols = [c for c in a.columns if not a[c].astype(str).equals(b[c].astype(str))]
    return f"{', '.join(cols[:5])} differ" if cols else "other formatting"


def clashes(out: Path, files: Mapping[str, str]) -> list[str]:
    """The files in `out` whose contents differ from what `files` (name -> text) would write."""
    found = []
    for name, text in files.items():
        path = out / name
        if path.is_symlink():  # never read through (nor write through) a link planted in --out
            found.append(f"{name} is a symbolic link")
            continue
        if not path.exists():
            continue
        old = path.read_text(errors="replace")
        if old == text:
            continue
        found.append(f"{name}: {_csv_difference(old, text)}" if name.endswith(".csv") else name)
    return found


def check_free(out: Path, files: Mapping[str, str], what: str) -> None:
    """Refuse, naming the differences, when `out` holds other contents under these names."""
    found = clashes(out, files)
    if found:
        shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
        raise OutputClash(f"{out} already holds another {what} ({shown}); choose another --out "
                          "or remove those files first")


def write_files(out: Path, files: Mapping[str, str], what: str) -> None:
    """Write name -> text into `out` under its run lock, unless that would replace other
    contents (see `check_free`): checked before the lock (a refusal leaves `out` untouched)
    and again while holding it (no other `nas` process can write in between)."""
    check_free(out, files, what)
    with RunLock(out):
        check_free(out, files, what)
        for name, text in files.items():
            write_text(out / name, text)
