"""Every output file is written here: through a fresh temporary file in the same folder, then
`os.replace`. A reader (or a crash) never sees half a file, and a symbolic link planted in
--out under an output's name is replaced by the file, never followed to a file elsewhere."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write `path` by calling write(binary file) on a temporary file beside it, then renaming.

    The temporary file is created exclusively (never through an existing name or link) and
    gets the usual permissions. A failed write (full or read-only disk) raises the OSError
    naming `path` (torch wraps it in a RuntimeError; a failed flush names no file) and leaves
    the earlier file as it was.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        cause = exc.__context__ if isinstance(exc, RuntimeError) else exc
        if isinstance(cause, OSError):
            raise OSError(cause.errno, cause.strerror, str(path)) from None
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """A text file (UTF-8), written atomically."""
    return replace_atomically(path, lambda f: f.write(text.encode()))


def write_csv(path: Path, frame: Any) -> Path:
    """A pandas DataFrame as CSV without its index, written atomically."""
    return write_text(path, frame.to_csv(index=False))


def save_figure(fig: Any, path: Path, dpi: int = 120) -> Path:
    """A matplotlib figure, written atomically (the format from the file's suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return replace_atomically(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))
