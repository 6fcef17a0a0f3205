"""Benchmark the MRE pipeline on held-out phantom exams (never used in training).

For every exam folder with a truth.json under --data: run ``liverfib.pipeline.run_mre`` (model
segmentation, no overlays), time it, score the mask against the true liver (Dice/IoU), then
agreement (Pearson r, ICC, Bland-Altman, stage kappa) of

* automatic vs truth (``mean_stiffness_kpa`` of truth.json),
* simulated manual ROI vs truth, and automatic vs manual (the published comparison),
* truth-mask measurement vs truth (isolates the elastogram/ROI error from segmentation).

Usage (CPU, 1 thread):
    .venv/bin/python benchmarks/mre_eval.py --data /tmp/mre_data/test --model default --out /tmp/mre_bench
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from liverfib.evaluation.segmentation import overlap_scores
    from liverfib.io.nifti import read_nifti
    from liverfib.mre.agreement import mask_agreement
    from liverfib.pipeline import run_agreement, run_mre

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "masks").mkdir(exist_ok=True)
    rows = {"auto": [], "truth": [], "manual": [], "truthmask": []}
    seg_rows, times = [], []
    exams = sorted(p.parent for p in args.data.glob("*/truth.json"))
    run_mre(exams[0], model=args.model, overlays=False)  # warm-up (model load) not timed
    for d in exams:
        truth = json.loads((d / "truth.json").read_text())
        t0 = time.perf_counter()
        auto, _ = run_mre(d, model=args.model, out_dir=None, overlays=False)
        times.append(time.perf_counter() - t0)
        tm, _ = run_mre(d, mask=d / truth["liver_mask_path"], overlays=False)
        # the predicted mask again for Dice (run_mre does not return arrays)
        from liverfib.mre.dicom import read_mre_exam
        from liverfib.mre.segment import prepare_input, segment_liver
        from liverfib.pipeline.mre import _model

        exam = read_mre_exam(d)
        net, info = _model(args.model)
        pred = segment_liver(net, info, prepare_input(exam.magnitude.array, exam.confidence_pct.array))
        true_mask = read_nifti(d / truth["liver_mask_path"]).array > 0
        scores = overlap_scores(pred, true_mask)
        dice, iou = scores["dice"], scores["iou"]
        np.save(args.out / "masks" / f"{d.name}.npy", pred)
        seg_rows.append({"exam": d.name, "stage": truth["stage"], "dice": dice, "iou": iou})
        rows["auto"].append({"exam": d.name, "mean_stiffness_kpa": auto["mean_stiffness_kpa"], "stage": auto["stage"]})
        rows["truthmask"].append({"exam": d.name, "mean_stiffness_kpa": tm["mean_stiffness_kpa"], "stage": tm["stage"]})
        rows["truth"].append({"exam": d.name, "mean_stiffness_kpa": truth["mean_stiffness_kpa"], "stage": truth["stage"]})
        m = truth["manual_roi"]
        if m["mean_stiffness_kpa"] is not None:  # a reader who found no usable ROI is left out
            rows["manual"].append({"exam": d.name, "mean_stiffness_kpa": m["mean_stiffness_kpa"], "stage": m["stage"]})
    for name, r in rows.items():
        with (args.out / f"{name}.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["exam", "mean_stiffness_kpa", "stage"])
            w.writeheader()
            w.writerows(r)
    result = {"n_exams": len(exams), "data": str(args.data), "model": args.model, "device": "cpu, 1 thread",
              "seconds_per_exam": {"median": float(np.median(times)), "max": float(np.max(times))},
              "segmentation": mask_agreement(seg_rows, n_boot=args.n_boot), "agreement": {}}
    for a, b in (("auto", "truth"), ("manual", "truth"), ("auto", "manual"), ("truthmask", "truth")):
        s, _ = run_agreement(args.out / f"{a}.csv", args.out / f"{b}.csv", out_dir=args.out / f"{a}_vs_{b}",
                             n_boot=args.n_boot)
        result["agreement"][f"{a}_vs_{b}"] = s
    (args.out / "benchmark.json").write_text(json.dumps(result, indent=2, default=str))
    _print(result)


def _print(r: dict) -> None:
    seg = r["segmentation"]
    print(f"exams {r['n_exams']}  model {r['model']}  time/exam median {r['seconds_per_exam']['median']:.2f} s "
          f"max {r['seconds_per_exam']['max']:.2f} s ({r['device']})")
    o = seg["overall"]
    print(f"Dice overall {o['dice']:.4f} [{o['dice_ci_low']:.4f}, {o['dice_ci_high']:.4f}] min {o['dice_min']:.4f}")
    for s, v in seg["per_stage"].items():
        print(f"  {s}: Dice {v['dice']:.4f} [{v['dice_ci_low']:.4f}, {v['dice_ci_high']:.4f}] n={v['n']}")
    for k, s in r["agreement"].items():
        p, ic, ba, st = s["pearson"], s["icc"], s["bland_altman"]["kpa"], s["stage"]["kappa"]
        print(f"{k:20s} r {p['r']:.4f} [{p['ci_low']:.4f}, {p['ci_high']:.4f}]  ICC(2,1) {ic['icc2_1']['icc']:.4f} "
              f"[{ic['icc2_1']['ci_low']:.4f}, {ic['icc2_1']['ci_high']:.4f}]  bias {ba['bias']:+.3f} LoA "
              f"[{ba['loa_low']:+.3f}, {ba['loa_high']:+.3f}]  kappa {st['value']:.3f} "
              f"[{st['ci_low']}, {st['ci_high']}]")


if __name__ == "__main__":
    main()
