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

``--per-mask PREFIX`` scores the pipeline's kPa once per liver mask kind -- ``true`` (the
generator's liver), ``segmenter`` (the model's own mask, the default pipeline), ``dilated`` /
``eroded`` (true liver dilated / eroded by 6 px in-plane) and ``box`` (a fixed box where a liver
usually lies) -- and writes one result per kind, ``benchmarks/results/<PREFIX>_<kind>.json``: MAE vs
truth, bias, Pearson r, stage agreement (%) and kappa with CIs, Dice of the mask, n. An exam where a
mask leaves no valid ROI is not scored for that kind (listed under ``extra.failed``).

Usage (CPU):
    liverfib phantom mre --n 40 --seed 3000 --variant independent --format nifti --out /tmp/mre_test
    python benchmarks/mre_eval.py --data /tmp/mre_test --name mre_phantom_independent_nifti
    liverfib phantom mre --n 10 --seed 4000 --variant independent --format nifti --out /tmp/mre_mask
    python benchmarks/mre_eval.py --data /tmp/mre_mask --per-mask mre_independent_mask
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


#: mask kind of ``--per-mask`` -> (row key of its kPa, what the mask is)
MASK_KINDS = {
    "true": ("true_kpa", "the generator's true liver mask (no segmentation error)"),
    "segmenter": ("auto_kpa", "the segmenter's own mask (the default pipeline)"),
    "dilated": ("dilated_6px_kpa", "true liver dilated by 6 px (9.6 mm) in-plane"),
    "eroded": ("eroded_6px_kpa", "true liver eroded by 6 px (9.6 mm) in-plane"),
    "box": ("box_kpa", "a fixed box (rows 25-65 %, columns 15-55 %) where a liver usually lies"),
}


def _measure_with_mask(run_mre: Any, d: Path, mask: np.ndarray, mpath: Path) -> tuple[float | None, str | None]:
    """The pipeline's kPa on exam ``d`` with its liver mask replaced by ``mask`` (None + error if no ROI)."""
    np.save(mpath, mask)
    try:
        r, _ = run_mre(d, mask=mpath, overlays=False)
        return r["mean_stiffness_kpa"], None
    except Exception as exc:  # noqa: BLE001 - a wrong mask may leave no ROI at all
        return None, str(exc)


