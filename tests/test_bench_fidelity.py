"""`nas fidelity --bench`: evaluators ranked against a benchmark's ground truth."""
import json

import numpy as np
import pandas as pd
import pytest

from nas.bench.build import BenchConfig
from nas.bench.sample import plan_candidates
from nas.cli import main
from nas.evaluators import EvalScore, register_evaluator
from nas.evaluators.fidelity import macs_bands, rankable, within_band_tau
from nas.search.space import load_space

TRUTH: dict[str, float] = {}


class _Lookup:
    def __init__(self, name, sign):
        self.name, self.sign = name, sign

    def score(self, spec, dataset, split="val", seed=0):
        return EvalScore(self.sign * TRUTH[spec.name], 0.001)


register_evaluator("truth", lambda _arg, _dev: _Lookup("truth", 1), None, "test: the ground truth")
register_evaluator("reverse", lambda _arg, _dev: _Lookup("reverse", -1), None, "test: its reverse")


@pytest.fixture
def bench(tmp_path):
    """A benchmark folder as `nas bench build` leaves it, with made-up accuracies (no training)."""
    space = load_space("tiny")
    config = BenchConfig(space="tiny", dataset="digits", recipe="smoke", candidates=12, out=str(tmp_path))
    cands = plan_candidates(space, 10, 12, space.macs_range(10), 4, 2, 4, seed=0)
    rng = np.random.default_rng(0)
    rows = []
    for c in cands:
        for seed in range(c.seeds):
            rows.append({"candidate": c.name, "kind": c.kind, "stratum": c.stratum, "seed": seed,
                         "status": "trained", "macs": c.macs, "params": c.params, "latency_b1_ms": 1.0,
                         "val_acc": rng.uniform(0.3, 0.9), "test_acc": 0.5, "spec": json.dumps(c.spec.to_dict())})
    runs = pd.DataFrame(rows)
    TRUTH.clear()
    TRUTH.update(runs.groupby("candidate")["val_acc"].mean().to_dict())
    (tmp_path / "bench.yaml").write_text(__import__("yaml").safe_dump(config.to_dict()))
    runs.to_csv(tmp_path / "bench.csv", index=False)
    return tmp_path


def test_truth_ranks_at_tau_one_and_its_reverse_at_minus_one(bench, capsys):
    out = bench / "fid"
    assert main(["fidelity", "--bench", str(bench), "--evaluators", "truth,reverse",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out / "fidelity.csv").set_index("evaluator")
    assert table.loc["truth", "tau"] == pytest.approx(1) and table.loc["reverse", "tau"] == pytest.approx(-1)
    assert table.loc["truth", "rho"] == pytest.approx(1) and table.loc["truth", "tau_within_macs"] == pytest.approx(1)
    assert table.loc["truth", "top10_overlap"] == 1 and table.loc["reverse", "top10_overlap"] == 0
    assert table.loc["truth", "p_perm"] < 0.01 < 0.99 < table.loc["reverse", "p_perm"]
    assert len(table) == 3 and table.index[-1] == "ensemble(truth+reverse)"
    assert np.isnan(table.iloc[-1]["tau"]) and table.iloc[-1]["p_perm"] == 1  # their mean rank is constant
    assert {"tau_band0", "tau_band1", "tau_band2"} <= set(table.columns)  # 14 candidates: 3 bands
    assert table.loc["truth", "n"] == 14 and table.loc["truth", "tau_low"] == pytest.approx(1)
    assert (out / "fidelity.png").is_file() and "| truth | 1.00 |" in (out / "fidelity.md").read_text()
    assert len(pd.read_csv(out / "scores.csv")) == 2 * 14
    TRUTH.clear()  # a re-run reads the saved scores: scoring again would fail
    assert main(["fidelity", "--bench", str(bench), "--evaluators", "reverse", "--out", str(out)]) == 0
    assert pd.read_csv(out / "fidelity.csv")["tau"].tolist() == pytest.approx([-1])


def test_unknown_evaluator_is_one_line_and_nothing_is_written(bench, capsys):
    assert main(["fidelity", "--bench", str(bench), "--evaluators", "truth,synflw"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "synflw" in err and "zico" in err
    assert not (bench / "fidelity").exists()
    assert main(["fidelity"]) == 2 and "--bench" in capsys.readouterr().err


def test_dead_nets_rank_last_and_bands_pool_within_band_pairs():
    assert list(np.argsort(rankable([1.0, -np.inf, np.nan, np.inf, 0.5]))) [:2] in ([1, 2], [2, 1])
    assert np.argmax(rankable([1.0, np.inf, 3.0])) == 1
    band = macs_bands([1e6, 2e6, 3e6, 4e6, 5e6, 6e6, 7e6, 8e6, 9e6, 1e7, 2e7, 3e7])
    assert list(band) == [0] * 4 + [1] * 4 + [2] * 4
    x = np.arange(12.0)
    y = np.concatenate([np.arange(4.0)[::-1], np.arange(4.0)[::-1] + 4, np.arange(4.0)[::-1] + 8])
    per_band, pooled = within_band_tau(x, y, band)  # ordered across bands, reversed inside them
    assert pooled == pytest.approx(-1) and [b["tau"] for b in per_band] == pytest.approx([-1, -1, -1])
