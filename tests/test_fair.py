"""Fair for real (issue 18): equal cost within 2 %, paired intervals that include the test
images, Holm over a report's claims, a grid that trains every point, fidelity that refuses
to state a tau from too few candidates. Arithmetic only: nothing here trains."""
import math

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy import stats as sps

from nas.claims import UNEQUAL, adjust, holm_summary, mark_costs
from nas.counting import analytic_macs
from nas.fidelity import MIN_CANDIDATES, agreement_of, spread_ranks
from nas.outcomes import pack, unpack
from nas.paired import holm, paired_variance
from nas.presets import preset_names, resolve_spec
from nas.search.space import load_space
from nas.spec import StageSpec
from nas.stats import TOO_FEW, paired_difference, rank_agreement, summarise_seeds, verdict_markdown
from scaling.coefficients import Coefficients, admissible_grid
from nas.study.queue import enqueue_missing
from scaling.grid import POINT_KEY, GridConfig, grow, plan_points
from scaling.matching import MATCH_TOLERANCE
from scaling.single import match_to_macs
from scaling.study import compound_options, plan_study, study_comparisons

DIMS = ("width", "resolution", "depth")


# ---- 1. equal cost within 2 % --------------------------------------------------------------
@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_matches_half_and_double_within_2_pct_or_is_marked_unequal(preset):
    spec = resolve_spec(preset)
    base = analytic_macs(spec)
    for dim in DIMS:
        for ratio in (0.5, 2.0):
            target = int(base * ratio)
            m = match_to_macs(spec, target, dim)
            gap = analytic_macs(m.spec) / target - 1
            assert m.matched == (abs(gap) <= MATCH_TOLERANCE)
            if dim == "width":  # per-stage rounding reaches every preset at 0.5x and 2x
                assert m.matched, f"{preset} width {ratio}x: {gap:+.1%}"
            if not m.matched:  # the nearest achievable nets on both sides are outside 2 % as well
                assert m.below * base / target < 1 - MATCH_TOLERANCE or m.above * base / target > 1 + MATCH_TOLERANCE
                row = pd.DataFrame([{"model": "ref", "macs": target, "verdict": "reference"},
                                    {"model": m.spec.name, "macs": analytic_macs(m.spec), "verdict": "x"}])
                assert mark_costs(row, target)["verdict"].tolist() == ["reference", UNEQUAL]


def test_width_matching_beats_uniform_rounding_on_a_small_net():
    """The issue's case: uniform multipliers rounded to 8 channels jump by 20-50 % at 16-40
    channels; per-stage rounding lands within 2 %."""
    space = load_space("tiny")
    sep = space.to_spec(dict(space.baselines)["tiny-separable"], num_classes=10, name="sep")
    mb = space.to_spec(dict(space.baselines)["tiny-mbconv"], num_classes=10, name="mb")
    m = match_to_macs(sep, analytic_macs(mb), "width")
    assert m.matched and abs(m.error_pct) <= 2
    assert all(s.out % 8 == 0 for s in m.spec.stages) and m.spec.stem.channels % 8 == 0


def _evidence_base():
    """The 2026-11-28 evidence run's searched base: a fixed net (results/ may be re-run)."""
    stages = ("ds_r1_k3_s1_e1_c24_se0.25 ds_r1_k5_s2_e1_c32 mbconv_r3_k3_s2_e1_c48 ds_r3_k3_s2_e1_c104 "
              "ds_r2_k5_s1_e1_c120_se0.25")
    return load_space("cifar16").base.replace(name="base", num_classes=10,
                                              stages=tuple(StageSpec.from_string(w) for w in stages.split()))


def test_scaling_study_four_strategies_within_2_pct_on_a_16px_base():
    base = _evidence_base()
    assert base.resolution == 16
    for c, targets in ((Coefficients(1.0, 1.05, 1.3), (2.0, 4.0)), (Coefficients(1.4, 1.1, 1.05), (2.0,))):
        nets = plan_study(base, c, list(targets))  # the evidence run's coefficients, and another
        for target in targets:
            group = [n for n in nets if n.target == target]
            compound = next(n for n in group if n.strategy == "compound")
            assert {n.strategy for n in group} == {"compound", "depth", "width", "resolution"}
            assert abs(compound.realised / target - 1) <= 0.1
            for n in group:
                assert abs(analytic_macs(n.spec) / analytic_macs(compound.spec) - 1) <= MATCH_TOLERANCE, n


