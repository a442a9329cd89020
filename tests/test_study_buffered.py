"""A buffered study (nas.study.buffered): cheap trials kept in memory, appended to the journal
in batches, with the same numbers, values and attributes."""
from __future__ import annotations

from pathlib import Path

import optuna

from nas.study import StudyPlan, buffered
from nas.study.storage import make_storage


def _plan(tmp_path: Path) -> StudyPlan:
    return StudyPlan(out=tmp_path, name="s", storage=None, settings={}, resumable=(), settings_file="x.yaml",
                     what="search")


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_int("x", 0, 100)
    trial.set_user_attr("double", 2 * x)
    return float(x)


def _reload(plan: StudyPlan) -> optuna.Study:
    return optuna.load_study(study_name=plan.name, storage=make_storage(None, plan.out))


def test_buffered_trials_reach_the_journal_in_batches_with_their_numbers(tmp_path):
    plan = _plan(tmp_path)
    study = optuna.create_study(study_name=plan.name, storage=plan.storage_object())
    study.set_user_attr("objective", "x")
    study.optimize(_objective, n_trials=3)  # trials stored one by one before
    seen_in_journal = []
    with buffered(study, plan, every=10) as (memory, flush):
        assert memory is not study and memory.user_attrs == {"objective": "x"} and len(memory.trials) == 3

        def watch(s, t):
            flush(s, t)
            seen_in_journal.append(len(_reload(plan).trials))

        memory.optimize(_objective, n_trials=25, callbacks=[watch])
    assert seen_in_journal[5] == 3 and seen_in_journal[9] == 13 and seen_in_journal[19] == 23
    stored = _reload(plan).trials
    assert [t.number for t in stored] == list(range(28))
    assert [t.params for t in stored] == [t.params for t in memory.trials]
    assert all(t.user_attrs["double"] == 2 * t.params["x"] for t in stored)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in stored)


def test_buffered_flushes_on_an_exception(tmp_path):
    plan = _plan(tmp_path)
    study = optuna.create_study(study_name=plan.name, storage=plan.storage_object())

    def fails_at_seven(trial):
        if trial.number == 7:
            raise KeyboardInterrupt
        return _objective(trial)

    try:
        with buffered(study, plan, every=100) as (memory, flush):
            memory.optimize(fails_at_seven, n_trials=20, callbacks=[flush])
    except KeyboardInterrupt:
        pass
    stored = _reload(plan).trials
    assert len(stored) >= 7 and all(t.state.is_finished() for t in stored)


def test_a_study_with_a_queued_trial_is_not_buffered(tmp_path):
    plan = _plan(tmp_path)
    study = optuna.create_study(study_name=plan.name, storage=plan.storage_object())
    study.enqueue_trial({"x": 5})
    with buffered(study, plan) as (active, _flush):
        assert active is study
