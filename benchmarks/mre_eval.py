"""MRE pipeline vs phantom truth on fresh seeds the shipped segmenter never saw (SYNTHETIC).

For every exam folder with a truth.json under --data (``liverfib phantom mre --seed S`` with a seed
never used for training or model selection):

* run the full pipeline (:func:`liverfib.pipeline.run_mre`, the shipped or given segmenter, which
  sees only the magnitude image) and read back the liver mask it wrote;
* compare its ``mean_stiffness_kpa`` and stage with the generator's truth (mean of the noise-free
  field over the true liver under the reader-style ROI, computed in :mod:`liverfib.mre.phantom`
  with numpy/scipy only, never with liverfib.mre.quantify);
* repeat the measurement with deliberately wrong masks (true liver dilated / eroded by 6 px, a
  fixed box), to show that the figure depends on finding the liver.

Reports Pearson r, ICC(2,1), Bland-Altman, MAE (bootstrap CI), stage kappa and Dice, and writes
``benchmarks/results/<--name>.json`` via :func:`liverfib.evaluation.results.write_result`
(``synthetic: true``).

Usage (CPU):
    liverfib phantom mre --n 40 --seed 3000 --variant independent --format nifti --out /tmp/mre_test
    python benchmarks/mre_eval.py --data /tmp/mre_test --name mre_phantom_independent_nifti
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _wrong_masks(liver: np.ndarray) -> dict[str, np.ndarray]:
    from scipy.ndimage import binary_dilation, binary_erosion

    st = np.ones((1, 3, 3), bool)
    box = np.zeros_like(liver)
    d, h, w = liver.shape
    box[:, int(0.25 * h):int(0.65 * h), int(0.15 * w):int(0.55 * w)] = True  # where a liver usually lies
    return {"dilated_6px": binary_dilation(liver, st, iterations=6),
            "eroded_6px": binary_erosion(liver, st, iterations=6),
            "box": box}


def _agree(auto: np.ndarray, truth: np.ndarray, stages_a: list[str], stages_t: list[str], n_boot: int) -> dict[str, Any]:
    from liverfib.evaluation.agreement import bland_altman, icc, pearson_ci
    from liverfib.evaluation.resampling import bootstrap
    from liverfib.mre.agreement import stage_agreement

    err = np.abs(auto - truth)
    mae_ci = bootstrap(err, n_boot=n_boot, min_valid=0.5)
    return {"pearson": pearson_ci(auto, truth), "icc": {f"icc{f[0]}_1": icc(np.column_stack([auto, truth]), form=f) for f in ("3,1", "2,1")}, "bland_altman": bland_altman(auto, truth),
            "mae_kpa": {"value": float(err.mean()), "ci": [mae_ci.low, mae_ci.high]}, "max_abs_error_kpa": float(err.max()),
            "stage": stage_agreement(stages_a, stages_t, n_boot=n_boot)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--name", required=True, help="result name: benchmarks/results/<name>.json")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-wrong-masks", action="store_true", help="skip the wrong-mask measurements")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from liverfib.evaluation.results import metric, write_result
    from liverfib.io.nifti import read_nifti
    from liverfib.mre.stages import stage_from_kpa
    from liverfib.evaluation.segmentation import overlap_scores
    from liverfib.pipeline import run_mre

    exams = sorted(p.parent for p in args.data.glob("*/truth.json"))
    if len(exams) < 3:
        sys.exit(f"{args.data}: need >= 3 exam folders with truth.json, found {len(exams)}")
    rows: list[dict[str, Any]] = []
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in exams:
            truth = json.loads((d / "truth.json").read_text())
            out = Path(tmp) / d.name
            t0 = time.perf_counter()
            auto, _ = run_mre(d, model=args.model, out_dir=out, overlays=False)
            times.append(time.perf_counter() - t0)
            pred = read_nifti(out / "liver_mask.nii.gz").array > 0
            true_mask = read_nifti(d / truth["liver_mask_path"]).array > 0
            row = {"exam": d.name, "truth_kpa": truth["mean_stiffness_kpa"], "truth_stage": truth["stage"],
                   "auto_kpa": auto["mean_stiffness_kpa"], "auto_stage": auto["stage"],
                   "dice": overlap_scores(pred, true_mask)["dice"], "auto_synthetic": auto["synthetic"],
                   "vendor": truth["vendor"], "variant": truth["variant"], "format": truth["format"]}
            for name, wrong in ({} if args.no_wrong_masks else _wrong_masks(true_mask)).items():
                mpath = Path(tmp) / f"{d.name}_{name}.npy"
                np.save(mpath, wrong)
                try:
                    r, _ = run_mre(d, mask=mpath, overlays=False)
                    row[f"{name}_kpa"] = r["mean_stiffness_kpa"]
                except Exception as exc:  # noqa: BLE001 - a wrong mask may leave no ROI at all
                    row[f"{name}_kpa"] = None
                    row[f"{name}_error"] = str(exc)
            rows.append(row)
            print(f"{d.name} truth {row['truth_kpa']:.2f} auto {row['auto_kpa']:.2f} dice {row['dice']:.3f}", flush=True)
    truth = np.array([r["truth_kpa"] for r in rows])
    auto = np.array([r["auto_kpa"] for r in rows])
    res = _agree(auto, truth, [r["auto_stage"] for r in rows], [r["truth_stage"] for r in rows], args.n_boot)
    dice = np.array([r["dice"] for r in rows])
    wrong = {}
    for name in ("dilated_6px", "eroded_6px", "box"):
        ok = [r for r in rows if r.get(f"{name}_kpa") is not None]
        if len(ok) >= 3:
            w = np.array([r[f"{name}_kpa"] for r in ok])
            t = np.array([r["truth_kpa"] for r in ok])
            wrong[name] = {"n": len(ok), "mae_kpa": float(np.abs(w - t).mean()),
                           "pearson_r": float(np.corrcoef(w, t)[0, 1]),
                           "stage_agreement_pct": float(np.mean([stage_from_kpa(v) == r["truth_stage"]
                                                                 for v, r in zip(w, ok, strict=True)]) * 100)}
    p, ic, ba, st = res["pearson"], res["icc"]["icc2_1"], res["bland_altman"]["kpa"], res["stage"]
    metrics = {
        "pearson_r": metric(p["r"], (p["ci_low"], p["ci_high"])),
        "icc2_1": metric(ic["icc"], (ic["ci_low"], ic["ci_high"])),
        "mae_kpa": metric(res["mae_kpa"]["value"], res["mae_kpa"]["ci"]),
        "bias_kpa": metric(ba["bias"], (ba["bias_ci_low"], ba["bias_ci_high"])),
        "loa_low_kpa": metric(ba["loa_low"]),
        "loa_high_kpa": metric(ba["loa_high"]),
        "stage_kappa": metric(st["kappa"]["value"], (st["kappa"]["ci_low"], st["kappa"]["ci_high"])),
        "stage_kappa_quadratic": metric(st["kappa_quadratic"]["value"],
                                        (st["kappa_quadratic"]["ci_low"], st["kappa_quadratic"]["ci_high"])),
        "dice_mean": metric(float(dice.mean())),
    }
    first = rows[0]
    path = write_result(
        args.name,
        title=f"MRE stiffness vs phantom truth, {first['variant']} {first['format']} phantoms (SYNTHETIC)",
        metrics=metrics, n=len(rows), unit="phantom exam", synthetic=True, subset=f"fresh seeds: {args.data}",
        test_scored_count=1, command="python " + " ".join(shlex.quote(a) for a in sys.argv),
        device=f"cpu, {args.threads} torch threads",
        extra={"truth": "generator: mean of the noise-free field over the true liver, reader-style ROI "
                        "(liverfib.mre.phantom.READER_ROI_RULE), no liverfib quantify code",
               "model": args.model, "ci_method": "Fisher z (r), F-distribution (ICC), t (bias), percentile "
               "bootstrap over exams (MAE, kappa)", "bland_altman": ba, "stage_confusion": st["confusion"],
               "percent_stage_agreement": st["percent_agreement"], "dice_min": float(dice.min()),
               "seconds_per_exam_median": float(np.median(times)), "wrong_masks": wrong, "exams": rows})
    print(f"n {len(rows)}  r {p['r']:.4f} [{p['ci_low']:.4f}, {p['ci_high']:.4f}]  ICC(2,1) {ic['icc']:.4f}  "
          f"MAE {res['mae_kpa']['value']:.3f} kPa {res['mae_kpa']['ci']}  bias {ba['bias']:+.3f} "
          f"LoA [{ba['loa_low']:+.3f}, {ba['loa_high']:+.3f}]  kappa {st['kappa']['value']:.3f}  "
          f"Dice {dice.mean():.4f} (min {dice.min():.4f})")
    for name, v in wrong.items():
        print(f"  wrong mask {name:12s} MAE {v['mae_kpa']:.3f} kPa  r {v['pearson_r']:.4f}  "
              f"stage agreement {v['stage_agreement_pct']:.0f} %")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
