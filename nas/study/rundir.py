"""A run directory shared by the resumable commands: its lock, its pinned settings, and the
worker processes that run in it."""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import multiprocessing
import os
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Optional

import yaml

from ..atomic import write_text
from ..errors import NasError


class StudyError(NasError):
    """A search, grid, pipeline or other resumable run cannot start or continue."""


SearchError = StudyError  # the name the search engine's callers know


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
            raise StudyError(self.busy or f"another `nas` run is working in {self.path.parent}; wait "
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
        raise StudyError(f"{path} is a symbolic link; remove it (a lock file is never a link)") from None
    return os.fdopen(fd, "a+")


def check_unlocked(out: Path, lock_file: str = LOCK_FILE) -> None:
    """Refuse now, writing nothing, when another `nas` process holds `out`'s lock: before a
    command reads the run files that process may be writing."""
    if (out / lock_file).is_file():
        with RunLock(out, lock_file):
            pass


def read_pinned(path: Path) -> dict[str, Any]:
    """The settings pinned in a run folder's YAML file; a damaged file is one line naming it."""
    try:
        data = yaml.safe_load(path.read_text()) if not path.is_symlink() else None
    except (OSError, ValueError, yaml.YAMLError) as exc:  # unreadable, not UTF-8, not YAML
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError(f"{path} is damaged ({reason[:120]}); restore it, or choose another --out") from None
    if not isinstance(data, dict):
        raise StudyError(f"{path} is damaged (not a mapping of settings); restore it, or choose "
                         "another --out")
    return data


_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _fits(value: Any, annotation: str) -> bool:
    """Whether a pinned value has the type a config field's annotation names."""
    optional = annotation.startswith("Optional[")
    if value is None:
        return optional
    kinds = _TYPES.get(annotation.removeprefix("Optional[").removesuffix("]"))
    if kinds is None:  # containers and other types: their constructor checks them
        return True
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


def config_from_pinned(cls: type, path: Path, ignored: Iterable[str] = (), **override: Any) -> Any:
    """A config dataclass from the settings pinned in `path`: an unknown, missing or mistyped
    key is one line naming the file (not a TypeError from the constructor)."""
    data = {k: v for k, v in read_pinned(path).items() if k not in set(ignored)}
    data.update(override)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    missing = [n for n, f in fields.items() if n not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    mistyped = [n for n, v in data.items() if n in fields and not _fits(v, str(fields[n].type))]
    for problem, names in (("unknown key", unknown), ("missing key", missing), ("mistyped", mistyped)):
        if names:
            raise StudyError(f"{path} is damaged ({problem} {names[0]!r}); restore it from the run "
                             "that made it, or re-run that command into a new --out")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise StudyError(f"{path} is damaged ({exc}); restore it, or choose another --out") from None


def check_pinned(out: Path, filename: str, settings: dict[str, Any], may_change: Iterable[str],
                 what: str) -> None:
    """Refuse to resume a run made with other settings than those pinned in out/filename
    (except the keys in `may_change`), so a directory is never silently mixed or overwritten."""
    saved = out / filename
    if saved.exists():
        before = read_pinned(saved)
        changed = [k for k, v in settings.items() if k not in may_change and before.get(k) != v]
        if changed:
            raise StudyError(f"{out} holds a {what} with other settings ({', '.join(changed)} differ); "
                              "re-run with the same settings to resume it, or choose another --out")


def pin_settings(out: Path, filename: str, settings: dict[str, Any], may_change: Iterable[str],
                 what: str) -> None:
    """Record a run's settings in out/filename, after `check_pinned` allowed them."""
    check_pinned(out, filename, settings, may_change, what)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / filename, yaml.safe_dump(settings, sort_keys=False))


def spawn_workers(target: Callable[[dict, int], None], settings: dict, workers: int) -> None:
    """Run target(settings, i) in `workers` fresh processes and wait for all of them."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(settings, i)) for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        raise StudyError(f"{len(bad)} worker(s) exited with an error (codes {bad}); re-run the same "
                          "command to resume")
