"""The evidence command end to end on digits (its pipeline trains with the fake trainer,
tests/fakes.py: the script's plumbing, report and run.txt are under test here; the pipeline's
real run is tests/test_scaling.py's), and the GPU session script's commands checked against the
real parser (a dry run: the script cannot rot between GPU sessions)."""
import os
import shlex
import subprocess
import sys

import pandas as pd
import pytest

from nas.cli import build_parser
from conftest import ROOT
from fakes import fake_env


@pytest.mark.slow
def test_evidence_command_end_to_end_on_digits(tmp_path):
    out = tmp_path / "ev"
    env = {**fake_env(), "PY": sys.executable, "DATASET": "digits", "SPACE": "tiny", "PROXY": "smoke",
           "FINAL": "smoke", "TRIALS": "3", "SEEDS": "0", "GRID_CLOSEST": "1", "FIDELITY": "1",
           "DEVICE": "cpu", "OUT": str(out)}
    proc = subprocess.run(["bash", "benchmarks/evidence_cpu.sh"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = (out / "report.md").read_text()
    for claim in ("Searched base vs hand-designed references", "Compound scaling vs", "Proxy fidelity"):
        assert claim in report
    assert "n too small" in report  # one seed never names a winner
    run = (out / "run.txt").read_text()
    assert "wall_seconds:" in run and "torch:" in run and "command:" in run
    assert len(pd.read_csv(out / "study" / "study.csv")) == 5


def test_gpu_session_dry_run_commands_parse():
    env = {**os.environ, "DRY_RUN": "1", "OUT": "/tmp/nas-gpu-dry"}
    proc = subprocess.run(["bash", "benchmarks/gpu_session.sh", "setup", "bench", "proxy", "full", "search", "grid",
                           "scaled", "evidence", "workers", "space-bench", "supernet"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split(": ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("DRY ") and ": " in line]
    nas_lines = [line for line in lines if " -m nas " in line]
    assert len(nas_lines) >= 8
    assert any(" bench build --space cifar " in line and "--candidates 100" in line for line in nas_lines)
    assert any(" fidelity --bench " in line for line in nas_lines)
    assert any(" supernet train --space cifar " in line for line in nas_lines)
    assert any(" search " in line and "--evaluator predictor:" in line and "--trials 2000" in line for line in nas_lines)
    parser = build_parser()
    for line in nas_lines:
        argv = shlex.split(line.split(" -m nas ", 1)[1])
        parser.parse_args([a.replace("*", "x") for a in argv])  # a wrong flag exits here
    evidence = subprocess.run(["bash", "benchmarks/evidence_cpu.sh"], cwd=ROOT, capture_output=True, text=True,
                              env={**env, "DATASET": "cifar10", "SPACE": "cifar", "RES": "32"})
    argv = shlex.split(evidence.stdout.split(" -m nas ", 1)[1])
    args = parser.parse_args(argv)
    assert args.space == "cifar" and args.data_resolution == 32 and args.seeds == (0, 1, 2)
    # issue 18's rules: every grid network in tolerance, 2 grid seeds, 10 spread fidelity candidates
    assert args.grid_closest == 0 and args.grid_seeds == 2 and args.fidelity_candidates == 10
    assert args.fidelity_top is None and args.fidelity_random is None


def test_bench_cifar16_dry_run_commands_parse():
    proc = subprocess.run(["bash", "benchmarks/bench_cifar16.sh"], cwd=ROOT, env={**os.environ, "DRY_RUN": "1"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split(": ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("DRY ")]
    assert len(lines) == 3
    parser = build_parser()
    for line in lines:
        args = parser.parse_args(shlex.split(line.split(" -m nas ", 1)[1]))
        if args.command == "bench":
            assert args.candidates + 4 >= 48 and args.seeds >= 2 and args.seed_candidates >= 12
            assert args.recipe == "cifar16-bench"
