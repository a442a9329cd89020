"""EfficientNet-style neural architecture search: specs, builder, counting, trainer, search.

Importing the package loads no torch and changes no process setting: the spec, the block
registry, rounding and analytic counting are plain Python (entry points call
`nas.process.setup_process` before torch loads).
"""
from . import block_types  # noqa: F401  (registers the built-in block types)
from .spec import ArchSpec, BatchNormSpec, HeadSpec, SpecError, StageSpec, StemSpec

__version__ = "0.1.0"

__all__ = ["ArchSpec", "BatchNormSpec", "HeadSpec", "SpecError", "StageSpec", "StemSpec"]
