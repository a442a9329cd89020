"""The built-in evaluators, registered by name (imported by `resolve_evaluator`)."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..counting import analytic_count
from ..data import Dataset
from ..spec import ArchSpec
from . import zero_cost
from .base import EvalScore, fit_to, register_evaluator
from .training import sotl_factory, train_factory


@dataclass(frozen=True)
class CountEvaluator:
    """`params` or `macs`: the analytic count of the net (larger nets tend to be more accurate,
    the baseline every proxy must beat; NAS-Bench-Suite-Zero, Krishnakumar et al., NeurIPS 2022)."""

    name: str

    def score(self, spec: ArchSpec, dataset: Dataset, split: str = "val", seed: int = 0) -> EvalScore:
        """The count of `spec` with the data set's classes (no data or seed is read)."""
        start = time.perf_counter()
        count = analytic_count(fit_to(spec, dataset))
        return EvalScore(float(getattr(count, self.name)), time.perf_counter() - start)


# one minibatch of 64 training images, as Abdelfattah et al. (ICLR 2021) score NAS-Bench-201;
# ZiCo reads 2 (its authors' default --maxbatch)
ZERO_COST = {"synflow": (zero_cost.synflow, 0), "naswot": (zero_cost.naswot, 1),
             "grad_norm": (zero_cost.grad_norm, 1), "snip": (zero_cost.snip, 1),
             "zico": (zero_cost.zico, 2)}

register_evaluator("train", train_factory, "RECIPE", "validation accuracy after training with RECIPE")
register_evaluator("sotl", sotl_factory, "RECIPE", "minus the sum of per-epoch training losses of RECIPE")
for _name, (_fn, _batches) in ZERO_COST.items():
    register_evaluator(_name, lambda _arg, device, n=_name, f=_fn, b=_batches:
                       zero_cost.ZeroCostEvaluator(n, f, b, device=device), None, f"zero-cost proxy {_name}")
for _name in ("params", "macs"):
    register_evaluator(_name, lambda _arg, _device, n=_name: CountEvaluator(n), None, f"analytic {_name}")


def _supernet(arg: str, device: str):
    from ..supernet.evaluator import supernet_factory  # torch and the search space only when asked for

    return supernet_factory(arg, device)


register_evaluator("supernet", _supernet, "DIR", "accuracy of the subnet with a trained supernet's weights "
                   "(`nas supernet train`) after precise BN")


def _predictor(arg: str, _device: str):
    from ..supernet.evaluator import predictor_factory

    return predictor_factory(arg, _device)


register_evaluator("predictor", _predictor, "DIR", "validation accuracy predicted from a supernet's judged "
                   "subnets (`nas supernet predictor DIR`)")
