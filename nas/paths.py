"""File names made from user text (spec names): never a path outside the run folder."""
from __future__ import annotations

import re


def safe_name(name: str) -> str:
    """A file-name-safe slug of `name`: letters, digits, '.', '_' and '-' only, no leading
    dot, never '..' or a separator, so `out / safe_name(x)` stays inside `out`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip(".-") or "model"
    slug = re.sub(r"\.{2,}", ".", slug)
    return slug[:120]