def _kind_metrics(rows: list[dict[str, Any]], key: str, n_boot: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics of one mask kind over the exams it could be measured on, and those rows."""
    from liverfib.evaluation.agreement import bland_altman, pearson_ci
    from liverfib.evaluation.resampling import bootstrap
    from liverfib.evaluation.results import metric
    from liverfib.mre.agreement import stage_agreement
    from liverfib.mre.stages import stage_from_kpa

    ok = [r for r in rows if r.get(key) is not None]
    kpa = np.array([r[key] for r in ok])
    truth = np.array([r["truth_kpa"] for r in ok])
    err = np.abs(kpa - truth)
    stages = [stage_from_kpa(v) for v in kpa]
    agree = np.array([s == r["truth_stage"] for s, r in zip(stages, ok, strict=True)], float) * 100
    mae_ci, agree_ci = bootstrap(err, n_boot=n_boot), bootstrap(agree, n_boot=n_boot)
    p, ba = pearson_ci(kpa, truth), bland_altman(kpa, truth)["kpa"]
    st = stage_agreement(stages, [r["truth_stage"] for r in ok], n_boot=n_boot)
    dice_key = key.replace("_kpa", "_dice")
    dice = np.array([r[dice_key] for r in ok])
    return {
        "mae_kpa": metric(float(err.mean()), mae_ci.as_list()),
        "bias_kpa": metric(ba["bias"], (ba["bias_ci_low"], ba["bias_ci_high"])),
        "pearson_r": metric(p["r"], (p["ci_low"], p["ci_high"])),
        "stage_agreement_pct": metric(float(agree.mean()), agree_ci.as_list()),
        "stage_kappa": metric(st["kappa"]["value"], (st["kappa"]["ci_low"], st["kappa"]["ci_high"])),
        "mask_dice": metric(float(dice.mean())),
    }, ok


def _write_per_mask(prefix: str, rows: list[dict[str, Any]], args: argparse.Namespace, times: list[float]) -> None:
    """One result JSON per mask kind: ``benchmarks/results/<prefix>_<kind>.json``."""
    from liverfib.evaluation.results import write_result

    first = rows[0]
    for kind, (key, what) in MASK_KINDS.items():
        metrics, ok = _kind_metrics(rows, key, args.n_boot)
        failed = [{"exam": r["exam"], "error": r.get(key.replace("_kpa", "_error"))} for r in rows if r not in ok]
        path = write_result(
            f"{prefix}_{kind}",
            title=f"MRE kPa with {kind} liver mask vs truth, {first['variant']} {first['format']} phantoms",
            metrics=metrics, n=len(ok), unit="phantom exam", synthetic=True, subset=f"fresh seeds: {args.data}",
            test_scored_count=1, command="python " + " ".join(shlex.quote(a) for a in sys.argv),
            device=f"cpu, {args.threads} torch threads",
            extra={"mask": what, "truth": "generator: mean of the noise-free field over the true liver, reader-style "
                   "ROI (liverfib.mre.phantom.READER_ROI_RULE), no liverfib quantify code", "model": args.model,
                   "ci_method": "percentile bootstrap over exams (MAE, stage agreement, kappa), Fisher z (r), "
                   "t (bias)", "failed": failed, "seconds_per_exam_median": float(np.median(times)),
                   "exams": [{"exam": r["exam"], "truth_kpa": r["truth_kpa"], "truth_stage": r["truth_stage"],
                              "kpa": r[key], "mask_dice": r[key.replace("_kpa", "_dice")]} for r in ok]})
        m = metrics
        print(f"mask {kind:9s} n {len(ok):2d}  MAE {m['mae_kpa']['value']:.3f} {m['mae_kpa']['ci']}  "
              f"bias {m['bias_kpa']['value']:+.3f}  r {m['pearson_r']['value']:.4f}  "
              f"stage agreement {m['stage_agreement_pct']['value']:.0f} % {m['stage_agreement_pct']['ci']}  "
              f"Dice {m['mask_dice']['value']:.3f}  -> {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--name", help="result name: benchmarks/results/<name>.json (the segmenter's figures)")
    ap.add_argument("--per-mask", metavar="PREFIX",
                    help="instead: one result per mask kind, benchmarks/results/<PREFIX>_<kind>.json")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-wrong-masks", action="store_true", help="skip the wrong-mask measurements")
    args = ap.parse_args()
    if (args.name is None) == (args.per_mask is None):
        sys.exit("pass exactly one of --name and --per-mask")

    import torch

    torch.set_num_threads(args.threads)
    from liverfib.evaluation.results import metric, write_result
    from liverfib.evaluation.segmentation import overlap_scores
    from liverfib.io.nifti import read_nifti
    from liverfib.mre.stages import stage_from_kpa
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
            masks = {} if args.no_wrong_masks and not args.per_mask else _wrong_masks(true_mask)
            if args.per_mask:
                masks = {"true": true_mask, **masks}
                row["auto_dice"] = row["dice"]
            for name, wrong in masks.items():
                kpa, error = _measure_with_mask(run_mre, d, wrong, Path(tmp) / f"{d.name}_{name}.npy")
                row[f"{name}_kpa"] = kpa
                row[f"{name}_dice"] = overlap_scores(wrong, true_mask)["dice"]
                if error is not None:
                    row[f"{name}_error"] = error
            rows.append(row)
            print(f"{d.name} truth {row['truth_kpa']:.2f} auto {row['auto_kpa']:.2f} dice {row['dice']:.3f}", flush=True)
    if args.per_mask:
        _write_per_mask(args.per_mask, rows, args, times)
        return
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
