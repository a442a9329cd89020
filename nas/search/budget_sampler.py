"""A sampler for hard budgets: candidates over the budget are redrawn before they become trials.

Under a hard budget most of a space may lie above the target (at 0.8 M MACs in `cifar16`,
94 % of random draws and 66 % of TPE's). Each rejected draw used to be a trial: it cost the
sampler's time (TPE's grows with every stored trial), filled the study and taught the sampler
only "not here". `BudgetAwareSampler` wraps any Optuna sampler: it takes the inner sampler's
proposal for every choice of the space at once and, when that net's cost is over the budget,
repairs it with cheap draws near the proposal (each choice redrawn at random with a
probability that grows from 1/8 to 1 over the attempts, so the last attempts are plain random
draws); when none fits (a budget near the space's smallest net), the cheapest draw is shrunk,
one choice at a time set to its cheapest value, until it does. The first net within budget
becomes the trial's params, so the study only holds candidates that can be judged, and the
sampler learns from what it stores (the repaired net).

Only the cost's own `of(spec)` is called, so the cost must be cheap: MACs and params are
analytic (~30 µs a net); a latency measured on a device is not wrapped (see `wants_budget_sampler`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from .space import SearchSpace


def space_distributions(space: SearchSpace) -> dict[str, CategoricalDistribution]:
    """Every choice of the space as an Optuna distribution, named as `SearchSpace.suggest` names
    them (the conditional expand ratio included: it is used only when the block takes it)."""
    out: dict[str, CategoricalDistribution] = {}
    for i, st in enumerate(space.stages):
        out[f"s{i}_block"] = CategoricalDistribution(list(st.block))
        out[f"s{i}_expand"] = CategoricalDistribution(list(st.expand))
        for key, values in (("kernel", st.kernel), ("se", st.se), ("skip", st.skip),
                            ("width", st.width), ("repeats", st.repeats_delta)):
            out[f"s{i}_{key}"] = CategoricalDistribution(list(values))
    return out


class BudgetAwareSampler(optuna.samplers.BaseSampler):
    """Wraps `inner`; every sampled candidate has `cost(params) <= budget` unless even the shrunk
    cheapest draw is over it (then the search rejects it, as without the wrapper).

    Args:
        inner: the sampler that proposes (TPE, NSGA-II, random).
        space: the search space (its choices are the params).
        cost: params -> the cost the budget bounds (e.g. analytic MACs of the net they build).
        budget: the hard budget, in the cost's unit.
        attempts: repair draws after the inner proposal.
        seed: seed of the repair draws.
    """

    def __init__(self, inner: optuna.samplers.BaseSampler, space: SearchSpace,
                 cost: Callable[[dict[str, Any]], float], budget: float, attempts: int = 256,
                 seed: Optional[int] = None) -> None:
        self.inner, self.cost, self.budget, self.attempts = inner, cost, float(budget), attempts
        self.distributions = space_distributions(space)
        self.names = list(self.distributions)
        self._rng = np.random.default_rng(seed)
        self.draws: list[int] = []  # draws each sampled trial took (1: the proposal fitted)
        self.shrunk = 0  # samples that fitted only once shrunk
        self.unfit = 0  # samples still over budget (the search rejects them)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self._rng = np.random.default_rng()

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self.distributions)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        # a trial enqueued with some params fixed is drawn for too; Optuna gives those precedence
        proposal = self._propose(study, trial)
        chosen, draws, cost = self.repair(proposal)
        self.draws.append(draws)
        self.unfit += cost > self.budget
        return chosen

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Optional[Sequence[float]]) -> None:
        self.inner.after_trial(study, trial, state, values)

    def _propose(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        """The inner sampler's values for every choice: its relative ones (NSGA-II's crossover),
        then its independent ones (TPE's, random) for the rest."""
        relative = self.inner.infer_relative_search_space(study, trial)
        # called even with an empty space: NSGA-II stamps the trial's generation there
        params = dict(self.inner.sample_relative(study, trial, relative))
        for name, dist in self.distributions.items():
            if name not in params:
                params[name] = self.inner.sample_independent(study, trial, name, dist)
        return params

    def repair(self, proposal: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
        """(params, draws taken, their cost): the proposal if it fits, else the first repair draw
        that does, else the cheapest draw seen, shrunk (`shrink`)."""
        best, best_cost = proposal, self.cost(proposal)
        if best_cost <= self.budget:
            return proposal, 1, best_cost
        for attempt in range(1, self.attempts + 1):
            p_redraw = min(1.0, 0.125 + attempt / self.attempts)
            draw = dict(proposal)
            for name in self.names:
                if self._rng.random() < p_redraw:
                    choices = self.distributions[name].choices
                    draw[name] = choices[int(self._rng.integers(len(choices)))]
            cost = self.cost(draw)
            if cost <= self.budget:
                return draw, attempt + 1, cost
            if cost < best_cost:
                best, best_cost = draw, cost
        shrunk, cost = self.shrink(best, best_cost)
        self.shrunk += cost <= self.budget
        return shrunk, self.attempts + 1, cost

    def shrink(self, params: dict[str, Any], cost: float) -> tuple[dict[str, Any], float]:
        """The cheapest draw made to fit when random redraws did not (a budget near the space's
        smallest net): choices in random order, each set to its cheapest value, until it fits;
        if even that does not, the cheapest net found (the search rejects it). Returns it and its cost."""
        params = dict(params)
        for index in self._rng.permutation(len(self.names)):
            name = self.names[int(index)]
            options = [{**params, name: value} for value in self.distributions[name].choices]
            costs = [self.cost(option) for option in options]
            cheapest = int(np.argmin(costs))
            if costs[cheapest] < cost:
                params, cost = options[cheapest], costs[cheapest]
            if cost <= self.budget:
                break
        return params, cost

    def summary(self) -> str:
        """One line: how many samples fitted the budget as proposed, after redraws, or not at all."""
        n, failed, shrunk = len(self.draws), self.unfit, self.shrunk
        first = sum(d == 1 for d in self.draws)
        return (f"budget-aware sampling: {n} samples, {first} within budget as proposed, "
                f"{n - first - shrunk - failed} after redraws (mean {sum(self.draws) / n:.1f} draws), "
                f"{shrunk} shrunk after {self.attempts} redraws, {failed} still over budget")
