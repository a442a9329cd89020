#!/usr/bin/env bash
# The CPU latency-predictor result (issue 21): for the cifar16 space at batch 1, build the
# per-block lookup table (`nas latency table`) and check it against measured latency on 100
# random candidates (`nas latency check`), with 1 and 2 torch threads and with the median and
# the minimum of the repeats; record the machine, torch version, date and the load average
# before and after (the machine may be shared: say so next to the numbers).
#
#   bash benchmarks/latency_cpu.sh                               # -> results/latency-cpu
#   SPACE=tiny SAMPLES=20 OUT=runs/lat bash benchmarks/latency_cpu.sh
#
# About 1-2 minutes per (threads, statistic) pair on 2 idle cores: table ~10 s (824 entries),
# check ~200 measured nets.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
SPACE="${SPACE:-cifar16}"
SAMPLES="${SAMPLES:-100}"
CALIBRATE="${CALIBRATE:-10}"
THREADS="${THREADS:-1 2}"
STATS="${STATS:-median min}"
OUT="${OUT:-results/latency-cpu}"
mkdir -p "$OUT"
MACHINE="$OUT/machine.txt"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores"
  echo "torch: $("$PY" -c 'import torch; print(torch.__version__)')"
  echo "uptime before: $(uptime)"
} > "$MACHINE"
for threads in $THREADS; do
  for stat in $STATS; do
    name="t${threads}-${stat}"
    rm -rf "$OUT/table-$name.json" "$OUT/check-$name"
    echo "== $name: uptime $(uptime)" | tee -a "$MACHINE"
    "$PY" -m nas latency table --space "$SPACE" --threads "$threads" --stat "$stat" \
      --out "$OUT/table-$name.json" | tail -n 1 | tee -a "$MACHINE"
    "$PY" -m nas latency check "$OUT/table-$name.json" --space "$SPACE" --samples "$SAMPLES" \
      --threads "$threads" --calibrate "$CALIBRATE" --out "$OUT/check-$name" | grep -v "measured, ETA"
  done
done
echo "uptime after: $(uptime)" >> "$MACHINE"
cat "$MACHINE"
