"""The `nas` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .errors import NasError


def build_parser() -> argparse.ArgumentParser:
    from .commands import arch, compare, fidelity, interop, pipeline, scale, search, train

    parser = argparse.ArgumentParser(
        prog="nas", description="EfficientNet-style NAS: search a baseline for a MACs budget, "
                                "scale it, and train/compare nets with one trainer.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (arch, train, search, scale, pipeline, compare, fidelity, interop):
        module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; progress so far is saved where the command supports resuming",
              file=sys.stderr)
        return 130
