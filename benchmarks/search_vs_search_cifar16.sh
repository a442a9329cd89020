#!/usr/bin/env bash
# Search vs search at equal wall time on CIFAR-10 at 16 px (issue 19, item 6): today's search
# (every candidate trained with the proxy recipe) against the two-stage search that first scores
# PREFILTER_TRIALS random candidates with a cheap evaluator and trains them best-first with the
# same proxy -- both under the same hard MACs budget, both stopped by the same wall-clock limit.
# Both bests are then trained with the benchmark recipe over 3 seeds (`nas compare`: paired
# interval over seeds and test images, or "not resolved").
#
#   bash benchmarks/search_vs_search_cifar16.sh            # -> results/bench-cifar16/search-vs-search (~30 min)
#   EVALUATOR=synflow WALL=600 bash benchmarks/search_vs_search_cifar16.sh
#   DRY_RUN=1 bash benchmarks/search_vs_search_cifar16.sh  # print the commands only
#
# Equal wall time: --timeout covers training only, and the two-stage search scores before it
# trains, so it gets --timeout WALL - SCORE_RESERVE (the reserve covers its scoring: NASWOT costs
# ~0.03 s a candidate) while the plain search gets WALL; run.txt records both commands' measured
# wall times, so the comparison states how equal they came out. A finished step is skipped on a re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/provenance.sh
PY="${PY:-.venv/bin/python}"
DATA_DIR="${DATA_DIR:-../shared/data}"
OUT="${OUT:-results/bench-cifar16/search-vs-search}"
TARGET="${TARGET:-0.8M}"
EVALUATOR="${EVALUATOR:-naswot}"
PREFILTER_TRIALS="${PREFILTER_TRIALS:-1000}"
PROXY="${PROXY:-cifar16-evidence-proxy}"
FINAL="${FINAL:-cifar16-bench}"
WALL="${WALL:-420}"
SCORE_RESERVE="${SCORE_RESERVE:-60}"
SEEDS="${SEEDS:-0,1,2}"
DEVICE="${DEVICE:-cpu}"
NAS=("$PY" -m nas)
COMMON=(--space cifar16 --dataset cifar10 --data-dir "$DATA_DIR" --recipe "$PROXY" --target-macs "$TARGET"
        --objective hard --trials 500 --baselines none --device "$DEVICE")
PLAIN=("${NAS[@]}" search "${COMMON[@]}" --timeout "$WALL" --out "$OUT/train")
TWO_STAGE=("${NAS[@]}" search "${COMMON[@]}" --prefilter "$EVALUATOR" --prefilter-trials "$PREFILTER_TRIALS"
           --timeout "$(( WALL - SCORE_RESERVE ))" --out "$OUT/$EVALUATOR")
COMPARE=("${NAS[@]}" compare "$OUT/train/best-named.yaml" "$OUT/$EVALUATOR/best-named.yaml" --dataset cifar10
         --data-dir "$DATA_DIR" --recipe "$FINAL" --seeds "$SEEDS" --device "$DEVICE" --out "$OUT/compare")
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  for cmd in PLAIN TWO_STAGE COMPARE; do declare -n c=$cmd; echo "DRY $cmd: $(printf '%q ' "${c[@]}")"; done
  exit 0
fi
mkdir -p "$OUT"
touch "$OUT/timings.txt"
step() {  # step NAME DONE_FILE COMMAND...: run once, timed into timings.txt
  local name=$1 done=$2 start; shift 2
  if [[ -f "$done" ]]; then echo "== $name: done ($done exists)"; return 0; fi
  echo "== $name: $(printf '%q ' "$@")" | tee -a "$OUT/log.txt"
  start=$(date +%s)
  PYTHONUNBUFFERED=1 "$@" 2>&1 | tee -a "$OUT/log.txt"
  echo "$name $(( $(date +%s) - start ))" >> "$OUT/timings.txt"
}
step train "$OUT/train/best.yaml" "${PLAIN[@]}"
step "$EVALUATOR" "$OUT/$EVALUATOR/best.yaml" "${TWO_STAGE[@]}"
sed "s/^name: .*/name: search-train/" "$OUT/train/best.yaml" > "$OUT/train/best-named.yaml"
sed "s/^name: .*/name: search-$EVALUATOR/" "$OUT/$EVALUATOR/best.yaml" > "$OUT/$EVALUATOR/best-named.yaml"
step compare "$OUT/compare/compare.md" "${COMPARE[@]}"
{
  echo "plain search: $(printf '%q ' "${PLAIN[@]}")"
  echo "two-stage search: $(printf '%q ' "${TWO_STAGE[@]}")"
  echo "final training: $(printf '%q ' "${COMPARE[@]}")"
  echo "timings (s):"; sed 's/^/  /' "$OUT/timings.txt"
  provenance_lines "$PY"
} > "$OUT/run.txt"
cat "$OUT/run.txt"
"$PY" - "$OUT" "$EVALUATOR" "$TARGET" "${MD:-$(dirname "$OUT")/search-vs-search.md}" <<'PYEOF'
import json, sys
from pathlib import Path
import pandas as pd
out, evaluator, target, md = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
walls = dict(line.split() for line in (out / "timings.txt").read_text().splitlines() if line.strip())
rows = []
for tag, label in (("train", "every candidate trained (today's search)"),
                   (evaluator, f"{evaluator} scores, then trained best-first")):
    cost = json.loads((out / tag / "cost.json").read_text())
    pre = cost.get("prefilter") or {}
    best = pd.read_csv(out / tag / "trials.csv").sort_values("val_acc", ascending=False).iloc[0]
    rows.append(f"| {label} | {walls.get(tag, '?')} | {pre.get('scored', 0)} | {cost['trained'] + cost['pruned']} "
                f"| {best['macs'] / 1e6:.2f} | {best['val_acc'] * 100:.2f} | `{best['arch']}` |")
cmp = pd.read_csv(out / "compare" / "compare.csv")
finals = [f"| {r.model} | {r.macs / 1e6:.2f} | {r.test_acc * 100:.2f} ± {r.test_std * 100:.2f} | {r.n} | "
          + ("- | reference |" if pd.isna(r.diff) else f"{r.diff * 100:+.2f} ± {r.ci * 100:.2f} | p {r.p:.3g}: {r.verdict} |")
          for r in cmp.itertuples()]
md.write_text("\n".join([
    f"# Search vs search at equal wall time: T = {target} MACs, hard budget, CIFAR-10 @ 16 px", "",
    f"Both searches use the proxy recipe on the validation split and stop starting trials at the same "
    f"wall-clock limit; the two-stage search first scores random in-budget candidates with `{evaluator}` and "
    f"trains them best-first. Commands, machine and date: `search-vs-search/run.txt`.", "",
    "| search | wall (s) | scored | trained | best MACs (M) | best proxy val % | best arch |",
    "|---|---|---|---|---|---|---|", *rows, "",
    "Both bests trained with the benchmark recipe (`nas compare`, test split, paired over seeds and test images):", "",
    "| model | MACs (M) | test % (mean ± std) | seeds | Δ vs today's pick (pts, 95 %) | verdict |",
    "|---|---|---|---|---|---|",
    *finals, ""]))
print(md.read_text())
PYEOF
