"""An accuracy predictor fitted to supernet judgements, for searches of thousands of trials.

Judging one subnet with inherited weights costs seconds on a CPU (extraction, precise BN
on 512 images, 5k validation images), so 2,000 search trials would take an hour or more.
Once-for-All's answer is an accuracy predictor trained on supernet-judged subnets; ours
is a ridge regression on the choices (per stage: operation, kernel, SE, skip, width,
depth, expansion) and log MACs/params, its penalty chosen by 5-fold cross-validation, and
its out-of-fold rank agreement with the judged accuracies written next to it, so a user
sees how far to trust it before searching with `--evaluator predictor:DIR`.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..atomic import write_csv, write_text
from ..counting import analytic_count
from ..spec import ArchSpec
from .plan import OPS, SupernetError, SupernetPlan, op_of

PREDICTOR = "predictor.json"
SAMPLES = "predictor.csv"
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
FOLDS = 5


def features(plan: SupernetPlan, spec: ArchSpec) -> np.ndarray:
    """The predictor's inputs for `spec`: per stage a one-hot operation and kernel, SE, skip,
    width, depth and expansion scaled to [0, 1] by the stage's largest; then log MACs and params."""
    values: list[float] = []
    for stage, st in zip(spec.stages, plan.stages):
        op = op_of(stage)
        values += [float(op == o) for o in OPS]
        values += [stage.kernel / st.max_kernel, float(stage.se > 0), float(stage.skip), stage.out / st.max_out,
                   stage.repeats / st.max_repeats, (stage.expand / st.max_expand) if op == "mbconv" else 0.0]
    count = analytic_count(spec)
    return np.array(values + [math.log(count.macs), math.log(count.params)], dtype=np.float64)


@dataclass(frozen=True)
class Predictor:
    """Ridge regression on standardised features: accuracy = bias + w · (x - mean) / scale."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    penalty: float

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Predicted accuracies of the rows of `x` (clipped to [0, 1])."""
        z = (np.atleast_2d(x) - np.array(self.mean)) / np.array(self.scale)
        return np.clip(z @ np.array(self.weights) + self.bias, 0.0, 1.0)

    def to_dict(self) -> dict:
        """Plain-data form (predictor.json)."""
        return {"weights": list(self.weights), "bias": self.bias, "mean": list(self.mean),
                "scale": list(self.scale), "penalty": self.penalty}


def fit_ridge(x: np.ndarray, y: np.ndarray, penalty: float) -> Predictor:
    """The ridge fit of `y` on `x` with `penalty` (features standardised, bias unpenalised)."""
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    w = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return Predictor(tuple(w), float(y.mean()), tuple(mean), tuple(scale), penalty)


def cross_validated(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[Predictor, np.ndarray]:
    """(the fit on all rows with the penalty of least out-of-fold error, its out-of-fold predictions)."""
    folds = np.random.default_rng(seed).permutation(len(y)) % FOLDS
    best = None
    for penalty in PENALTIES:
        out = np.empty(len(y))
        for k in range(FOLDS):
            train = folds != k
            out[~train] = fit_ridge(x[train], y[train], penalty).predict_features(x[~train])
        error = float(np.mean((out - y) ** 2))
        if best is None or error < best[0]:
            best = (error, penalty, out)
    return fit_ridge(x, y, best[1]), best[2]


def sample_spec(plan: SupernetPlan, seed: int, index: int, classes: int) -> ArchSpec:
    """The `index`-th subnet of the predictor's sample (the same for a seed on every run)."""
    return plan.random(random.Random(seed * 100_003 + index), classes, f"{plan.space.name}-p{index}")


def build_predictor(folder: Path, judge: Callable[[ArchSpec], tuple[float, float]], plan: SupernetPlan,
                    classes: int, samples: int, seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """Judge `samples` random subnets (resuming predictor.csv), fit and write predictor.json.

    Args:
        folder: the supernet folder; predictor.csv and predictor.json are written there.
        judge: spec -> (accuracy with inherited weights, seconds).
        plan: the supernet's plan.
        classes: the data set's class count.
        samples: how many distinct subnets to judge in all.
        seed: which random subnets.
        log: where progress lines go.
    Returns:
        the summary written into predictor.json (out-of-fold tau and rho, penalty, seconds).
    """
    from scipy.stats import kendalltau, spearmanr

    path = folder / SAMPLES
    rows = pd.read_csv(path).to_dict("records") if path.is_file() else []
    seen = {r["arch"] for r in rows}
    index = int(max((r["index"] for r in rows), default=-1)) + 1
    start = time.perf_counter()
    while len(rows) < samples:
        spec = sample_spec(plan, seed, index, classes)
        index += 1
        if spec.arch_string() in seen:
            continue
        acc, seconds = judge(spec)
        count = analytic_count(spec)
        rows.append({"index": index - 1, "arch": spec.arch_string(), "macs": count.macs, "params": count.params,
                     "val_acc": acc, "seconds": round(seconds, 3)})
        seen.add(spec.arch_string())
        if len(rows) % 25 == 0 or len(rows) == samples:
            write_csv(path, pd.DataFrame(rows))
            spent = time.perf_counter() - start
            log(f"predictor sample {len(rows)}/{samples}  last {acc * 100:.2f}%  {seconds:.1f}s  "
                f"elapsed {spent / 60:.1f} min")
    if len(rows) < 2 * FOLDS:
        raise SupernetError(f"a predictor needs at least {2 * FOLDS} judged subnets; give --samples {2 * FOLDS} or more")
    specs = [_spec_of(plan, r["arch"], classes) for r in rows]
    x = np.stack([features(plan, s) for s in specs])
    y = np.array([r["val_acc"] for r in rows], dtype=np.float64)
    predictor, out_of_fold = cross_validated(x, y, seed)
    summary = {"samples": len(rows), "penalty": predictor.penalty,
               "oof_kendall_tau": float(kendalltau(out_of_fold, y)[0]),
               "oof_spearman_rho": float(spearmanr(out_of_fold, y)[0]),
               "oof_mae_pts": float(np.mean(np.abs(out_of_fold - y)) * 100),
               "judge_seconds_mean": float(np.mean([r["seconds"] for r in rows]))}
    frame = pd.DataFrame(rows)
    frame["oof_predicted"] = out_of_fold
    write_csv(path, frame)
    write_text(folder / PREDICTOR, json.dumps({**predictor.to_dict(), "summary": summary}, indent=2) + "\n")
    return summary


def _spec_of(plan: SupernetPlan, arch: str, classes: int) -> ArchSpec:
    from ..spec import StageSpec

    stages = tuple(StageSpec.from_string(w) for w in arch.split())
    return plan.base.replace(name="sample", stages=stages, num_classes=classes)


def load_predictor(folder: Path) -> tuple[Predictor, dict]:
    """(predictor, its summary) from predictor.json; refused in one line when there is none."""
    path = Path(folder) / PREDICTOR
    if not path.is_file():
        raise SupernetError(f"{folder} has no {PREDICTOR}; fit one with `nas supernet predictor {folder}`")
    data = json.loads(path.read_text())
    predictor = Predictor(tuple(data["weights"]), data["bias"], tuple(data["mean"]), tuple(data["scale"]),
                          data["penalty"])
    return predictor, data.get("summary", {})
