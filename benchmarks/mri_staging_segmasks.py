"""Staging with liver masks from the shipped segmenter instead of mask_GED4 (SYNTHETIC test set).

  nice -n 10 .venv/bin/python benchmarks/mri_staging_segmasks.py --model runs/mri_staging_ramp0.5/model \
      --data runs/mri_synthetic_liqa/test --out runs/mri_staging_segmasks
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from liverfib.evaluation.segmentation import dice_hd95
from liverfib.mri.exam import read_exam_volumes
from liverfib.mri.layouts import list_liqa_exams
from liverfib.mri.staging_train import predict_cumulative, prepare_exam, stack_crops
from liverfib.pipeline._mri_common import liver_segmenter, staging_network

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mri_staging import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-boot", type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net, cfg, _ = staging_network(args.model)
    seg = liver_segmenter("default")
    exams = list_liqa_exams(args.data)
    crops, dices = [], []
    for e in exams:
        if e.mask_path is not None and "GED4" in e.phase_paths:
            images, mask = read_exam_volumes(e)
            dices.append(dice_hd95(seg.segment(images["GED4"].array), mask.array, images["GED4"].spacing_mm))
        crops.append(prepare_exam(replace(e, mask_path=None, mask_phase=None), cfg, seg_model=seg)[0])
    x, present, _ = stack_crops(crops)
    cum, _ = predict_cumulative(net, x, present)
    stages = np.array([e.stage for e in exams])
    res = {"data": "SYNTHETIC", "staging_with_segmenter_masks": evaluate(cum, stages, [e.case_id for e in exams], args.n_boot),
           "segmenter_dice_vs_mask_GED4_mean": float(np.mean([d for d, _ in dices])),
           "segmenter_hd95_mm_mean": float(np.mean([h for _, h in dices if h is not None])), "n_dice": len(dices)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