def test_study_never_stands_the_base_in_for_a_target_it_is_far_from():
    """A three-stage net with single-block stages: any phi > 0 doubles a stage's depth (ceil),
    so the distinct compound nets near 2x are few and phi = 0 (the base, ratio 1) is among the
    six nearest. Its single-dimension twins are the base too, a perfect but worthless match:
    the study must take a net near 2x even when its twins cannot all match it."""
    stages = "conv_r1_k5_s1_e1_c16_se0.25 mbconv_r1_k5_s2_e1_c32 mbconv_r2_k3_s2_e1_c32_se0.25"
    base = load_space("tiny").base.replace(name="small", num_classes=10,
                                           stages=tuple(StageSpec.from_string(w) for w in stages.split()))
    c = Coefficients(1.65, 1.1, 1.0)
    assert any(o[0] == 0.0 for o in compound_options(base, c, 2.0)[:6])  # the trap is there
    nets = plan_study(base, c, [2.0])
    compound = next(n for n in nets if n.strategy == "compound")
    assert abs(compound.realised / 2.0 - 1) <= 0.1 and compound.setting != "phi=0"
    for n in nets[1:]:
        assert analytic_macs(n.spec) > 1.5 * analytic_macs(base), n


def test_study_marks_a_strategy_the_rounding_cannot_match_as_unequal_cost():
    """At 16 px one pixel moves MACs by ~70 % (17 px: feature maps 9, 5, 3 instead of 8, 4, 2);
    with these coefficients no compound net near 2x has a resolution-only twin within 2 %."""
    base = _evidence_base()
    nets = plan_study(base, Coefficients(1.2, 1.1, 1.15), [2.0])
    table = pd.DataFrame([{"strategy": n.strategy, "target": n.target, "model": n.spec.name,
                           "macs": analytic_macs(n.spec)} for n in nets])
    noise = np.random.default_rng(3).normal(0, 0.004, (len(nets), 3))
    runs = pd.DataFrame([{"model": n.spec.name, "seed": s, "test_acc": 0.5 + 0.02 * i + noise[i, s]}
                         for i, n in enumerate(nets) for s in range(3)])
    rows = {r["claim"]: r for r in adjust(study_comparisons(table, runs))}
    assert abs(rows["compound vs resolution-only"]["gap_pct"]) > 2
    assert rows["compound vs resolution-only"]["verdict"] == UNEQUAL
    assert abs(rows["compound vs width-only"]["gap_pct"]) <= 2
    assert rows["compound vs width-only"]["family"] == 2  # depth and width are the claims


# ---- 2. per-image outcomes and the paired interval -----------------------------------------
def test_outcomes_pack_round_trip_and_old_results():
    flags = np.random.default_rng(0).random(10_001) < 0.7
    text = pack(flags)
    assert len(text) < 1700 and np.array_equal(unpack(text), flags)
    assert unpack(None) is None and unpack(float("nan")) is None and unpack("") is None


def _hand_decomposition(a_acc, b_acc, a_flags, b_flags):
    """The variance decomposition written out with plain sums."""
    n, m = len(a_acc), len(a_flags[0])
    d = [b - a for a, b in zip(a_acc, b_acc)]
    dbar = sum(d) / n
    vs = sum((x - dbar) ** 2 for x in d) / (n - 1) / n
    e = [sum(int(b_flags[s][i]) - int(a_flags[s][i]) for s in range(n)) / n for i in range(m)]
    ebar = sum(e) / m
    vi = sum((x - ebar) ** 2 for x in e) / (m - 1) / m
    df = n - 1
    half = sps.t.ppf(0.975, df) * math.sqrt(vs + vi)
    p = 2 * sps.t.sf(abs(dbar) / math.sqrt(vs + vi), df)
    return dbar, half, p, math.sqrt(vi)


def test_paired_interval_includes_the_test_images_against_a_hand_computation():
    rng = np.random.default_rng(1)
    truth = rng.random(400) < 0.8
    a_flags = [truth ^ (rng.random(400) < 0.10) for _ in range(3)]
    b_flags = [truth ^ (rng.random(400) < 0.07) for _ in range(3)]
    a_acc = [f.mean() for f in a_flags]
    b_acc = [f.mean() for f in b_flags]
    seeds = [0, 1, 2]
    c = paired_difference(dict(zip(seeds, a_acc)), dict(zip(seeds, b_acc)), "A", "B",
                          a_outcomes=dict(zip(seeds, a_flags)), b_outcomes=dict(zip(seeds, b_flags)))
    mean, half, p, image_se = _hand_decomposition(a_acc, b_acc, a_flags, b_flags)
    assert c.mean == pytest.approx(mean) and c.half_width == pytest.approx(half)
    assert c.p_value == pytest.approx(p) and c.image_se == pytest.approx(image_se)
    assert c.images == 400 and 0 < c.discordant < 400
    seed_only = paired_difference(dict(zip(seeds, a_acc)), dict(zip(seeds, b_acc)))
    assert seed_only.images == 0 and seed_only.half_width < c.half_width  # images widen it


