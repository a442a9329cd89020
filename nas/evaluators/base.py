"""The evaluator interface: one way to judge a candidate, whatever it costs.

An evaluator scores an ArchSpec on a data set and says what the score cost in seconds;
a higher value is always better (a loss is negated). Evaluators are looked up by name
in one registry (`resolve_evaluator("train:proxy")`), so a search, a benchmark's
fidelity table or a test can swap training for a zero-cost proxy without knowing which.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

from ..data import Dataset
from ..errors import NasError
from ..spec import ArchSpec


class EvaluatorError(NasError):
    """An evaluator name or its argument is invalid."""


@dataclass(frozen=True)
class EvalScore:
    """One evaluator's verdict on one candidate.

    Attributes:
        value: the score; higher is better. May be -inf when the net gives no signal
            (e.g. synflow of a net with a dead layer).
        seconds: wall time the score cost (model build and data staging included).
        details: what else the evaluator measured (per-epoch losses, batch size, ...).
    """

    value: float
    seconds: float
    details: dict = field(default_factory=dict)


class Evaluator(Protocol):
    """Anything with a `name` and a `score` method (see EvalScore)."""

    name: str

    def score(self, spec: ArchSpec, dataset: Dataset, split: str = "val", seed: int = 0) -> EvalScore:
        """Score `spec` on `dataset`: training evaluators report `split` (val or test);
        zero-cost proxies read a few minibatches of the training split. A fixed seed fixes
        the initial weights and the minibatches, so the score is deterministic on a CPU."""
        ...


# name -> (factory(argument or None, device) -> Evaluator, whether it takes ":ARG", help)
Factory = Callable[[Optional[str], str], Evaluator]
_REGISTRY: dict[str, tuple[Factory, Optional[str], str]] = {}


def register_evaluator(name: str, factory: Factory, arg: Optional[str] = None, help: str = "") -> None:
    """Register an evaluator family.

    Args:
        name: the name before any colon (``train``, ``synflow``).
        factory: builds the evaluator from its argument (None when it takes none) and a device.
        arg: what the argument after the colon is called (``RECIPE``, ``DIR``), or None.
        help: one line for listings.
    """
    _REGISTRY[name] = (factory, arg, help)


def evaluator_names() -> list[str]:
    """The registered names as written on a command line (``train:RECIPE``, ``synflow``, ...)."""
    return [f"{n}:{arg}" if arg else n for n, (_f, arg, _h) in _REGISTRY.items()]


def resolve_evaluator(text: str, device: str = "cpu") -> Evaluator:
    """The evaluator a name such as ``synflow`` or ``train:proxy`` stands for.

    Raises:
        EvaluatorError: one line listing the known names when `text` names none of them.
    """
    known = ", ".join(evaluator_names())
    name, _, arg = text.strip().partition(":")
    if name not in _REGISTRY:
        raise EvaluatorError(f"unknown evaluator {text!r}; known evaluators: {known}")
    factory, arg_name, _ = _REGISTRY[name]
    if bool(arg_name) != bool(arg):
        form = f"{name}:{arg_name}" if arg_name else name
        raise EvaluatorError(f"evaluator {text!r} is written {form}; known evaluators: {known}")
    return factory(arg or None, device)


ACCURACY_EVALUATORS = ("train", "supernet", "predictor")  # their scores are accuracies in [0, 1]


def gives_accuracy(text: str) -> bool:
    """Whether the evaluator `text` names scores with an accuracy (which a reward can weigh)."""
    return text.strip().partition(":")[0] in ACCURACY_EVALUATORS


def parse_evaluators(text: str, device: str = "cpu") -> list[Evaluator]:
    """A comma-separated list of evaluator names, each resolved (duplicates refused)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise EvaluatorError(f"no evaluator named in {text!r}; give e.g. synflow,params,train:proxy")
    if len(set(names)) != len(names):
        raise EvaluatorError(f"evaluators {text!r} name one twice; list each once")
    return [resolve_evaluator(n, device) for n in names]


def fit_to(spec: ArchSpec, dataset: Dataset) -> ArchSpec:
    """`spec` with the data set's classes and input channels (a bench or space spec may carry
    other ones)."""
    if spec.num_classes == dataset.num_classes and spec.in_channels == dataset.channels:
        return spec
    return spec.replace(num_classes=dataset.num_classes, in_channels=dataset.channels)

