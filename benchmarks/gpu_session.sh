#!/usr/bin/env bash
# Every GPU measurement the issues ask for, as one script for one device call.
#
#   bash benchmarks/gpu_session.sh setup bench proxy full search grid scaled evidence workers space-bench supernet
#
# evidence: the CPU evidence command (benchmarks/evidence_cpu.sh) unchanged, at 32 px in the
# `cifar` space; workers: search throughput with 1 vs 4 worker processes on the one GPU
# (trained candidates per hour); space-bench: the ground-truth benchmark of the `cifar` space at
# 32 px (`nas bench build`, >= 100 candidates, resumable across sessions) and the zero-cost
# evaluators' fidelity against whatever part of it is built (`nas fidelity --bench`); supernet:
# the `cifar` space's weight-sharing supernet at 32 px (`nas supernet train`, resumable), its
# accuracy predictor and a 2,000-trial search with it. DRY_RUN=1 prints every command instead of running it
# (tests/test_gpu_script.py parses them with the real `nas` parser).
#
# Each phase runs under its own timeout and writes as it goes, so a phase that
# fails or runs out of time leaves the others' results. Results: $OUT/log.txt,
# $OUT/runs.tar.gz (every run directory without checkpoints) and the benchmark
# JSON lines. On the lent GPU machine (no optuna/fvcore there) carry .whl (made by
# ../shared/tools/device-wheels) and .data (the CIFAR archive); `setup` installs them.
# QUICK=1 runs the same phases at toy sizes, to check the script on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/runs/gpu-out}
RUNS=${RUNS:-/tmp/nas-runs}
DATA=${DATA:-.data}
export PYTHONUNBUFFERED=1 NAS_CACHE_DIR=${NAS_CACHE_DIR:-/tmp/nas-cache}
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/log.txt") 2>&1

NAS="python3 -m nas"
PROXY=${PROXY:-proxy}; FULL=${FULL:-full}; FAST=${FAST:-proxy-fast}
TRIALS=${TRIALS:-50}; SEARCH_S=${SEARCH_S:-240}; GRID_CLOSEST=${GRID_CLOSEST:-4}; GRID_S=${GRID_S:-60}
PHIS=${PHIS:-1,2,3}; SCALED_S=${SCALED_S:-240}; FULL_S=${FULL_S:-300}; PROXY_S=${PROXY_S:-120}
WORKERS_S=${WORKERS_S:-90}
SPACEBENCH_S=${SPACEBENCH_S:-420}; SPACEBENCH_N=${SPACEBENCH_N:-100}; SPACEBENCH_RECIPE=${SPACEBENCH_RECIPE:-proxy}
SPACEBENCH_MACS=${SPACEBENCH_MACS:-20M,200M}; SPACEBENCH_EVALUATORS=${SPACEBENCH_EVALUATORS:-synflow,naswot,grad_norm,snip,zico,params,macs}
SUPERNET_S=${SUPERNET_S:-300}; SUPERNET_RECIPE=${SUPERNET_RECIPE:-proxy}; SUPERNET_EPOCHS=${SUPERNET_EPOCHS:-10}
SUPERNET_SAMPLES=${SUPERNET_SAMPLES:-500}
BASE=efficientnet-b0-cifar; SPACE=cifar; TARGET=116167168; EXTRA=""
if [ "${QUICK:-0}" = 1 ]; then  # a small net and space: B0-CIFAR takes minutes per epoch on 2 cores
  EXTRA="--val-fraction 0.004"; SPACE=tiny; TARGET=2M; BASE=/tmp/quick-spec.yaml
  printf 'name: quick\nresolution: 32\nnum_classes: 10\nstem: {channels: 16, stride: 1}\nstages: [mbconv_r1_k3_s2_e3_c16_se0.25, mbconv_r1_k3_s2_e3_c24_se0.25, mbconv_r1_k3_s1_e3_c24, mbconv_r1_k3_s2_e3_c32, mbconv_r1_k3_s1_e3_c32, mbconv_r1_k3_s2_e3_c40, mbconv_r1_k3_s1_e3_c40]\nhead: {channels: 64}\n' > $BASE
  printf 'name: quick\nepochs: 1\nbatch_size: 32\nlr: 0.05\nbn_momentum: 0.1\ntrain_fraction: 0.01\n' > /tmp/quick.yaml
  PROXY=/tmp/quick.yaml; FULL=/tmp/quick.yaml; FAST=/tmp/quick.yaml; TRIALS=3; GRID_CLOSEST=2; PHIS=1
  SPACEBENCH_N=4; SPACEBENCH_RECIPE=/tmp/quick.yaml; SPACEBENCH_MACS=0.3M,3M
  SUPERNET_RECIPE=/tmp/quick.yaml; SUPERNET_EPOCHS=1; SUPERNET_SAMPLES=12
