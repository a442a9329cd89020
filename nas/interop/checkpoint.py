"""Run folders for imported weights, and reading any checkpoint without running pickled code."""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

import torch

from ..atomic import write_text
from ..recipe import Recipe
from ..spec import ArchSpec, SpecError
from ..train.checkpoint import CHECKPOINT, TrainError, checkpoint_path, load_tensors, save_atomic
from . import InteropError


def write_run(out: str | Path, spec: ArchSpec, weights: dict[str, torch.Tensor],
              info: dict[str, Any]) -> Path:
    """Write spec.yaml, checkpoint.pt (the trainer's format, epoch 0) and convert.json.

    Args:
        out: the run folder; refused when it already holds a checkpoint.
        spec: the architecture the weights belong to.
        weights: our state_dict.
        info: what convert.json records (source, max_abs_diff, ...); plain JSON values.
    Returns:
        the checkpoint path.
    """
    out = Path(out)
    if (out / CHECKPOINT).exists():
        raise InteropError(f"{out} already holds a run ({CHECKPOINT}); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    spec.save(out / "spec.yaml")
    tensors = OrderedDict((k, v.detach().cpu().clone()) for k, v in weights.items())
    save_atomic({
        "format": 1, "spec": spec.to_dict(), "recipe": Recipe(name="imported").to_dict(),
        "epoch": 0, "history": [], "model": tensors, "weights": tensors, "imported": dict(info),
    }, out / CHECKPOINT)
    write_text(out / "convert.json", json.dumps(info, indent=2) + "\n")
    return out / CHECKPOINT


def read_checkpoint(path: str | Path) -> tuple[Optional[ArchSpec], dict[str, torch.Tensor]]:
    """(spec or None, weights) from a run folder, a trainer/convert checkpoint or a bare state_dict.

    Args:
        path: a run directory (its checkpoint.pt is read) or a file; loaded with
            ``weights_only=True``. For trainer checkpoints the evaluated weights
            (EMA when the recipe used it) are returned.
    """
    try:
        path = checkpoint_path(path)
    except TrainError as exc:
        raise InteropError(str(exc)) from None
    state = load_tensors(path, f"a {CHECKPOINT} of `nas train`/`nas convert`, or a state_dict")
    if isinstance(state, dict) and isinstance(state.get("weights"), dict) and "spec" in state:
        try:
            return ArchSpec.from_dict(state["spec"]), state["weights"]
        except SpecError as exc:
            raise InteropError(f"{path}: its spec is invalid: {exc}") from exc
    if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        return None, state
    raise InteropError(f"{path} is neither a `nas` checkpoint nor a state_dict")
