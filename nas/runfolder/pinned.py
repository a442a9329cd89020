"""The settings pinned in a run folder (search.yaml, grid.yaml, bench.yaml, pipeline.yaml):
written by the first run, compared by every later one, read back into a config."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..atomic import write_text
from ..errors import FolderRefused


def read_pinned(path: Path) -> dict[str, Any]:
    """The settings pinned in a run folder's YAML file; a damaged file is one line naming it."""
    try:
        data = yaml.safe_load(path.read_text()) if not path.is_symlink() else None
    except (OSError, ValueError, yaml.YAMLError) as exc:  # unreadable, not UTF-8, not YAML
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FolderRefused(f"{path} is damaged ({reason[:120]}); restore it, or choose another --out") from None
    if not isinstance(data, dict):
        raise FolderRefused(f"{path} is damaged (not a mapping of settings); restore it, or choose "
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
            raise FolderRefused(f"{path} is damaged ({problem} {names[0]!r}); restore it from the run "
                             "that made it, or re-run that command into a new --out")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise FolderRefused(f"{path} is damaged ({exc}); restore it, or choose another --out") from None


def check_pinned(out: Path, filename: str, settings: dict[str, Any], may_change: Iterable[str],
                 what: str) -> None:
    """Refuse to resume a run made with other settings than those pinned in out/filename
    (except the keys in `may_change`), so a directory is never silently mixed or overwritten."""
    saved = out / filename
    if saved.exists():
        before = read_pinned(saved)
        changed = [k for k, v in settings.items() if k not in may_change and before.get(k) != v]
        if changed:
            raise FolderRefused(f"{out} holds a {what} with other settings ({', '.join(changed)} differ); "
                              "re-run with the same settings to resume it, or choose another --out")


def pin_settings(out: Path, filename: str, settings: dict[str, Any], may_change: Iterable[str],
                 what: str) -> None:
    """Record a run's settings in out/filename, after `check_pinned` allowed them."""
    check_pinned(out, filename, settings, may_change, what)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / filename, yaml.safe_dump(settings, sort_keys=False))
