#!/usr/bin/env bash
# The CIFAR-10 @ 16 px ground-truth benchmark of the `cifar16` space (issue 19), then the
# fidelity table of every evaluator against it:
#
#   bash benchmarks/bench_cifar16.sh                # -> results/bench-cifar16 (~3 h on 2 CPU cores)
#   TIMEOUT=3600 bash benchmarks/bench_cifar16.sh   # build for an hour; re-run the same line to go on
#   DRY_RUN=1 bash benchmarks/bench_cifar16.sh      # print the commands only
#
# Steps: (1) `nas bench build`: 44 sampled networks over 4 log-MACs strata of 0.4-3 M MACs plus
# the space's 4 references, recipe cifar16-bench (8 epochs, all 45k training images), 2 seeds
# for 12 of them spread over MACs (60 runs); resumable after a kill. (2) `nas fidelity --bench`
# over every evaluator, the search proxy's train/sotl included (they share one
# cifar16-evidence-proxy run a candidate: ~1-2.5 h on 2 loaded cores; the zero-cost ones take
# seconds; scores.csv keeps every score, so a re-run goes on where a killed one stopped). (3) the recipe's gap to a 2x
# longer run (16 epochs) on 2 benchmark candidates (a quarter and three quarters up the MACs
# order): compare their val accuracy with bench.csv and write it into cifar16-bench.yaml.
# (4) run.txt: command, machine, date, wall time. Every setting is an environment variable.
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/provenance.sh
PY="${PY:-.venv/bin/python}"
DATA_DIR="${DATA_DIR:-../shared/data}"
OUT="${OUT:-results/bench-cifar16}"
RECIPE="${RECIPE:-cifar16-bench}"
CANDIDATES="${CANDIDATES:-44}"
SEEDS="${SEEDS:-2}"
SEED_CANDIDATES="${SEED_CANDIDATES:-12}"
MACS_RANGE="${MACS_RANGE:-0.4M,3M}"
EVALUATORS="${EVALUATORS:-synflow,naswot,grad_norm,snip,zico,params,macs,train:cifar16-evidence-proxy,sotl:cifar16-evidence-proxy}"
DEVICE="${DEVICE:-auto}"
BUILD=("$PY" -m nas bench build --space cifar16 --dataset cifar10 --data-dir "$DATA_DIR" --recipe "$RECIPE"
       --candidates "$CANDIDATES" --seeds "$SEEDS" --seed-candidates "$SEED_CANDIDATES" --macs-range "$MACS_RANGE"
       --device "$DEVICE" ${TIMEOUT:+--timeout "$TIMEOUT"} --out "$OUT")
FIDELITY=("$PY" -m nas fidelity --bench "$OUT" --evaluators "$EVALUATORS" --seeds 0 --device "$DEVICE"
          --out "$OUT/fidelity")
GAP=("$PY" -m nas compare "$OUT/gap/a.yaml" "$OUT/gap/b.yaml" --dataset cifar10 --data-dir "$DATA_DIR"
     --recipe "$OUT/gap/x2.yaml" --seeds 0 --device "$DEVICE" --out "$OUT/gap")
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  for cmd in BUILD FIDELITY GAP; do declare -n c=$cmd; echo "DRY $cmd: $(printf '%q ' "${c[@]}")"; done
  exit 0
fi
mkdir -p "$OUT"
start=$(date +%s)
PYTHONUNBUFFERED=1 "${BUILD[@]}" 2>&1 | tee -a "$OUT/log.txt"
runs=$("$PY" -c "import pandas as pd; print(len(pd.read_csv('$OUT/bench.csv')))")
planned=$(( CANDIDATES + 4 + SEED_CANDIDATES * (SEEDS - 1) ))
if (( runs < planned )); then echo "benchmark holds $runs/$planned runs: re-run this script to go on"; exit 0; fi
PYTHONUNBUFFERED=1 "${FIDELITY[@]}" 2>&1 | tee -a "$OUT/log.txt"
mkdir -p "$OUT/gap"
sed 's/^epochs: 8$/epochs: 16/; s/^name: cifar16-bench$/name: cifar16-bench-x2/' "nas/recipes/$RECIPE.yaml" > "$OUT/gap/x2.yaml"
"$PY" - "$OUT" <<'PYEOF'
import json, sys
import pandas as pd
from nas.spec import ArchSpec
out = sys.argv[1]
runs = pd.read_csv(f"{out}/bench.csv")
first = runs[runs["seed"] == runs["seed"].min()].sort_values("macs").reset_index(drop=True)
for tag, q in (("a", 0.25), ("b", 0.75)):
    row = first.iloc[int(q * (len(first) - 1))]
    ArchSpec.from_dict(json.loads(row["spec"])).save(f"{out}/gap/{tag}.yaml")
    print(f"gap candidate {tag}: {row['candidate']} {row['macs'] / 1e6:.2f} M MACs, 8 epochs val {row['val_acc'] * 100:.2f}%")
PYEOF
PYTHONUNBUFFERED=1 "${GAP[@]}" 2>&1 | tee -a "$OUT/log.txt"
wall=$(( $(date +%s) - start ))
{
  echo "command: $(printf '%q ' "${BUILD[@]}")"
  echo "fidelity: $(printf '%q ' "${FIDELITY[@]}")"
  echo "wall_seconds (this session): $wall"
  provenance_lines "$PY"
} > "$OUT/run.txt"
cat "$OUT/run.txt"
