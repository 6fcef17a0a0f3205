#!/usr/bin/env bash
# ResNeXt50 U-Net (published) vs plain U-Net (published baseline) vs MobileNetV2 U-Net (shipped
# default) trained with the same reduced CPU budget (configs/mre_seg_compare.yaml) on phantoms
# (seed 1) and scored on held-out phantoms (seed 1000). CPU, 1 thread, random init.
# Usage: benchmarks/mre_seg_compare.sh [TRAIN_DIR] [TEST_DIR] [RUNS_DIR]
set -euo pipefail
TRAIN=${1:-/tmp/mre_data/train}
TEST=${2:-/tmp/mre_data/test}
RUNS=${3:-/tmp/mre_compare}
LF=".venv/bin/liverfib"
[ -d "$TRAIN" ] || $LF phantom mre --n 50 --seed 1 --out "$TRAIN"
[ -d "$TEST" ] || $LF phantom mre --n 30 --seed 1000 --out "$TEST"
for arch in unet_resnext50 unet_plain unet_mobilenetv2; do
  nice -n 10 $LF train-seg --task mre --data "$TRAIN" --out "$RUNS/$arch" --config configs/mre_seg_compare.yaml \
    --arch "$arch" --threads 1
  nice -n 10 .venv/bin/python benchmarks/mre_eval.py --data "$TEST" --model "$RUNS/$arch/best.pt" \
    --out "$RUNS/$arch/eval" --n-boot 1000 | tee "$RUNS/$arch/eval.txt"
done