fi

phase() {  # phase NAME SECONDS COMMAND...
  local name=$1 budget=$2 start rc; shift 2
  if [ "${DRY_RUN:-0}" = 1 ]; then echo "DRY $name: $*"; return 0; fi
  echo "=== $name (budget ${budget}s) start $(date +%T)"
  start=$(date +%s)
  timeout --signal=INT --kill-after=20 "$budget" "$@"; rc=$?
  echo "=== $name rc=$rc after $(( $(date +%s) - start ))s"
}

for p in "$@"; do
  case $p in
    setup)
      if [ "${DRY_RUN:-0}" = 1 ]; then echo "DRY setup"; continue; fi
      if ls .whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site:$PWD
      fi
      nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv || true
      python3 -c "import torch, optuna; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'optuna', optuna.__version__, 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)"
      phase decode 120 python3 -c "from nas.data import load_dataset; print(load_dataset('cifar10', data_dir='$DATA').summary())" ;;
    bench)
      if [ "${QUICK:-0}" = 1 ]; then phase bench 300 python3 benchmarks/trainer.py --quick --no-record
      else phase bench "${BENCH_S:-240}" python3 benchmarks/trainer.py; fi ;;
    proxy)
      phase proxy "$PROXY_S" $NAS train $BASE --dataset cifar10 --data-dir "$DATA" --recipe "$PROXY" $EXTRA --out "$RUNS/b0-proxy" ;;
    full)  # as many epochs (<= 40) as the proxy's measured img/s fit into FULL_S
      EPOCHS=$(python3 -c "
import json, sys
try: ips = json.load(open('$RUNS/b0-proxy/result.json'))['images_per_s']
except Exception: ips = 0
print(max(1, min(40, int(0.85 * $FULL_S * ips / 50000))) if ips else 40)")
      echo "full recipe: $EPOCHS epochs"
      phase full "$FULL_S" $NAS train $BASE --dataset cifar10 --data-dir "$DATA" --recipe "$FULL" \
        --epochs "$EPOCHS" $EXTRA --out "$RUNS/b0-full" ;;
    search)
      phase search $((SEARCH_S + 90)) $NAS search --space $SPACE --dataset cifar10 --data-dir "$DATA" \
        --target-macs $TARGET --trials "$TRIALS" --recipe "$FAST" --timeout "$SEARCH_S" $EXTRA --out "$RUNS/search-cifar" ;;
    grid)
      phase grid $((GRID_S + 60)) $NAS scale grid --base $BASE --dataset cifar10 --data-dir "$DATA" \
        --closest "$GRID_CLOSEST" --recipe "$FAST" --timeout "$GRID_S" $EXTRA --out "$RUNS/grid-cifar" ;;
    scaled)
      phase emit 60 $NAS scale emit --base $BASE --from "$RUNS/grid-cifar/best_coefficients.yaml" --phi "$PHIS" \
        --out "$RUNS/scaled-cifar"
      # the base's proxy run (same recipe and seed) is the proxy phase's b0-proxy
      phase scaled "$SCALED_S" $NAS compare "$RUNS"/scaled-cifar/*.yaml --dataset cifar10 \
        --data-dir "$DATA" --recipe "$PROXY" $EXTRA --out "$RUNS/compare-scaled" ;;
    evidence)  # the CPU evidence command, unchanged, at 32 px on the GPU
      phase evidence "${EVIDENCE_S:-420}" env PY=python3 DATASET=cifar10 DATA_DIR="$DATA" SPACE=$SPACE \
        TARGET="${EVIDENCE_TARGET:-60M}" TRIALS="${EVIDENCE_TRIALS:-20}" PROXY="$FAST" FINAL="${EVIDENCE_FINAL:-$PROXY}" \
        SEEDS=0,1,2 DEVICE=cuda OUT="$RUNS/evidence-32" DRY_RUN="${DRY_RUN:-0}" bash benchmarks/evidence_cpu.sh ;;
    workers)  # trained candidates per hour with 1 and 4 worker processes sharing the GPU
      for w in 1 4; do
        phase "workers-$w" $((WORKERS_S + 60)) $NAS search --space $SPACE --dataset cifar10 --data-dir "$DATA" \
          --target-macs $TARGET --trials 1000 --recipe "$FAST" --workers $w --timeout "$WORKERS_S" $EXTRA \
          --out "$RUNS/workers-$w"
      done
      [ "${DRY_RUN:-0}" = 1 ] || python3 -c "
import pandas as pd
for w in (1, 4):
    df = pd.read_csv('$RUNS/workers-%d/trials.csv' % w)
    n = int(df['status'].isin(['trained', 'pruned']).sum())
    print('workers %d: %d candidates trained in ${WORKERS_S}s = %.0f per hour' % (w, n, n * 3600 / $WORKERS_S))
" ;;
    space-bench)  # ground truth of the space at 32 px; the bench resumes where an earlier session stopped
      phase space-bench $((SPACEBENCH_S + 90)) $NAS bench build --space $SPACE --dataset cifar10 --data-dir "$DATA" \
        --recipe "$SPACEBENCH_RECIPE" --candidates "$SPACEBENCH_N" --seeds 2 --seed-candidates 20 \
        --macs-range "$SPACEBENCH_MACS" --timeout "$SPACEBENCH_S" $EXTRA --out "$RUNS/bench-cifar32"
      phase space-bench-fidelity 300 $NAS fidelity --bench "$RUNS/bench-cifar32" \
        --evaluators "$SPACEBENCH_EVALUATORS" --out "$RUNS/bench-cifar32/fidelity" ;;
    supernet)  # the `cifar` space's supernet at 32 px (resumes across sessions), its predictor, a 2000-trial search
      SN="$RUNS/supernet-cifar32"; RESUME=""; [ -f "$SN/supernet.pt" ] && RESUME=--resume
      phase supernet $((SUPERNET_S + 60)) $NAS supernet train --space $SPACE --dataset cifar10 --data-dir "$DATA" \
        --recipe "$SUPERNET_RECIPE" --epochs "$SUPERNET_EPOCHS" $EXTRA --out "$SN" $RESUME
      phase supernet-predictor 240 $NAS supernet predictor "$SN" --samples "$SUPERNET_SAMPLES" --data-dir "$DATA" $EXTRA
      phase supernet-search 180 $NAS search --space $SPACE --dataset cifar10 --data-dir "$DATA" \
        --evaluator "predictor:$SN" --target-macs $TARGET --trials 2000 --baselines none $EXTRA --out "$RUNS/supernet-search" ;;
    *) echo "unknown phase $p" ;;
  esac
done
[ "${DRY_RUN:-0}" = 1 ] && exit 0
tar czf "$OUT/runs.tar.gz" --exclude=checkpoint.pt --exclude=study.journal -C "$RUNS" . 2>/dev/null
cp results/benchmarks/*.jsonl "$OUT/" 2>/dev/null || true
ls -la "$OUT"
