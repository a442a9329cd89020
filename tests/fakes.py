"""A deterministic stand-in for the shared trainer, so tests of the logic around training
(samplers, objectives, resuming, tables) run in milliseconds; one real run per command stays.

`fake_train` takes `nas.train.train`'s arguments and returns a TrainResult whose accuracy is
a fixed function of the network's canonical string, its MACs and the recipe's seed: the same
network always scores the same, bigger networks tend to score higher, and every epoch is
reported to the callback (so pruning and progress paths run as with the real trainer).
"""
from __future__ import annotations

import hashlib
import importlib
import math
import pkgutil
import sys

from nas.counting import analytic_count
from nas.train import TrainResult
from nas.train import trainer as real_trainer


def fake_accuracy(spec, seed: int = 0) -> float:
    """Validation accuracy in [0.3, 0.95): a hash of the network and seed, plus a MACs trend."""
    digest = hashlib.sha256(f"{spec.canonical_string()}|{seed}".encode()).hexdigest()
    noise = int(digest[:8], 16) / 2 ** 32
    trend = min(1.0, max(0.0, (math.log10(analytic_count(spec).macs) - 5) / 3))
    return 0.3 + 0.35 * trend + 0.3 * noise


def fake_train(spec, dataset, recipe, *, runtime=None, out_dir=None, resume=False, callback=None,
               evaluate_test=False, log=None, init_weights=None) -> TrainResult:
    """`nas.train.train`'s signature; no model is built and nothing is written."""
    final = fake_accuracy(spec, recipe.seed)
    count = analytic_count(spec)
    history = []
    for epoch in range(1, recipe.epochs + 1):
        acc = final * (0.6 + 0.4 * epoch / recipe.epochs)
        metrics = {"epoch": epoch, "train_loss": 2.5 * (1 - acc), "train_acc": acc, "val_acc": acc,
                   "lr": recipe.lr, "images_per_s": 1000.0, "seconds": 0.001}
        history.append(metrics)
        if callback is not None:
            callback(metrics)
    return TrainResult("completed", spec.name, recipe.epochs, history, val_acc=history[-1]["val_acc"],
                       test_acc=final if evaluate_test else None, train_seconds=0.001,
                       wall_seconds=0.001, images_seen=100 * recipe.epochs, images_per_s=1000.0,
                       macs=count.macs, params=count.params, resolution=spec.resolution, device="cpu")


def install(monkeypatch) -> None:
    """Replace the shared trainer by `fake_train` in every loaded nas/scaling module that
    imported it by name (the module attribute, so in-process callers only: worker
    processes started by a test still train for real)."""
    for package in ("nas", "scaling"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    real = real_trainer.train
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("nas", "scaling") and getattr(module, "train", None) is real:
            monkeypatch.setattr(module, "train", fake_train)
