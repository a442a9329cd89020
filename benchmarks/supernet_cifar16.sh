#!/usr/bin/env bash
# The supernet of the `cifar16` space on CIFAR-10 at 16 px (issue 20), measured:
#
#   bash benchmarks/supernet_cifar16.sh                     # -> results/supernet-cifar16 (~2.5 h on 2 CPU cores)
#   BUDGETS=0.8M AMORTISE=3 bash benchmarks/supernet_cifar16.sh   # one of three budgets now, the rest later
#   DRY_RUN=1 bash benchmarks/supernet_cifar16.sh           # print the commands only
#
# Steps (each resumes, or is skipped when its output exists, so the script may be re-run):
# (1) `nas supernet train` (recipe cifar16-supernet; goal <= 40 min on 2 cores);
# (2) `nas supernet predictor`: SAMPLES random subnets judged with inherited weights, a ridge fit;
# (3) `nas fidelity --bench` of supernet:, predictor:, the zero-cost proxies, params and macs against the ground truth
#     (results/bench-cifar16, whatever part of it is built);
# (4) per budget B: a TRIALS-trial search with predictor:OUT under a hard budget (timed: goal
#     <= 2 min), a from-scratch search (train:SCRATCH_PROXY, hard budget) given the same wall time
#     -- the supernet's training and predictor amortised over the budgets, plus its search --,
#     then both bests trained with the benchmark recipe over SEEDS (`nas compare`: paired interval).
# (5) run.txt (commands, machine, date, wall times) and budgets.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/provenance.sh
PY="${PY:-.venv/bin/python}"
DATA_DIR="${DATA_DIR:-../shared/data}"
OUT="${OUT:-results/supernet-cifar16}"
BENCH="${BENCH:-results/bench-cifar16}"
RECIPE="${RECIPE:-cifar16-supernet}"
SAMPLES="${SAMPLES:-300}"
BUDGETS="${BUDGETS:-0.5M 0.8M 1.5M}"
TRIALS="${TRIALS:-2000}"
SCRATCH_PROXY="${SCRATCH_PROXY:-cifar16-evidence-proxy}"
FINAL="${FINAL:-cifar16-bench}"
SEEDS="${SEEDS:-0,1,2}"
DEVICE="${DEVICE:-cpu}"
OTHERS="${OTHERS:-synflow,naswot,grad_norm,snip,zico,params,macs}"  # beside them in the fidelity table
NAS=("$PY" -m nas)
DATA=(--dataset cifar10 --data-dir "$DATA_DIR")
run() {  # run NAME COMMAND...: print, time (seconds into $OUT/timings.txt) and run one step
  local name=$1 start; shift
  if [[ "${DRY_RUN:-0}" == 1 ]]; then echo "DRY $name: $(printf '%q ' "$@")"; return 0; fi
  echo "== $name: $(printf '%q ' "$@")" | tee -a "$OUT/log.txt"
  start=$(date +%s)
  PYTHONUNBUFFERED=1 "$@" 2>&1 | tee -a "$OUT/log.txt"
  echo "$name $(( $(date +%s) - start ))" >> "$OUT/timings.txt"
}
seconds_of() { awk -v n="$1" '$1 == n {s += $2} END {print s + 0}' "$OUT/timings.txt" 2>/dev/null || echo 0; }
mkdir -p "$OUT"
[[ "${DRY_RUN:-0}" == 1 ]] || touch "$OUT/timings.txt"

resume=(); [[ -f "$OUT/supernet.pt" ]] && resume=(--resume)
run train "${NAS[@]}" supernet train --space cifar16 "${DATA[@]}" --recipe "$RECIPE" --device "$DEVICE" \
    --out "$OUT" "${resume[@]}"
# the predictor and the fidelity table are made once (a later budget reuses them; delete to redo)
[[ -f "$OUT/predictor.json" ]] ||
  run predictor "${NAS[@]}" supernet predictor "$OUT" --samples "$SAMPLES" --device "$DEVICE" --data-dir "$DATA_DIR"
[[ -f "$OUT/fidelity/fidelity.csv" ]] ||
  run fidelity "${NAS[@]}" fidelity --bench "$BENCH" --evaluators "supernet:$OUT,predictor:$OUT,$OTHERS" \
      --seeds 0 --device "$DEVICE" --out "$OUT/fidelity"
budgets=($BUDGETS)
AMORTISE="${AMORTISE:-${#budgets[@]}}"  # budgets the one supernet is shared over (3 when they run in slices)
for b in "${budgets[@]}"; do
  run "search-$b" "${NAS[@]}" search --space cifar16 "${DATA[@]}" --evaluator "predictor:$OUT" --target-macs "$b" \
      --objective hard --trials "$TRIALS" --baselines none --device "$DEVICE" --out "$OUT/search-$b"
  # equal wall time: this budget's share of the training (its epochs, from history.csv, however many
  # sessions it took) and of the predictor, plus its own search
  trained=0; [[ -f "$OUT/history.csv" ]] && trained=$("$PY" -c "import pandas as pd; print(int(pd.read_csv('$OUT/history.csv')['seconds'].sum()))")
  wall=$(( (trained + $(seconds_of predictor)) / AMORTISE + $(seconds_of "search-$b") ))
  run "scratch-$b" "${NAS[@]}" search --space cifar16 "${DATA[@]}" --recipe "$SCRATCH_PROXY" --target-macs "$b" \
      --objective hard --trials 500 --timeout "$(( wall > 60 ? wall : 60 ))" --baselines none --device "$DEVICE" \
      --out "$OUT/scratch-$b"
  if [[ "${DRY_RUN:-0}" != 1 ]]; then
    sed "s/^name: .*/name: supernet-$b/" "$OUT/search-$b/best.yaml" > "$OUT/search-$b/best-named.yaml"
    sed "s/^name: .*/name: scratch-$b/" "$OUT/scratch-$b/best.yaml" > "$OUT/scratch-$b/best-named.yaml"
  fi
  run "compare-$b" "${NAS[@]}" compare "$OUT/search-$b/best-named.yaml" "$OUT/scratch-$b/best-named.yaml" \
      "${DATA[@]}" --recipe "$FINAL" --seeds "$SEEDS" --device "$DEVICE" --out "$OUT/compare-$b" || true
done
[[ "${DRY_RUN:-0}" == 1 ]] && exit 0
{
  echo "commands: see log.txt (each step's line starts with ==)"
  echo "timings (s):"; sed 's/^/  /' "$OUT/timings.txt"
  provenance_lines "$PY"
} > "$OUT/run.txt"
cat "$OUT/run.txt"
