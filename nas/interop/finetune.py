"""Starting weights for `nas train --init`: an imported or earlier-trained checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..builder import build
from ..spec import ArchSpec
from . import InteropError
from .checkpoint import read_checkpoint

CLASSIFIER = ("classifier.weight", "classifier.bias")


def _expected_shapes(spec: ArchSpec) -> dict[str, torch.Size]:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        return {k: v.shape for k, v in build(spec).state_dict().items()}


def init_weights_for(spec: ArchSpec, checkpoint: str | Path, reset_classifier: bool = False,
                     log: Callable[[str], None] = print) -> dict[str, torch.Tensor]:
    """The tensors of `checkpoint` to load into a fresh model of `spec` before training.

    The classifier is left out (so the model keeps its fresh initialisation) when the
    class counts differ or `reset_classifier` is set; every other tensor must be there
    with the shape `spec` builds, else the first one that differs is named.

    Args:
        spec: the spec being trained, with the data set's class count and channels.
        checkpoint: a run folder or checkpoint file (`nas train`/`nas convert`), or a
            state_dict in our layout; read with ``weights_only=True``.
        reset_classifier: re-initialise the classifier even when the class counts agree.
        log: where the decision about the classifier is reported.
    """
    source_spec, weights = read_checkpoint(checkpoint)
    expected = _expected_shapes(spec)
    head = weights.get(CLASSIFIER[0])
    classes = int(head.shape[0]) if head is not None and head.ndim == 2 else None
    reset = reset_classifier or classes != spec.num_classes
    if reset:
        why = ("--reset-classifier" if reset_classifier and classes == spec.num_classes else
               f"the checkpoint has {classes} classes, the data {spec.num_classes}")
        log(f"init from {checkpoint}: classifier re-initialised ({why})")
    else:
        log(f"init from {checkpoint}: all weights, classifier kept ({classes} classes)")
    skip = set(CLASSIFIER) if reset else set()
    _check_fits(weights, expected, skip, checkpoint, spec)
    if source_spec is not None and source_spec.bn != spec.bn:
        log(f"note: the checkpoint's BatchNorm (eps {source_spec.bn.eps:g}) differs from "
            f"{spec.name}'s (eps {spec.bn.eps:g}); train its spec.yaml to keep its outputs")
    return {k: v for k, v in weights.items() if k not in skip}


def _check_fits(weights: dict[str, torch.Tensor], expected: dict[str, torch.Size], skip: set[str],
                checkpoint: str | Path, spec: ArchSpec) -> None:
    fix = "train the spec the checkpoint was made with (its spec.yaml)"
    for name, shape in expected.items():
        if name in skip:
            continue
        if name not in weights:
            raise InteropError(f"--init {checkpoint} does not fit {spec.name}: it lacks {name} "
                               f"{list(shape)}; {fix}")
        if weights[name].shape != shape:
            raise InteropError(f"--init {checkpoint} does not fit {spec.name}: {name} is "
                               f"{list(weights[name].shape)} there, {list(shape)} here; {fix}")
    extra = [k for k in weights if k not in expected and k not in skip]
    if extra:
        raise InteropError(f"--init {checkpoint} does not fit {spec.name}: it has {extra[0]}, "
                           f"which {spec.name} lacks; {fix}")
