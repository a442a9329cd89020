"""Name a subnet on the command line: a spec file, a preset, or its stages as one line."""
from __future__ import annotations

from pathlib import Path

from ..data import Dataset
from ..evaluators.base import fit_to
from ..presets import PRESET_DIR, resolve_spec
from ..spec import ArchSpec, SpecError, StageSpec
from .plan import SupernetPlan


def subnet_spec(plan: SupernetPlan, text: str, dataset: Dataset) -> ArchSpec:
    """The spec `text` names, fitted to the data set's classes and channels.

    Args:
        plan: the supernet (its space's frame completes a stages-only line).
        text: a spec YAML path, a preset name, or stage strings separated by spaces.
        dataset: the data the subnet is judged on.
    """
    words = text.split()
    if len(words) == 1 and (Path(text).is_file() or (PRESET_DIR / f"{text}.yaml").is_file()):
        return fit_to(resolve_spec(text), dataset)
    try:
        stages = tuple(StageSpec.from_string(w) for w in words)
    except SpecError as exc:
        raise SpecError(f"{text!r} is neither a spec file, a preset nor a line of stages: {exc}") from None
    base = plan.base
    return fit_to(base.replace(name=f"{plan.space.name}-subnet", stages=stages), dataset)
