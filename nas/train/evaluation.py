"""Evaluation: accuracy and loss of a model on a staged split, and of a saved checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..builder import build
from ..data import Dataset, Split
from ..recipe import Recipe
from .augment import Normalize
from .checkpoint import TrainError, load_checkpoint
from .runtime import amp_dtype, resolve_device


@torch.no_grad()
def evaluate_outcomes(model: torch.nn.Module, data: Split, normalize: Normalize,
                      amp: Optional[torch.dtype], batch_size: int) -> tuple[float, float, np.ndarray]:
    """(accuracy, mean loss, per-image correct flags) of `model` on a staged split; the
    model's mode is restored. The flags (numpy bool, split order) are what paired intervals
    resample (`nas.outcomes`, `nas.claims`).

    Args:
        model: any classifier taking normalised N x C x H x W floats.
        data: uint8 images and labels on the model's device (`Dataset.staged`).
        normalize: the uint8 -> float transform the model was trained with.
        amp: autocast dtype, or None for float32.
        batch_size: images per forward pass.
    """
    was_training = model.training
    model.eval()
    device_type = data.labels.device.type
    hits = []
    loss = torch.zeros((), device=data.labels.device)
    autocast = (torch.autocast(device_type, dtype=amp) if amp is not None
                else torch.autocast(device_type, enabled=False))
    try:
        for start in range(0, len(data), batch_size):
            x, y = data.images[start:start + batch_size], data.labels[start:start + batch_size]
            with autocast:
                logits = model(normalize(x)).float()
            hits.append(logits.argmax(1) == y)
            loss += F.cross_entropy(logits, y, reduction="sum")
    finally:
        model.train(was_training)
    correct = torch.cat(hits).cpu().numpy() if hits else np.zeros(0, dtype=bool)
    return int(correct.sum()) / len(data), float(loss) / len(data), correct


def evaluate(model: torch.nn.Module, data: Split, normalize: Normalize,
             amp: Optional[torch.dtype], batch_size: int) -> tuple[float, float]:
    """(accuracy, mean loss) of `model` on a staged split (`evaluate_outcomes` without the
    per-image flags); the model's mode is restored."""
    acc, loss, _ = evaluate_outcomes(model, data, normalize, amp, batch_size)
    return acc, loss


def check_classes(spec_classes: int, dataset: Dataset, what: str) -> None:
    """Refuse a class-count mismatch instead of evaluating a meaningless accuracy."""
    if spec_classes != dataset.num_classes:
        raise TrainError(f"{what} has {spec_classes} classes but {dataset.name} has "
                         f"{dataset.num_classes}; evaluate it on the data set it was trained on, "
                         "or fine-tune it first (nas train --init)")


def evaluate_checkpoint(path: str | Path, dataset: Dataset, split: str = "test",
                        device: str = "auto", batch_size: int = 1024) -> dict[str, Any]:
    """Accuracy of a saved run on one split of `dataset`.

    Args:
        path: a run folder or its checkpoint.pt (loaded with weights_only=True).
        dataset: the data set to evaluate on; its class count must match the checkpoint's.
        split: train, val or test.
        device: auto, cpu, cuda or cuda:N.
        batch_size: images per forward pass.

    Returns:
        dict with spec, split, images, accuracy and loss.
    """
    spec, state = load_checkpoint(path)
    check_classes(spec.num_classes, dataset, f"checkpoint {path}")
    saved = (state.get("fingerprint") or {}).get("data") or {}
    if saved.get("name") not in (None, dataset.name):
        raise TrainError(f"checkpoint {path} was trained on {saved['name']}, not {dataset.name}; "
                         "pass the same --dataset (or none: the run folder knows it)")
    dev = resolve_device(device)
    model = build(spec).to(dev)
    try:
        model.load_state_dict(state["weights"])
    except RuntimeError as exc:
        raise TrainError(f"checkpoint {path}: weights do not fit its spec "
                         f"({str(exc).splitlines()[0][:160]})") from None
    mean, std = state.get("normalize") or dataset.mean_std()
    recipe = Recipe.from_dict(state["recipe"]) if state.get("recipe") else Recipe()
    data = dataset.staged(split, dev, spec.resolution)
    acc, loss = evaluate(model, data, Normalize(mean, std, False).to(dev),
                         amp_dtype(recipe.precision, dev), batch_size)
    return {"checkpoint": str(path), "spec": spec.name, "dataset": dataset.name, "split": split,
            "images": len(data), "accuracy": acc, "loss": loss}
