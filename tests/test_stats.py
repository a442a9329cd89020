import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

from nas.stats import (Comparison, Interval, binomial_se, noise_floor_line, paired_difference,
                       rank_agreement, summarise_seeds, t_interval, verdict_markdown)


def test_paired_interval_matches_a_hand_computation():
    a = {0: 0.900, 1: 0.880, 2: 0.910, 3: 0.870}
    b = {0: 0.915, 1: 0.890, 2: 0.930, 3: 0.880}
    d = np.array([0.015, 0.010, 0.020, 0.010])
    h = sp.t.ppf(0.975, 3) * d.std(ddof=1) / math.sqrt(4)
    c = paired_difference(a, b, "b0", "b1")
    assert isinstance(c, Comparison)
    assert c.n == 4 and c.seeds == (0, 1, 2, 3) and c.dropped == ()
    assert c.mean == pytest.approx(d.mean())
    assert c.sd == pytest.approx(d.std(ddof=1))
    assert c.half_width == pytest.approx(h)
    assert c.diffs[2] == pytest.approx(0.020)
    assert c.verdict == f"resolved: b1 better by {d.mean() * 100:.2f} ± {h * 100:.2f} pts"
    assert c.to_dict()["verdict"] == c.verdict


def test_t_interval():
    iv = t_interval([0.90, 0.91, 0.92])
    assert isinstance(iv, Interval)
    assert iv.mean == pytest.approx(0.91) and iv.n == 3
    assert iv.half_width == pytest.approx(4.302652729911275 * 0.01 / math.sqrt(3))
    assert iv.low < iv.mean < iv.high
    assert t_interval([0.5]).half_width is None and t_interval([0.5]).n == 1
    assert t_interval([]).n == 0
    assert t_interval([0.9, float("nan"), None, 0.8]).n == 2  # missing values are not counted
    assert set(iv.to_dict()) >= {"mean", "half_width", "n"}


def test_interval_containing_zero_is_not_resolved():
    a = {0: 0.90, 1: 0.90, 2: 0.90}
    b = {0: 0.93, 1: 0.88, 2: 0.91}  # d = +3, -2, +1 pts
    c = paired_difference(a, b)
    assert c.half_width > abs(c.mean)
    assert c.verdict == "not resolved at this budget"
    assert "better" not in c.verdict


def test_two_seeds_are_too_few_even_for_a_large_difference():
    c = paired_difference({0: 0.5, 1: 0.5}, {0: 0.9, 1: 0.91})
    assert c.n == 2 and c.verdict == "n too small"


def test_a_clear_difference_names_the_better_net_in_either_direction():
    a = {s: 0.90 + 0.01 * s for s in range(3)}
    better = {s: v + 0.05 + 0.001 * s for s, v in a.items()}
    assert paired_difference(a, better, "base", "wide").verdict.startswith("resolved: wide better by 5.10")
    worse = {s: v - 0.05 - 0.001 * s for s, v in a.items()}
    assert paired_difference(a, worse, "base", "thin").verdict.startswith("resolved: base better by 5.10")


def test_only_shared_finite_seeds_are_paired_and_the_rest_are_named():
    a = {0: 0.9, 1: 0.9, 2: 0.9, 3: 0.9, 4: 0.9}
    b = {0: 0.95, 1: 0.95, 2: 0.96, 4: float("nan"), 7: 0.99}
    c = paired_difference(a, b)
    assert c.seeds == (0, 1, 2) and c.n == 3
    assert set(c.dropped) == {3, 4, 7}


def test_identical_and_reversed_rankings():
    x = [0.61, 0.70, 0.55, 0.80, 0.66, 0.72]
    same = rank_agreement(x, [v * 2 + 1 for v in x], draws=300)  # any increasing map: same ranking
    assert same.tau == pytest.approx(1.0) and same.rho == pytest.approx(1.0)
    assert same.tau_low == pytest.approx(1.0) and same.rho_high == pytest.approx(1.0)
    rev = rank_agreement(x, [-v for v in x], draws=300)
    assert rev.tau == pytest.approx(-1.0) and rev.rho == pytest.approx(-1.0)
    assert rev.n == 6 and 0 < rev.draws_used <= 300


