"""The `nas` command line."""
from __future__ import annotations

import argparse
import errno
import re
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from .errors import Interrupted, NasError
from .process import setup_process


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2, like every other user error:
    `nas search: error: --trials must be >= 1 (got 0); see nas search -h` (no usage block).
    Sub-command parsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        match = re.match(r"argument ([^:]+): (.*)", message, re.S)
        if match:
            flag, reason = match.group(1).split("/")[0], match.group(2)
            if reason.startswith(flag):
                message = reason
            else:
                message = f"{flag} {reason}" if reason.startswith("must ") else f"{flag}: {reason}"
        line = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {line}; see {self.prog} -h\n")


def build_parser() -> argparse.ArgumentParser:
    """The `nas` argument parser with every sub-command registered."""
    from .commands import (arch, bench, compare, fidelity, interop, latency, pipeline, scale, search, supernet,
                           train)

    parser = OneLineParser(
        prog="nas", description="EfficientNet-style NAS: search a baseline for a MACs budget, "
                                "scale it, and train/compare nets with one trainer.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (arch, train, search, scale, pipeline, compare, fidelity, bench, supernet, latency, interop):
        module.register(sub)
    return parser


INTERRUPTED = ("interrupted; progress so far is saved where the command supports resuming "
               "(re-run the same command to go on)")


NEGATIVE_VALUED = ("--phi",)  # options whose value may start with a minus sign


def join_negative_values(argv: Sequence[str]) -> list[str]:
    """`--phi -1,0.5` as `--phi=-1,0.5`: argparse would read the value as an unknown option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in NEGATIVE_VALUED and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one `nas` command; user errors are one line and exit 2, Ctrl-C exits 130."""
    setup_process()  # before the commands import torch
    args = build_parser().parse_args(join_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        return _run(args)
    except Exception as exc:
        if _caused_by_interrupt(exc):  # a library's clean-up failed while handling Ctrl-C
            print(INTERRUPTED, file=sys.stderr)
            return 130
        raise


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__context__ or exc.__cause__, seen + 1
    return False


def _run(args) -> int:
    from .runfolder.outputs import new_folder, remove_if_bare

    created = new_folder(Path(args.out)) if getattr(args, "out", None) else None
    code = _refusing(args)
    if code == 2:
        remove_if_bare(created)
    return code


def _refusing(args) -> int:
    try:
        return int(args.func(args) or 0)
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(exc.args[0] if isinstance(exc, Interrupted) and exc.args else INTERRUPTED, file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: the net or batch is too large for this machine; use a "
              "smaller spec (resolution, width, depth) or --batch-size", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {os_error_line(exc, getattr(args, 'out', None))}", file=sys.stderr)
        return 2


NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota, file-size limit
NOT_WRITABLE = (errno.EROFS,)


def os_error_line(exc: OSError, out: Optional[str] = None) -> str:
    """One line for a file-system error, naming the path and what to do. A failed write to an
    open file carries no file name; then the command's --out is named."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and out and Path(out).is_file():
        return f"--out {out} is a file; choose a folder"
    reason = exc.strerror or str(exc).splitlines()[0]
    written = exc.filename or (f"into {out}" if out else "a file")
    if exc.errno in NO_ROOM:
        return f"cannot write {written}: {reason}; free some space or choose another --out"
    if isinstance(exc, (PermissionError, IsADirectoryError)) or exc.errno in NOT_WRITABLE:
        return f"cannot write {written}: {reason}; choose a writable --out"
    return f"{exc.filename or 'a file'}: {reason}"
