"""Progress lines with elapsed time and ETA."""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional


def fmt_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts done/total units and formats 'i/N ... elapsed, ETA' lines."""

    def __init__(self, total: int, done: int = 0, log: Optional[Callable[[str], None]] = None) -> None:
        self.total, self.start_done, self.done = total, done, done
        self.start = time.perf_counter()
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def advance(self, n: int = 1) -> None:
        self.done += n

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def eta(self) -> Optional[float]:
        finished = self.done - self.start_done
        if finished <= 0:
            return None
        return self.elapsed / finished * (self.total - self.done)

    def suffix(self) -> str:
        eta = self.eta()
        return f"elapsed {fmt_seconds(self.elapsed)}, ETA {fmt_seconds(eta) if eta is not None else '?'}"
