#!/usr/bin/env bash
# paired timing of the budget-aware sampler on quiet cores: 0.8 M without redraws, 0.5 M with them
cd /work/main
S=(.venv/bin/python -m nas search --space cifar16 --dataset cifar10 --data-dir ../shared/data
   --evaluator predictor:results/supernet-cifar16 --objective hard --trials 2000 --baselines none --device cpu)
for run in "0.8M 0 s08-draws0" "0.5M 256 s05-draws256"; do
  set -- $run
  start=$(date +%s)
  PYTHONUNBUFFERED=1 "${S[@]}" --target-macs "$1" --budget-draws "$2" --out "results/supernet-cifar16/budget-sampler-paired/$3" > "results/supernet-cifar16/budget-sampler-paired/$3.log" 2>&1
  echo "$3 rc=$? wall=$(( $(date +%s) - start ))s" >> results/supernet-cifar16/budget-sampler-paired/times.txt
done
echo done >> results/supernet-cifar16/budget-sampler-paired/times.txt
