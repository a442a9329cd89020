"""Process-wide settings, in one place: called once by an entry point, never at import."""
from __future__ import annotations

import os
import sys


def setup_process() -> None:
    """Set the OpenMP wait policy to PASSIVE before torch loads (a user's setting wins).

    OpenMP threads that spin at barriers collapse when other jobs share the cores: on 2
    shared cores a 1.9 M-MAC net trained at 126-215 img/s with the default policy and
    605-919 with PASSIVE (results/benchmarks/cpu-profile.md). libgomp reads the variable
    once, when torch loads, so this only takes effect before the first `import torch`.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
