"""A deterministic stand-in for the shared trainer, so tests of the logic around training
(samplers, objectives, resuming, run folders, tables, statistics) run in milliseconds; one
real run per command stays.

`fake_train` takes `nas.train.train`'s arguments and returns a TrainResult whose accuracy is
a fixed function of the network's canonical string, its MACs and the recipe's seed: the same
network always scores the same, bigger networks tend to score higher, and every epoch is
reported to the callback (so pruning and progress paths run as with the real trainer). Like
the real trainer it refuses a spec that does not fit the data, checks (or creates) its run
folder with the same fingerprint rules and writes result.json there with the fingerprint and
per-image outcomes (whose means are the accuracies), so reuse, `--force`, refusals and the
paired statistics behave as with real runs. It builds no model and writes no checkpoint.

In-process tests use the `fake_trainer` fixture (`install`). A test that starts `nas` in
another process (a kill, worker processes, a script) passes `fake_env()` as its environment:
tests/fakesite/sitecustomize.py then installs the fake at interpreter start-up in that process
and in every worker it spawns, optionally sleeping per epoch so a kill can land mid-trial.
"""
from __future__ import annotations

import hashlib
import importlib
import math
import os
import pkgutil
import sys
import time
from pathlib import Path

import numpy as np

from nas.atomic import write_text
from nas.counting import analytic_count
from nas.outcomes import pack
from nas.train import TrainResult
from nas.train import trainer as real_trainer
from nas.runfolder.fingerprint import run_fingerprint
from nas.train.checkpoint import prepare_out_dir

TESTS = Path(__file__).resolve().parent
ENV = "NAS_TEST_FAKE_TRAINER"  # set (to the seconds each fake epoch sleeps): subprocesses use the fake
EPOCH_SECONDS = 0.0  # a fake epoch's sleep; set from ENV in subprocesses


def _unit(*parts) -> float:
    """A number in [0, 1) that is a fixed function of `parts`."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:8], 16) / 2 ** 32


def fake_accuracy(spec, seed: int = 0) -> float:
    """Validation accuracy in [0.3, 0.95): a hash of the network and seed, plus a MACs trend."""
    trend = min(1.0, max(0.0, (math.log10(analytic_count(spec).macs) - 5) / 3))
    return 0.3 + 0.35 * trend + 0.3 * _unit(spec.canonical_string(), seed)


def _outcomes(spec, seed: int, split: str, n: int, acc: float) -> tuple[float, str | None]:
    """(accuracy, packed per-image flags) on a split of `n` images: round(acc * n) images right,
    which ones a fixed function of the network, seed and split; the accuracy is their mean."""
    if n <= 0:
        return acc, None
    rng = np.random.default_rng(int(_unit(spec.canonical_string(), seed, split) * 2 ** 32))
    flags = np.zeros(n, dtype=bool)
    flags[rng.permutation(n)[:round(acc * n)]] = True
    return float(flags.mean()), pack(flags)


def fake_train(spec, dataset, recipe, *, runtime=None, out_dir=None, resume=False, callback=None,
               evaluate_test=False, log=None, init_weights=None) -> TrainResult:
    """`nas.train.train`'s signature and run-folder rules; no model is built, no checkpoint written."""
    real_trainer.check_fits(spec, dataset)
    fingerprint = run_fingerprint(spec, recipe, dataset)
    out = Path(out_dir) if out_dir is not None else None
    prepare_out_dir(out, spec, recipe, resume, fingerprint)
    final = fake_accuracy(spec, recipe.seed)
    val_acc, val_outcomes = _outcomes(spec, recipe.seed, "val", len(dataset.val), final)
    count = analytic_count(spec)
    quiet = runtime is not None and runtime.quiet
    say = log or (lambda line: None if quiet else print(line, flush=True))
    say(f"training {spec.name} with the fake trainer for {recipe.epochs} epochs")
    history = []
    for epoch in range(1, recipe.epochs + 1):
        if EPOCH_SECONDS:
            time.sleep(EPOCH_SECONDS)
        acc = val_acc if epoch == recipe.epochs else final * (0.6 + 0.4 * epoch / recipe.epochs)
        metrics = {"epoch": epoch, "train_loss": 2.5 * (1 - acc), "train_acc": acc, "val_acc": acc,
                   "val_loss": 2.5 * (1 - acc), "lr": recipe.lr, "images_per_s": 1000.0, "seconds": 0.001}
        history.append(metrics)
        say(f"epoch {epoch}/{recipe.epochs}  val {acc * 100:5.2f}%  (fake)")
        if callback is not None:
            callback(metrics)
    test_acc = test_outcomes = None
    if evaluate_test:
        test_acc, test_outcomes = _outcomes(spec, recipe.seed, "test", len(dataset.test),
                                            final - 0.05 + 0.1 * _unit(spec.canonical_string(), recipe.seed))
    result = TrainResult("completed", spec.name, recipe.epochs, history, val_acc=val_acc, test_acc=test_acc,
                         train_seconds=0.001 * recipe.epochs, wall_seconds=0.001 * recipe.epochs,
                         images_seen=100 * recipe.epochs, images_per_s=1000.0, macs=count.macs,
                         params=count.params, resolution=spec.resolution, device="cpu",
                         test_images=len(dataset.test) if evaluate_test else 0, fingerprint=fingerprint,
                         val_outcomes=val_outcomes, test_outcomes=test_outcomes)
    if out is not None:
        import json

        write_text(out / "result.json", json.dumps(result.to_dict(), indent=2))
    return result


def install(monkeypatch) -> None:
    """Replace the shared trainer by `fake_train` in every loaded nas/scaling module that
    imported it by name (the module attribute, so in-process callers only: worker
    processes started by a test train for real unless started with `fake_env()`)."""
    for package in ("nas", "scaling"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    real = real_trainer.train
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("nas", "scaling") and getattr(module, "train", None) is real:
            monkeypatch.setattr(module, "train", fake_train)


def install_at_startup(epoch_seconds: float) -> None:
    """For a fresh interpreter (tests/fakesite/sitecustomize.py): every module imports the trainer
    from `nas.train` by name, so replacing it there before they load reaches all of them."""
    global EPOCH_SECONDS
    import nas.train

    EPOCH_SECONDS = epoch_seconds
    nas.train.train = fake_train


def fake_env(epoch_seconds: float = 0.0, env: dict | None = None) -> dict:
    """The environment for a `nas` subprocess (and the workers it spawns) that trains with the
    fake, sleeping `epoch_seconds` per epoch."""
    env = dict(os.environ if env is None else env)
    path = [str(TESTS / "fakesite"), str(TESTS), str(TESTS.parent)]
    env["PYTHONPATH"] = os.pathsep.join(path + [p for p in [env.get("PYTHONPATH")] if p])
    env[ENV] = str(epoch_seconds)
    return env
