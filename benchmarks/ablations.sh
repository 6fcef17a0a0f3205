#!/usr/bin/env bash
# Ablations of the frozen-feature probe on the grouped split (train/val/test, seed 0); CPU, 1 thread.
# usage: bash benchmarks/ablations.sh   (expects runs/splits/grouped.csv from `liverfib split`)
set -euo pipefail
DATA=../shared/data/liver-us-fibrosis
SPLIT=runs/splits/grouped.csv
for name in ordinal keep_copies fan nlm final_only; do
  .venv/bin/liverfib train --data $DATA --split $SPLIT --out runs/abl_$name --epochs 0 --threads 1 \
      --config configs/$name.yaml > runs/abl_$name.log 2>&1
  .venv/bin/liverfib evaluate --model runs/abl_$name/model --data $DATA --split $SPLIT --subset test \
      --out runs/abl_$name/test --json > runs/abl_$name/test.json 2>runs/abl_$name/test.err
done