def test_one_image_disagreement_variance_matches_mcnemar():
    """One seed pair's image component is the discordant-image variance: with k images B gets
    right and A wrong and l the other way, V_image = (k + l - (k - l)^2 / m) / (m (m - 1))."""
    m, k, l_ = 1000, 60, 30
    a = np.zeros(m, bool)
    b = np.zeros(m, bool)
    b[:k] = True
    a[k:k + l_] = True
    pv = paired_variance([0.03, 0.03], np.vstack([a, a]), np.vstack([b, b]))
    assert pv.image_var == pytest.approx((k + l_ - (k - l_) ** 2 / m) / (m * (m - 1)))
    assert pv.discordant == k + l_


def test_zero_width_interval_is_n_too_small():
    same = {0: 0.5, 1: 0.6, 2: 0.7}
    better = {s: v + 0.01 for s, v in same.items()}
    assert paired_difference(same, better).verdict == TOO_FEW


def test_old_runs_fall_back_to_seed_only_and_say_so():
    runs = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2,
                         "test_acc": [0.80, 0.82, 0.81, 0.85, 0.86, 0.88]})
    summary = summarise_seeds(runs)
    assert summary.loc[1, "images"] == 0 and math.isnan(summary.loc[1, "image_se"])
    from nas.compare import markdown
    text = markdown(summary.assign(test_images=359))
    assert "seed-only" in text and "binomial SE" in text


# ---- 3. Holm --------------------------------------------------------------------------------
def test_holm_against_a_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005, None]
    # sorted: 0.005 (x4) = 0.02, 0.01 (x3) = 0.03, 0.03 (x2) = 0.06, 0.04 (x1) -> max(0.06, 0.04)
    adjusted = holm(p)
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and adjusted[4] is None


def test_holm_turns_raw_resolved_into_not_resolved_and_counts_the_family():
    rows = [{"verdict": "resolved: B better by 1.00 ± 0.90 pts", "p": 0.04, "diff": 0.01, "ci": 0.009,
             "a_name": "A", "b_name": "B"},
            {"verdict": "resolved: C better by 3.00 ± 1.00 pts", "p": 0.001, "diff": 0.03, "ci": 0.01,
             "a_name": "A", "b_name": "C"},
            {"verdict": UNEQUAL, "p": 0.0001, "diff": 0.05, "ci": 0.01, "a_name": "A", "b_name": "D"},
            {"verdict": TOO_FEW, "p": None, "diff": 0.05, "ci": None, "a_name": "A", "b_name": "E"}]
    done = adjust(rows)
    assert [d["family"] for d in done] == [2] * 4
    assert done[0]["p_holm"] == pytest.approx(0.04)  # max(0.001 x 2, 0.04 x 1)
    assert done[1]["p_holm"] == pytest.approx(0.002) and done[1]["verdict"].startswith("resolved: C")
    assert done[0]["verdict"].startswith("resolved: B")  # 0.04 x 1 after the first: still < 0.05
    assert done[2]["verdict"] == UNEQUAL and done[2]["p_holm"] is None  # no claim, not counted
    assert done[3]["verdict"] == TOO_FEW
    rows[0]["p"] = 0.03
    rows[1]["p"] = 0.04  # now 0.03 x 2 = 0.06: neither survives
    assert [d["verdict"] for d in adjust(rows)[:2]] == ["not resolved at this budget"] * 2


def test_compare_table_marks_unequal_cost_and_holm_adjusts():
    runs = pd.DataFrame({"model": ["ref"] * 3 + ["near"] * 3 + ["far"] * 3, "seed": [0, 1, 2] * 3,
                         "macs": [100] * 3 + [101] * 3 + [130] * 3,
                         "test_acc": [0.80, 0.81, 0.82, 0.85, 0.865, 0.87, 0.90, 0.91, 0.92]})
    summary = holm_summary(mark_costs(summarise_seeds(runs), 100))
    assert summary["verdict"].tolist()[2] == UNEQUAL and summary["family"].max() == 1
    assert summary.loc[1, "gap_pct"] == pytest.approx(1.0) and summary.loc[2, "gap_pct"] == pytest.approx(30.0)
    md = verdict_markdown(summary, "test acc")
    assert "MACs gap %" in md and "p (Holm)" in md and "| +30.0 |" in md and "unequal cost" in md


