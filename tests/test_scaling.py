import re
import subprocess
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from nas.cli import main
from nas.counting import analytic_macs
from nas.presets import load_preset
from nas.search.space import load_space
from scaling import CoefficientError, Coefficients, admissible_grid, emit_compound, parse_phis
from scaling.emit import dropout_for, scaled_table
from scaling.single import _candidates, parse_targets, scale_single
from test_models import OFFICIAL
from conftest import ROOT, journal_storage, kill_mid_study

PAPER = Coefficients(1.2, 1.1, 1.15)


def test_paper_emission_reproduces_official_parameter_counts(tmp_path, capsys):
    assert main(["scale", "emit", "--base", "efficientnet-b0", "--paper", "--phi", "1..7",
                 "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "scaled.csv")
    for _, row in table.iterrows():
        assert row["params"] == OFFICIAL[row["name"]][0]
        assert row["blocks"] == OFFICIAL[row["name"]][1]
        assert load_preset(row["name"]).to_dict() == yaml.safe_load((tmp_path / f"{row['name']}.yaml").read_text())
    assert "efficientnet-b7" in capsys.readouterr().out


def test_compound_emission_tracks_the_formula(tmp_path):
    b0 = load_preset("efficientnet-b0")
    assert PAPER.factor == pytest.approx(1.92, abs=0.001)
    table = scaled_table(b0, emit_compound(b0, PAPER, list(range(1, 8))), PAPER.factor)
    ratios = table["realised_ratio"].to_numpy()
    assert np.all(np.diff(ratios) > 0)
    # rounding (channels to 8, ceil of repeats, resolution to 8 px) bends but does not break 1.92^phi
    deviation = ratios / PAPER.factor ** np.arange(1, 8)
    assert np.all((deviation > 0.9) & (deviation < 1.35)), deviation
    assert ratios[0] == pytest.approx(2.23, abs=0.01)  # the known phi = 1 realisation
    assert np.allclose(table["deviation_vs_formula_pct"], (deviation - 1) * 100, atol=0.01)
    assert list(table["resolution"]) == [256, 296, 344, 392, 448, 520, 592]
    assert list(table["dropout"]) == [0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]


def test_fractional_and_negative_phi_give_smaller_and_in_between_nets():
    b0 = load_preset("efficientnet-b0")
    models = emit_compound(b0, PAPER, parse_phis("-2,-1,0.5"))
    macs = [analytic_macs(m.spec) for m in models]
    assert macs[0] < macs[1] < analytic_macs(b0) < macs[2]
    assert models[0].resolution < 224 and models[0].dropout < 0.2
    assert parse_phis("1..3") == [1, 2, 3] and parse_phis("-1..1") == [-1, 0, 1]
    with pytest.raises(CoefficientError, match="cannot read --phi"):
        parse_phis("1-3")


def test_admissible_grid_contains_the_paper_point():
    points = admissible_grid()
    assert PAPER.as_tuple() in [p.as_tuple() for p in points]
    assert all(min(p.as_tuple()) >= 1 and abs(p.factor - 2) <= 0.1 + 1e-9 for p in points)
    assert len(points) > 50
    closest = admissible_grid(closest=5)
    assert [p.as_tuple() for p in closest] == [p.as_tuple() for p in points[:5]]
    assert all(abs(a.factor - 2) <= abs(b.factor - 2) for a, b in zip(points, points[1:]))


@pytest.mark.parametrize("args, message", [
    (["--coefficients", "0.9,1.1,1.15"], "alpha = 0.9 must be a number >= 1"),
    (["--coefficients", "1.2,1.1"], "cannot read coefficients '1.2,1.1'"),
    (["--coefficients", "1.5,1.2,1.2", "--strict"], "alpha*beta^2*gamma^2 = 3.1104 is outside 2 +- 0.1"),
    (["--paper", "--phi", "8"], "--paper knows phi = 0..7 only"),
])
def test_invalid_coefficients_are_refused(tmp_path, capsys, args, message):
    assert main(["scale", "emit", "--base", "efficientnet-b0", *args, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_strict_accepts_the_paper_point_and_non_strict_any(tmp_path):
    assert main(["scale", "emit", "--base", "efficientnet-b0-cifar", "--coefficients", "1.2,1.1,1.15",
                 "--strict", "--phi", "1,2", "--out", str(tmp_path / "a")]) == 0
    assert main(["scale", "emit", "--base", "efficientnet-b0-cifar", "--coefficients", "1.5,1.2,1.2",
                 "--phi", "1", "--out", str(tmp_path / "b")]) == 0


def test_dropout_schedule():
    assert [dropout_for(p, 0.2) for p in range(8)] == [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]
    assert dropout_for(9, 0.2) == 0.5 and dropout_for(-2, 0.2) == pytest.approx(0.1)
    assert dropout_for(2.5, 0.2) == pytest.approx(0.3)


@pytest.mark.parametrize("dimension", ["depth", "width", "resolution"])
def test_single_dimension_lands_on_the_closest_achievable_macs(dimension):
    base = load_preset("efficientnet-b0-cifar")
    base_macs = analytic_macs(base)
    targets = parse_targets("2x,4x,0.5x")
    results = scale_single(base, dimension, targets)
    achievable = sorted({analytic_macs(s) / base_macs for _, s in _candidates(base, dimension, 4.0)})
    for r in results:
        assert r.below <= r.target_ratio <= r.above
        # per-stage rounding (width, depth) lands at least as near as any uniform multiplier
        assert abs(r.realised_ratio - r.target_ratio) <= min(abs(a - r.target_ratio) for a in achievable) + 1e-12
        assert analytic_macs(r.spec) / base_macs == pytest.approx(r.realised_ratio)
        changed = {"depth": r.spec.blocks != base.blocks, "width": r.spec.head.channels != base.head.channels,
                   "resolution": r.spec.resolution != base.resolution}
        assert changed[dimension] and sum(changed.values()) == 1
    # an independent, coarser sweep never lands closer than what was chosen
    for m in np.arange(0.3, 3.0, 0.037):
        from nas.rounding import round_resolution, scale_spec
        probe = (base.replace(resolution=round_resolution(base.resolution * m)) if dimension == "resolution"
                 else scale_spec(base, **{dimension: float(m)}))
        ratio = analytic_macs(probe) / base_macs
        for r in results:
            assert abs(r.realised_ratio - r.target_ratio) <= abs(ratio - r.target_ratio) + 1e-12


def test_single_cli(tmp_path, capsys):
    assert main(["scale", "single", "--base", "efficientnet-b0-cifar", "--dimension", "width",
                 "--targets", "2x,4x", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "single.csv")
    assert list(table["target"]) == ["2x", "4x"] and "nearest below" in table.columns
    assert list(table["within 2 %"]) == ["yes", "yes"]  # per-stage width rounding reaches both
    assert main(["scale", "single", "--base", "efficientnet-b0-cifar", "--dimension", "width",
                 "--targets", "two", "--out", str(tmp_path)]) == 2


def _grid_args(out, base):
    return ["scale", "grid", "--base", str(base), "--dataset", "digits", "--recipe", "smoke",
            "--closest", "2", "--device", "cpu", "--out", str(out)]


@pytest.mark.slow
def test_small_grid_end_to_end_resumes_after_a_kill(tmp_path):
    space = load_space("tiny")
    base = space.to_spec(dict(space.baselines)["tiny-mbconv"], num_classes=10, name="tiny-mbconv")
    base_path = base.save(tmp_path / "base.yaml")
    out = tmp_path / "grid"
    proc = subprocess.Popen([sys.executable, "-m", "nas", *_grid_args(out, base_path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage = lambda: journal_storage(out / "study.journal")  # noqa: E731
    done = kill_mid_study(proc, out / "study.journal", "grid-grid", finished=1)
    assert done, "the grid did not get going"
    assert main(_grid_args(out, base_path)) == 0
    grid = pd.read_csv(out / "grid.csv")
    assert len(grid) == 2 and grid["point"].is_unique
    assert list(grid["rank"]) == [1, 2] and grid["val_acc"].is_monotonic_decreasing
    assert (grid["realised_ratio"] > 1).all()
    chosen = yaml.safe_load((out / "best_coefficients.yaml").read_text())
    assert (chosen["alpha"], chosen["beta"], chosen["gamma"]) == tuple(grid.iloc[0][["alpha", "beta", "gamma"]])
    assert (out / "grid.png").is_file()
    before = len(optuna.load_study(study_name="grid-grid", storage=storage()).trials)
    assert main(_grid_args(out, base_path)) == 0  # finished: runs nothing more
    assert len(optuna.load_study(study_name="grid-grid", storage=storage()).trials) == before
    # emission straight from the grid's choice
    assert main(["scale", "emit", "--base", str(base_path), "--from", str(out / "best_coefficients.yaml"),
                 "--phi", "1,2", "--out", str(tmp_path / "scaled")]) == 0
    assert len(pd.read_csv(tmp_path / "scaled" / "scaled.csv")) == 2


@pytest.mark.slow
def test_pipeline_end_to_end_and_rerun_does_nothing_twice(tmp_path, capsys):
    out = tmp_path / "pipe"
    # the one real pipeline, kept small: two short epochs on a fifth of the data, one grid seed,
    # one phi (one study target), two fidelity nets
    recipe = tmp_path / "flash.yaml"
    recipe.write_text("name: flash\nepochs: 2\nbatch_size: 64\nlr: 0.1\nbn_momentum: 0.1\ntrain_fraction: 0.2\n")
    args = ["pipeline", "--space", "tiny", "--dataset", "digits", "--target-macs", "1.5M", "--trials", "4",
            "--recipe", str(recipe), "--grid-closest", "2", "--grid-seeds", "1", "--phi", "1", "--fidelity-top", "1",
            "--fidelity-random", "1", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    first = capsys.readouterr().out
    for path in ("report.md", "scaling.png", "models.csv", "search/best.yaml", "search/trials.csv",
                 "grid/grid.csv", "grid/best_coefficients.yaml", "scaled/scaled.csv", "train/runs.csv"):
        assert (out / path).is_file(), path
    models = pd.read_csv(out / "models.csv")
    assert len(models) == 1 + 1 + 2  # base, phi 1, two hand-designed references
    assert models["test_acc"].notna().all()
    assert "| model | MACs (M)" in first
    study = pd.read_csv(out / "study" / "study.csv").set_index("strategy")
    assert (study.drop(index="base")["realised_ratio"] > 1.5).all()  # grown nets, not the base again
    trained = first[first.index("] train\n"):first.index("] study\n")]  # the training step alone
    assert re.search(r"epoch 2/2 .*img/s.*ETA", trained), "the training step shows epoch progress"
    stamps = {p: p.stat().st_mtime_ns for p in (out / "train").rglob("checkpoint.pt")}
    assert len(stamps) == 4
    assert main(args) == 0
    second = capsys.readouterr().out
    from scaling.pipeline import STEPS
    assert second.count("done earlier, skipped") == len(STEPS)  # every step, none redone
    assert {p: p.stat().st_mtime_ns for p in (out / "train").rglob("checkpoint.pt")} == stamps
    args[args.index("--trials") + 1] = "5"
    assert main(args) == 2
    assert "other settings (trials differ)" in capsys.readouterr().err
