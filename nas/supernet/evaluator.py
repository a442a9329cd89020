"""`supernet:DIR`: the validation accuracy of a subnet with the supernet's weights and
precise BN -- seconds per candidate instead of a training run."""
from __future__ import annotations

from ..data import Dataset
from ..evaluators.base import EvalScore, EvaluatorError, fit_to
from ..spec import ArchSpec
from .judge import BN_IMAGES, judge_dataset, load_supernet
from .plan import SupernetError

class SupernetEvaluator:
    """Scores a spec by its subnet's accuracy on `split` (seed unused: nothing is random)."""

    def __init__(self, folder: str, device: str = "cpu") -> None:
        self.name = f"supernet:{folder}"
        try:
            self.loaded = load_supernet(folder, device)
        except SupernetError as exc:
            raise EvaluatorError(str(exc)) from None

    def score(self, spec: ArchSpec, dataset: Dataset, split: str = "val", seed: int = 0) -> EvalScore:
        """Accuracy of `spec`'s subnet on `split` after precise BN on 512 training images."""
        if split not in ("val", "test"):
            raise EvaluatorError(f"the supernet evaluator reports val or test accuracy, not {split!r}")
        try:
            self.loaded.check_data(dataset)
            spec = fit_to(spec, dataset)
            self.loaded.plan.check_runs(spec)
        except SupernetError as exc:
            raise EvaluatorError(str(exc)) from None
        acc, seconds = judge_dataset(self.loaded, spec, dataset, split)
        return EvalScore(float(acc), seconds, {"bn_images": BN_IMAGES})


def supernet_factory(arg: str, device: str) -> SupernetEvaluator:
    """`supernet:DIR`."""
    return SupernetEvaluator(arg, device)


class PredictorEvaluator:
    """`predictor:DIR`: the accuracy the supernet's predictor (`nas supernet predictor`) expects
    of a spec -- microseconds a candidate, for searches of thousands of trials."""

    def __init__(self, folder: str) -> None:
        from pathlib import Path

        from .judge import read_meta
        from .predictor import load_predictor

        self.name = f"predictor:{folder}"
        try:
            self.meta, self.space, self.plan = read_meta(Path(folder))
            self.predictor, self.summary = load_predictor(Path(folder))
        except SupernetError as exc:
            raise EvaluatorError(str(exc)) from None

    def score(self, spec: ArchSpec, dataset: Dataset, split: str = "val", seed: int = 0) -> EvalScore:
        """The predicted validation accuracy of `spec` (no data is read; `split` must be val)."""
        import time

        from .predictor import features

        start = time.perf_counter()
        if split != "val" or dataset.name != self.meta["dataset"]:
            raise EvaluatorError(f"{self.name} predicts {self.meta['dataset']} validation accuracy only")
        try:
            spec = fit_to(spec, dataset)
            self.plan.check_runs(spec)
        except SupernetError as exc:
            raise EvaluatorError(str(exc)) from None
        value = float(self.predictor.predict_features(features(self.plan, spec))[0])
        return EvalScore(value, time.perf_counter() - start, {})


def predictor_factory(arg: str, device: str) -> PredictorEvaluator:
    """`predictor:DIR`."""
    return PredictorEvaluator(arg)