# ---- 4. grid and fidelity ---------------------------------------------------------------------
def test_grid_trains_every_distinct_network_within_tolerance():
    space = load_space("tiny")
    base = space.to_spec(dict(space.baselines)["tiny-mbconv"], num_classes=10, name="tiny-mbconv")
    config = GridConfig(base="-", dataset="digits", out="-")
    assert config.tolerance == pytest.approx(0.06)  # 3 % of 2x by default
    points = plan_points(base, config)
    inside = {}
    for c in admissible_grid(config.step, config.nominal_window, config.alpha_max, config.beta_max,
                             config.gamma_max):
        spec = grow(base, c)
        if abs(analytic_macs(spec) / analytic_macs(base) - 2) <= config.tolerance:
            inside.setdefault(spec.canonical_string(), []).append(c)
    assert len(points) == len(inside)  # one point per distinct network, none left out
    assert {p.spec.canonical_string() for p in points} == set(inside)
    for p in points:  # coefficient sets that build the same network are its aliases
        assert len(p.aliases) == len(inside[p.spec.canonical_string()]) - 1
    study = optuna.create_study()
    assert enqueue_missing(study, POINT_KEY, len(points), lambda i: {"point": i}) == len(points)  # all queued


def test_fidelity_spreads_candidates_and_refuses_a_tau_from_too_few():
    assert spread_ranks(20, 10) == [0, 2, 4, 6, 8, 11, 13, 15, 17, 19]
    assert spread_ranks(5, 10) == [0, 1, 2, 3, 4]
    small = pd.DataFrame({"proxy_val_acc": np.arange(MIN_CANDIDATES - 1), "long_acc": np.arange(MIN_CANDIDATES - 1)})
    few = agreement_of(small)
    assert few["tau"] is None and few["verdict"].startswith("too few to tell")
    rng = np.random.default_rng(0)
    x = rng.random(10)
    table = pd.DataFrame({"proxy_val_acc": x, "long_acc": x + rng.normal(0, 0.05, 10)})
    got = agreement_of(table)
    assert got["tau"] == pytest.approx(rank_agreement(table["proxy_val_acc"], table["long_acc"]).tau)
    assert 0 < got["p_perm"] < 0.05 and got["verdict"].startswith("usable proxy")
    shuffled = agreement_of(table.assign(long_acc=rng.permutation(table["long_acc"].to_numpy())))
    assert shuffled["verdict"].startswith("usable proxy") == (shuffled["tau"] >= 0.5 and shuffled["p_perm"] < 0.05)


def test_grid_names_a_best_only_when_resolved_and_pairs_validation_images():
    from scaling.grid_report import PICK_RULE, choice_words, winner_verdict
    rng = np.random.default_rng(5)
    truth = rng.random(300) < 0.8
    flags = {name: [truth ^ (rng.random(300) < rate) for _ in range(3)] for name, rate in (("b", 0.05), ("s", 0.08))}
    df = pd.DataFrame([{"alpha": 1.0, "beta": 1.1, "gamma": 1.2, "val_accs": [f.mean() for f in flags[k]],
                        "val_outcomes": [pack(f) for f in flags[k]]} for k in ("b", "s")])
    got = winner_verdict(df)
    by_hand = paired_difference(dict(enumerate(df.loc[1, "val_accs"])), dict(enumerate(df.loc[0, "val_accs"])),
                                a_outcomes=dict(enumerate(flags["s"])), b_outcomes=dict(enumerate(flags["b"])))
    assert got["ci95_pts"] == pytest.approx(round(by_hand.half_width * 100, 3)) and by_hand.images == 300
    assert got["resolved"] == by_hand.verdict.startswith("resolved")
    two_seeds = winner_verdict(df.assign(val_accs=[a[:2] for a in df["val_accs"]]))
    assert not two_seeds["resolved"] and choice_words(two_seeds).startswith("tie with the runner-up")
    assert PICK_RULE in choice_words(two_seeds)


def test_compound_that_builds_the_single_dimension_net_is_the_same_network_not_a_claim():
    import pandas as pd

    from scaling.study import study_comparisons

    table = pd.DataFrame([
        {"strategy": s, "target": 2.0, "model": m, "macs": 100, "arch": a}
        for s, m, a in (("compound", "c", "X"), ("depth", "d", "Y"), ("width", "w", "X"), ("resolution", "r", "Z"))])
    runs = pd.DataFrame([{"model": m, "seed": seed, "test_acc": 0.5 + 0.01 * seed + (0.02 if m == "d" else 0)}
                         for m in "cdwr" for seed in range(3)])
    rows = {r["claim"]: r for r in study_comparisons(table, runs)}
    assert rows["compound vs width-only"]["verdict"] == "the same network: the grid's coefficients scale width only"
    assert not rows["compound vs depth-only"]["verdict"].startswith("the same network")
    from nas.claims import adjust
    adjusted = adjust(list(rows.values()))
    assert all(r["p_holm"] is None for r in adjusted if r["claim"] == "compound vs width-only")
