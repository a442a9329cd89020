#!/usr/bin/env bash
# The CPU evidence run (issue 11): on CIFAR-10 at 16 px, one `nas pipeline` that searches a
# base at a MACs target (>= 20 trained candidates), compares it with the space's hand-designed
# references width-matched to the same MACs (3 seeds), grid-searches (alpha, beta, gamma) at
# equal realised MACs, runs the scaling study at 2x (compound vs depth-, width-,
# resolution-only, 3 seeds) and the proxy-fidelity report; then records the command, machine,
# torch version and wall time next to report.md.
#
#   bash benchmarks/evidence_cpu.sh                 # CIFAR-10 from ../shared/data -> results/cifar16-cpu
#   DATASET=digits SPACE=tiny PROXY=smoke FINAL=smoke TRIALS=3 OUT=runs/ev bash benchmarks/evidence_cpu.sh
#
# Every setting is an environment variable, so the same command scales up unchanged on a GPU
# (see benchmarks/gpu_session.sh: space `cifar` at 32 px).
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/provenance.sh
PY="${PY:-.venv/bin/python}"
DATASET="${DATASET:-cifar10}"
DATA_DIR="${DATA_DIR:-../shared/data}"
SPACE="${SPACE:-cifar16}"
# --data-resolution, a floor; empty: each step decodes the images at its largest net's input
# (16 px for the searched base, more for the nets the grid and the study grow in resolution,
# so they see real detail rather than upsampled 16 px images)
RES="${RES:-}"
TARGET="${TARGET:-800k}"
TRIALS="${TRIALS:-20}"
PROXY="${PROXY:-cifar16-evidence-proxy}"
FINAL="${FINAL:-cifar16-evidence}"
SEEDS="${SEEDS:-0,1,2}"
# issue 18's rules: every distinct grid network within 3 % of 2x (GRID_CLOSEST=0), 2 seeds per
# grid point, and 10 fidelity candidates at evenly spaced proxy ranks (2 long-recipe seeds)
GRID_CLOSEST="${GRID_CLOSEST:-0}"
GRID_SEEDS="${GRID_SEEDS:-2}"
FIDELITY="${FIDELITY:-10}"
DEVICE="${DEVICE:-auto}"
OUT="${OUT:-results/cifar16-cpu}"
CMD=("$PY" -m nas pipeline --space "$SPACE" --dataset "$DATASET" --data-dir "$DATA_DIR"
     ${RES:+--data-resolution "$RES"} --target-macs "$TARGET" --trials "$TRIALS" --recipe "$PROXY"
     --final-recipe "$FINAL" --seeds "$SEEDS" --phi 1 --grid-closest "$GRID_CLOSEST" --grid-seeds "$GRID_SEEDS"
     --fidelity-candidates "$FIDELITY" --no-train-scaled --device "$DEVICE"
     --out "$OUT")
if [[ "${DRY_RUN:-0}" == 1 ]]; then printf '%q ' "${CMD[@]}"; echo; exit 0; fi
mkdir -p "$OUT"
start=$(date +%s)
PYTHONUNBUFFERED=1 "${CMD[@]}" 2>&1 | tee "$OUT/log.txt"
wall=$(( $(date +%s) - start ))
{
  echo "command: $(printf '%q ' "${CMD[@]}")"
  echo "wall_seconds: $wall"
  provenance_lines "$PY"
} > "$OUT/run.txt"
cat "$OUT/run.txt"
