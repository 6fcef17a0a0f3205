#!/usr/bin/env bash
# Frozen-feature backbones on grouped stratified 5-fold CV over the 1224 distinct images (CPU).
# usage: bash benchmarks/backbones.sh
set -euo pipefail
DATA=../shared/data/liver-us-fibrosis
export OMP_NUM_THREADS=1
for spec in "tf_efficientnet_lite0 224 16,24,40,112,320,1280" "tf_efficientnet_lite2 260 16,24,48,120,352,1280" \
            "efficientnet_b0 224 16,24,40,112,320,1280" "resnet50 224 64,256,512,1024,2048,2048"; do
  set -- $spec
  [ -f runs/feat_$1.npz ] || .venv/bin/python benchmarks/extract_features.py $DATA runs/feat_$1.npz --no-fan \
      --backbone $1 --img-size $2 > runs/feat_$1.log 2>&1
  for blocks in "final" "s1 s2 s3 final"; do
    .venv/bin/python benchmarks/cv_features.py runs/feat_$1.npz --dims $3 --blocks $blocks
    .venv/bin/python benchmarks/cv_features.py runs/feat_$1.npz --dims $3 --blocks $blocks --per-source
  done
done
