"""EfficientNet-style neural architecture search: specs, builder, counting, trainer, search."""
import os as _os
import sys as _sys

# OpenMP threads that spin at barriers collapse when other jobs share the cores: on
# 2 shared cores a 1.9 M-MAC net trained at 126-215 img/s with the default policy and
# 605-919 with PASSIVE (results/benchmarks/cpu-profile.md). libgomp reads this once,
# when torch loads, so it only takes effect if nas is imported before torch; an
# OMP_WAIT_POLICY set by the user wins.
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from .spec import ArchSpec, BatchNormSpec, HeadSpec, SpecError, StageSpec, StemSpec

__version__ = "0.1.0"

__all__ = ["ArchSpec", "BatchNormSpec", "HeadSpec", "SpecError", "StageSpec", "StemSpec"]