def test_bootstrap_intervals_contain_the_point_estimates():
    rng = np.random.default_rng(3)
    proxy = rng.normal(size=15)
    full = proxy + rng.normal(scale=0.8, size=15)
    r = rank_agreement(proxy, full, draws=500, seed=1)
    assert r.tau == pytest.approx(sp.kendalltau(proxy, full).statistic)
    assert r.rho == pytest.approx(sp.spearmanr(proxy, full).statistic)
    assert r.tau_low <= r.tau <= r.tau_high and r.rho_low <= r.rho <= r.rho_high
    assert r.tau_high - r.tau_low > 0.05  # 15 noisy candidates: a real spread
    assert rank_agreement(proxy, full, draws=500, seed=1) == r  # deterministic
    with pytest.raises(ValueError):
        rank_agreement([1, 2, 3], [1, 2])


def _runs() -> pd.DataFrame:
    acc = {"b0": [0.900, 0.880, 0.910], "wide": [0.930, 0.905, 0.945], "deep": [0.910, 0.870, 0.915]}
    rows = [{"model": m, "seed": s, "test_acc": v, "macs": 10e6 + i * 1e6, "params": 1000 * (i + 1)}
            for i, (m, vals) in enumerate(acc.items()) for s, v in enumerate(vals)]
    shuffled = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # seeds out of order
    return shuffled.sort_values("model", kind="stable", key=lambda c: c.map(list(acc).index))


def test_summarise_seeds_matches_hand_computation():
    s = summarise_seeds(_runs())
    assert list(s["model"]) == ["b0", "wide", "deep"]
    assert list(s["n"]) == [3, 3, 3] and list(s["n_paired"]) == [3, 3, 3]
    assert s["mean"].tolist() == pytest.approx([0.89666667, 0.92666667, 0.89833333])
    assert s.loc[0, "std"] == pytest.approx(np.std([0.900, 0.880, 0.910], ddof=1))
    d_wide = np.array([0.030, 0.025, 0.035])
    d_deep = np.array([0.010, -0.010, 0.005])
    assert s.loc[1, "diff"] == pytest.approx(d_wide.mean())
    assert s.loc[1, "ci"] == pytest.approx(sp.t.ppf(0.975, 2) * d_wide.std(ddof=1) / math.sqrt(3))
    assert s.loc[2, "diff"] == pytest.approx(d_deep.mean())
    assert s["verdict"].tolist() == ["reference", "resolved: wide better by 3.00 ± 1.24 pts",
                                     "not resolved at this budget"]
    assert math.isnan(s.loc[0, "diff"])
    assert s.loc[1, "macs"] == 11e6 and s.loc[2, "params"] == 3000


def test_summarise_seeds_with_another_reference_and_bad_input():
    s = summarise_seeds(_runs(), reference="wide")
    assert s.set_index("model").loc["wide", "verdict"] == "reference"
    assert s.set_index("model").loc["b0", "verdict"].startswith("resolved: wide better by 3.00")
    with pytest.raises(ValueError, match="reference"):
        summarise_seeds(_runs(), reference="nope")
    with pytest.raises(ValueError, match="repeat"):
        summarise_seeds(pd.concat([_runs(), _runs().head(1)]))
    with pytest.raises(ValueError, match="val_acc"):
        summarise_seeds(_runs(), metric="val_acc")


def test_verdict_markdown_table():
    md = verdict_markdown(summarise_seeds(_runs()), "test acc")
    lines = md.splitlines()
    assert lines[0].startswith("| model | MACs (M) | test acc % (mean ± std)") and "Δ vs b0" in lines[0]
    assert len(lines) == 2 + 3
    assert "| b0 | 10.00 | 89.67 ± 1.53 | 3 | — | 3 | - | reference |" == lines[2]
    assert "+3.00 ± 1.24" in lines[3] and "resolved: wide better" in lines[3]
    assert lines[4].endswith("not resolved at this budget |")


def test_binomial_noise_floor():
    assert binomial_se(0.9, 359) == pytest.approx(0.0158, abs=5e-5)
    assert binomial_se(0.65, 10_000) == pytest.approx(0.00477, abs=5e-5)
    assert noise_floor_line(0.9, 359) == "test split of 359 images: binomial SE ±1.58 pts at 90 %"
    assert noise_floor_line(0.65, 10_000) == "test split of 10,000 images: binomial SE ±0.48 pts at 65 %"
    with pytest.raises(ValueError):
        binomial_se(1.2, 10)
