"""File names made from user text (spec names): never a path outside the run folder."""
from __future__ import annotations

import re
from typing import Iterable

from .errors import NasError


def safe_name(name: str) -> str:
    """A file-name-safe slug of `name`: letters, digits, '.', '_' and '-' only, no leading
    dot, never '..' or a separator, so `out / safe_name(x)` stays inside `out`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip(".-") or "model"
    slug = re.sub(r"\.{2,}", ".", slug)
    return slug[:120]


def check_distinct_folders(names: Iterable[str]) -> None:
    """Refuse two different names that `safe_name` turns into one folder (`../../x` and `x`):
    the second net would be reported with the first one's runs."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(safe_name(name), name)
        if other != name:
            raise NasError(f"nets {other!r} and {name!r} would share the folder {safe_name(name)!r}; "
                           "give them names that differ in letters, digits, '.', '_' or '-'")
