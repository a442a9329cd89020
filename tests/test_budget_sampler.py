"""The hard-budget sampler (nas.search.budget_sampler) on real Optuna studies of a real space."""
import optuna
import pytest

from nas.costs import make_cost
from nas.search.budget_sampler import BudgetAwareSampler, space_distributions
from nas.search.space import load_space

SPACE = load_space("cifar16")
MACS = make_cost("macs")


def _macs(params):
    return MACS.of(SPACE.to_spec(params, 10))


def _study(sampler, n):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda trial: -abs(_macs(SPACE.suggest(trial)) - 0.7e6), n_trials=n)
    return study


def _trial_macs(trial):
    return _macs(SPACE.suggest(optuna.trial.FixedTrial(trial.params)))


@pytest.mark.parametrize("inner", [lambda: optuna.samplers.RandomSampler(seed=0),
                                   lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=5)])
def test_every_sample_is_within_the_budget(inner):
    sampler = BudgetAwareSampler(inner(), SPACE, _macs, 0.8e6, attempts=256, seed=0)
    study = _study(sampler, 40)
    assert all(_trial_macs(t) <= 0.8e6 for t in study.trials)
    assert sampler.unfit == 0 and len(sampler.draws) == 40
    assert max(sampler.draws) > 1  # some proposals were over the budget and redrawn


class _Recording(optuna.samplers.RandomSampler):
    """A random sampler that remembers what it proposed, per trial."""

    def __init__(self, seed):
        super().__init__(seed=seed)
        self.proposed = {}

    def sample_independent(self, study, trial, name, dist):
        value = super().sample_independent(study, trial, name, dist)
        self.proposed.setdefault(trial.number, {})[name] = value
        return value


def test_a_proposal_within_the_budget_is_kept_as_the_inner_sampler_made_it():
    inner = _Recording(seed=3)
    sampler = BudgetAwareSampler(inner, SPACE, _macs, 1e12, seed=0)  # no net exceeds this budget
    study = _study(sampler, 15)
    assert sampler.draws == [1] * 15
    for trial in study.trials:
        assert all(inner.proposed[trial.number][k] == v for k, v in trial.params.items())


def test_a_budget_near_the_smallest_net_is_met_by_shrinking():
    smallest, _ = SPACE.macs_range(10)
    budget = smallest * 1.05  # random redraws almost never land here
    sampler = BudgetAwareSampler(optuna.samplers.RandomSampler(seed=1), SPACE, _macs, budget, attempts=8, seed=0)
    study = _study(sampler, 5)
    assert all(_trial_macs(t) <= budget for t in study.trials)
    assert sampler.shrunk >= 1 and sampler.unfit == 0
    assert "shrunk after 8 redraws, 0 still over budget" in sampler.summary()


def test_a_budget_below_every_net_keeps_the_cheapest_and_counts_it():
    smallest, _ = SPACE.macs_range(10)
    sampler = BudgetAwareSampler(optuna.samplers.RandomSampler(seed=1), SPACE, _macs, 1.0, attempts=8, seed=0)
    study = _study(sampler, 3)
    assert sampler.unfit == 3 and sampler.shrunk == 0 and all(d == 9 for d in sampler.draws)
    assert [_trial_macs(t) for t in study.trials] == [smallest] * 3  # shrunk all the way
    assert "3 still over budget" in sampler.summary()


def test_distributions_name_every_choice_suggest_asks_for():
    names = set(SPACE.suggest(optuna.trial.FixedTrial(
        {k: d.choices[0] for k, d in space_distributions(SPACE).items()})))
    assert names <= set(space_distributions(SPACE))
