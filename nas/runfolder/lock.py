"""The lock of a run folder: one `nas` process works in a folder at a time; a second one is
refused in one line, and the folder is left byte-for-byte as it was."""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import IO, Optional

from ..errors import FolderRefused

LOCK_FILE = ".nas.lock"


class RunLock:
    """An exclusive lock on a run directory (or on a shared journal file) while a command
    runs in it; a second `nas` process asking for it is refused with a one-line error.

    The lock file stays empty: a refused command leaves the folder byte-for-byte as it was.
    """

    def __init__(self, out: Path, lock_file: str = LOCK_FILE, busy: Optional[str] = None) -> None:
        self.path = out / lock_file
        self.busy = busy  # the refusal when the lock is held (default: the folder is in use)
        self.handle: Optional[IO[str]] = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = _open_lock_file(self.path)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise FolderRefused(self.busy or f"another `nas` run is working in {self.path.parent}; wait "
                              "for it to finish or choose another --out") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def _open_lock_file(path: Path) -> IO[str]:
    """The lock file, opened without following a link planted under its name."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise FolderRefused(f"{path} is a symbolic link; remove it (a lock file is never a link)") from None
    return os.fdopen(fd, "a+")


def check_unlocked(out: Path, lock_file: str = LOCK_FILE) -> None:
    """Refuse now, writing nothing, when another `nas` process holds `out`'s lock: before a
    command reads the run files that process may be writing."""
    if (out / lock_file).is_file():
        with RunLock(out, lock_file):
            pass
