"""EfficientNet-style neural architecture search: specs, builder, counting, trainer, search."""
from .spec import ArchSpec, BatchNormSpec, HeadSpec, SpecError, StageSpec, StemSpec

__version__ = "0.1.0"

__all__ = ["ArchSpec", "BatchNormSpec", "HeadSpec", "SpecError", "StageSpec", "StemSpec"]
