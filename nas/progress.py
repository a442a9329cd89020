"""Progress lines with elapsed time and ETA."""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional


def fmt_seconds(seconds: float) -> str:
    """'m:ss', or 'h:mm:ss' from one hour on (negative values count as 0).

    Args:
        seconds: the duration to format; rounded to whole seconds.
    """
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts done/total units and formats 'i/N ... elapsed, ETA' lines.

    Args:
        total: units in the whole job.
        done: units already finished before this session (resumed runs); they do not
            count towards the ETA's rate.
        log: where lines go (default: standard error, flushed).
    """

    def __init__(self, total: int, done: int = 0, log: Optional[Callable[[str], None]] = None) -> None:
        self.total, self.start_done, self.done = total, done, done
        self.start = time.perf_counter()
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def advance(self, n: int = 1) -> None:
        """Count `n` more finished units.

        Args:
            n: units just finished.
        """
        self.done += n

    @property
    def elapsed(self) -> float:
        """Seconds since this Progress was made."""
        return time.perf_counter() - self.start

    def eta(self) -> Optional[float]:
        """Seconds left at this session's rate, or None before the first unit finishes."""
        finished = self.done - self.start_done
        if finished <= 0:
            return None
        return self.elapsed / finished * (self.total - self.done)

    def suffix(self) -> str:
        """'elapsed m:ss, ETA m:ss' ('?' while the ETA is unknown)."""
        eta = self.eta()
        return f"elapsed {fmt_seconds(self.elapsed)}, ETA {fmt_seconds(eta) if eta is not None else '?'}"
