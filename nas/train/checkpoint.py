"""Run folders of the trainer: checkpoint files, their fingerprint, and safe loading.

A checkpoint holds only tensors and plain data, so it is always read with
``torch.load(weights_only=True)``: a crafted file cannot run code.
"""
from __future__ import annotations

import csv
import io
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch

from ..atomic import replace_atomically, write_text
from ..errors import TrainError
from ..runfolder.files import CHECKPOINT, occupied
from ..runfolder.fingerprint import checkpoint_fingerprint, fingerprint_difference
from ..recipe import Recipe
from ..spec import ArchSpec, SpecError

FORMAT = 2


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save written atomically (checkpoint.pt)."""
    replace_atomically(path, lambda f: torch.save(obj, f))


def write_metrics(out_dir: Path, history: list[dict]) -> None:
    """metrics.csv: one row per epoch."""
    if not history:
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text(out_dir / "metrics.csv", text.getvalue())


def load_tensors(path: Path, expected: str = f"a {CHECKPOINT} written by `nas train`",
                 mmap: bool = False) -> Any:
    """torch.load with weights_only=True (tensors and plain data, never code); a truncated,
    corrupt or crafted file is one line naming it and what was `expected` instead. `mmap`
    maps the tensors instead of reading them (for a look at the plain data only)."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of non-checkpoints
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            ValueError, AttributeError) as exc:
        raise TrainError(f"{path} is not a readable checkpoint ({load_failure(exc)}); give {expected}") from None


def load_failure(exc: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, in a few words; never torch's advice to
    retry with weights_only=False, which would run the code a crafted file holds."""
    text = str(exc).strip()
    if "weights_only" in text or "Weights only" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines() if \
            "WeightsUnpickler error:" in text else []
        return ("it holds objects other than tensors and plain data, or is no weights file"
                + (f": {detail[0][:100]}" if detail else ""))
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, (KeyError, pickle.UnpicklingError)) or len(first) < 8:
        return f"not a PyTorch weights file ({type(exc).__name__}{': ' + first[:60] if first else ''})"
    return first[:160]


def read_checkpoint(path: Path, mmap: bool = False) -> dict:
    """A checkpoint's contents, loaded without unpickling code; unreadable files are named.
    `mmap`: tensors mapped, not read (fingerprint checks of large checkpoints)."""
    state = load_tensors(path, mmap=mmap)
    if not isinstance(state, dict) or "spec" not in state or "weights" not in state:
        raise TrainError(f"{path} is not a `nas train` checkpoint (no spec/weights inside)")
    return state


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint file of a run folder (or the file itself); refuses a missing one."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise TrainError(f"no checkpoint at {path}; give a run directory made by `nas train` or "
                         f"`nas convert`, or its {CHECKPOINT}")
    return path


def load_checkpoint(path: str | Path) -> tuple[ArchSpec, dict]:
    """(spec, raw checkpoint) from a run directory or a checkpoint file.

    Args:
        path: a run folder made by `nas train` (or `nas convert`), or its checkpoint.pt.
    """
    path = checkpoint_path(path)
    state = read_checkpoint(path)
    try:
        return ArchSpec.from_dict(state["spec"]), state
    except SpecError as exc:
        raise TrainError(f"{path}: its spec is invalid: {exc}") from None


def prepare_out_dir(out: Optional[Path], spec: ArchSpec, recipe: Recipe, resume: bool,
                    fingerprint: dict) -> Optional[dict]:
    """Check (or create) a run folder; return the state to resume from, if any."""
    if out is None:
        if resume:
            raise TrainError("--resume needs --out DIR (the run directory to continue)")
        return None
    ckpt = out / CHECKPOINT
    if ckpt.exists():
        if not resume:
            raise occupied(out)
        state = read_checkpoint(ckpt)
        diff = fingerprint_difference(checkpoint_fingerprint(state), fingerprint)
        if diff:
            raise TrainError(f"{out} holds a run of another configuration ({diff}); resume with "
                             "the same spec, recipe and data, pass --force to start this one in a "
                             "fresh sub-folder, or choose another --out")
        return state
    if resume:
        raise TrainError(f"nothing to resume: {ckpt} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    spec.save(out / "spec.yaml")
    write_text(out / "recipe.yaml", recipe.to_yaml())
    return None
