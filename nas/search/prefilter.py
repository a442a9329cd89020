"""Two-stage search: score many candidates with a cheap evaluator, train only the best.

`nas search --prefilter NAME --prefilter-trials M` draws M distinct candidates of the space
at random (a hard budget's rejects are skipped), scores each with the evaluator on the
training split, and queues the best ones, after the space's baselines, as the trials the
search trains; the search then trains exactly --trials candidates. What the scoring cost
is stored on the study and shown apart on the cost card.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import optuna

from ..bench.sample import RandomChoices
from ..counting import analytic_count
from ..data import Dataset
from ..evaluators import Evaluator
from ..study import ProgressLine
from .objectives import Objective
from .space import SearchSpace

DRAWS_PER_CANDIDATE = 20  # random draws tried per wanted candidate (duplicates and rejects skipped)


@dataclass(frozen=True)
class Scored:
    """One prefiltered candidate: its choices, its score and what the score cost."""

    params: dict
    value: float
    seconds: float


def draw_candidates(space: SearchSpace, num_classes: int, count: int, objective: Objective, seed: int,
                    exclude: set[str]) -> list[dict]:
    """Up to `count` distinct random candidates' choices (none in `exclude`, none a hard budget
    rejects)."""
    rng, seen, out = RandomChoices(random.Random(seed)), set(exclude), []
    for _ in range(DRAWS_PER_CANDIDATE * count):
        params = space.suggest(rng)
        spec = space.to_spec(params, num_classes=num_classes)
        key = spec.canonical_string()
        if key in seen or (objective.mode == "hard" and objective.rejects(objective.cost.of(spec))):
            continue
        seen.add(key)
        out.append(params)
        if len(out) == count:
            break
    return out


def prefilter(space: SearchSpace, dataset: Dataset, evaluator: Evaluator, count: int, objective: Objective,
              seed: int, log: Callable[[str], None]) -> list[Scored]:
    """`count` random candidates scored by `evaluator`, best first."""
    baselines = {space.to_spec(p, num_classes=dataset.num_classes).canonical_string()
                 for _, p in space.baseline_params()}
    drawn = draw_candidates(space, dataset.num_classes, count, objective, seed, baselines)
    progress = ProgressLine(len(drawn), log, prefix=f"prefilter {evaluator.name} ")
    scored = []
    for i, params in enumerate(drawn):
        spec = space.to_spec(params, num_classes=dataset.num_classes, name=f"{space.name}-p{i}")
        s = evaluator.score(spec, dataset, "val", seed)
        scored.append(Scored(params, s.value, s.seconds))
        progress.say(i + 1, f"{analytic_count(spec).macs / 1e6:8.2f} M MACs  score {s.value:.5g}", s.seconds)
    return sorted(scored, key=lambda s: -s.value if s.value == s.value else float("inf"))


def enqueue_best(study: optuna.Study, scored: list[Scored], keep: int, evaluator: str) -> None:
    """Queue the `keep` best candidates and record the whole prefilter's cost on the study."""
    for rank, s in enumerate(scored[:keep]):
        study.enqueue_trial(s.params, user_attrs={"prefilter_score": s.value, "prefilter_rank": rank + 1})
    study.set_user_attr("prefilter", {"evaluator": evaluator, "scored": len(scored), "queued": min(keep, len(scored)),
                                      "seconds": sum(s.seconds for s in scored)})
