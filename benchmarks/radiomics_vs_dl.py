"""Radiomics vs deep-learning features vs their stacked fusion on the same grouped 5-fold split.

usage:
  python benchmarks/radiomics_vs_dl.py --radiomics runs/radiomics/us_fan.parquet \\
      --dl runs/features/lite0_s123.npz --split runs/splits/folds.csv \\
      --data ../shared/data/liver-us-fibrosis --out runs/radiomics/benchmark.json

Rows are distinct images (byte-identical copies collapsed; both tables are joined by sha256).
Folds are the split CSV's ``fold0..fold4`` (``liverfib split DATA --folds 5``), groups its
``group`` column (near-duplicate clusters). Every model is tuned inside each outer training part
only; the fusion stacker is fit on inner out-of-fold probabilities of the training part
(:func:`liverfib.radiomics.fusion.stack_out_of_fold`). Each base model's nested-CV result is
cached under ``<out dir>/cache/`` so an interrupted run resumes (delete the cache to recompute). The DL column is the frozen EfficientNet-Lite0
(ImageNet) stages 1-3 + final pooled features, image and flip averaged, with the scaled,
class-balanced logistic-regression head of benchmarks/cv_features.py (C grid 0.001..0.1, inner
grouped 4-fold, accuracy). Radiomics features failing the ICC(2,1) >= 0.75 robustness filter
(``<parquet>.robustness.json``, computed here on 40 images if missing) are dropped first.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np

from liverfib.dataset.fingerprint import file_sha256
from liverfib.dataset.split import read_split_csv
from liverfib.evaluation import evaluate_probabilities
from liverfib.evaluation.resampling import bootstrap
from liverfib.io import resolve_file
from liverfib.radiomics import RadiomicsConfig, read_feature_table
from liverfib.radiomics.extract import ExtractionJob
from liverfib.radiomics.fusion import stack_out_of_fold
from liverfib.radiomics.models import encode_folds, linear_learner, nested_cv, radiomics_learner

CLASSES = ["F0", "F1", "F2", "F3", "F4"]
KEYS = ["accuracy", "balanced_accuracy", "macro_auc", "auc_ge_f2", "auc_ge_f3", "auc_f4", "kappa_quadratic"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--radiomics", required=True)
    ap.add_argument("--dl", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", nargs="*", default=["lr", "rf", "svm", "gb"], help="radiomics models")
    ap.add_argument("--fusion-model", default="lr", help="radiomics model stacked with DL (pre-declared)")
    ap.add_argument("--skip-fusion", action="store_true", help="only the radiomics models (no DL, no stack)")
    ap.add_argument("--icc", type=float, default=0.75)
    ap.add_argument("--exclude", nargs="*", default=[], help="feature classes to drop, e.g. shape2D")
    ap.add_argument("--n-boot", type=int, default=1000)
    a = ap.parse_args()
    data = Path(a.data)

    rad = read_feature_table(a.radiomics)
    icc_path = Path(a.radiomics).with_suffix(".robustness.json")
    if not icc_path.is_file():
        from liverfib.pipeline.radiomics import write_robustness

        cfg = RadiomicsConfig.model_validate(__import__("yaml").safe_load(rad.config_yaml))
        jobs = [ExtractionJob(Path(p), roi="fan") for p in rad.paths]
        t0 = time.time()
        write_robustness(jobs, cfg, 40, icc_path)
        print(f"robustness on 40 images: {time.time() - t0:.0f}s", flush=True)
    icc = json.loads(icc_path.read_text())["icc"]
    robust = [n for n in rad.names if icc.get(n, 0.0) >= a.icc and n.split("_")[1] not in a.exclude]
    print(
        f"robust features: {len(robust)}/{len(rad.names)} (ICC >= {a.icc}, excluded {a.exclude})", flush=True
    )
    col = {n: j for j, n in enumerate(rad.names)}
    Xr_all = rad.values[:, [col[n] for n in robust]]

    split = {os.path.normpath(r["path"]): r for r in read_split_csv(a.split)}
    rad_rows = [split[os.path.normpath(os.path.relpath(p, data))] for p in rad.paths]
    sha_rad = {s: i for i, s in enumerate(rad.ids["sha256"])}

    d = np.load(a.dl)
    dl_sha = [file_sha256(resolve_file(data / p)) for p in d["paths"]]
    dl_index = {s: i for i, s in enumerate(dl_sha)}
    common = [s for s in rad.ids["sha256"] if s in dl_index]
    print(f"images: radiomics {len(rad.paths)}, DL {len(dl_sha)}, both {len(common)}", flush=True)
    ir = np.array([sha_rad[s] for s in common])
    idl = np.array([dl_index[s] for s in common])
    Xr = Xr_all[ir]
    Xd = d["feats"][idl].mean(axis=1).astype(np.float64)  # (N, D): image and flip averaged
    rows = [rad_rows[i] for i in ir]
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    groups = np.array([r["group"] for r in rows])
    sources = [r["source"] for r in rows]
    folds = encode_folds([r["split"] for r in rows])

    results_table: dict[str, dict] = {}
    timings: dict[str, dict] = {}

    def report(name: str, probs: np.ndarray) -> None:
        m = evaluate_probabilities(
            [CLASSES[i] for i in y], probs, CLASSES, groups=list(groups), sources=sources, n_boot=a.n_boot
        )
        results_table[name] = {
            **{k: [m[k], *(m["ci95"][k] or [None, None])] for k in KEYS},
            "per_source_accuracy": {s: v["accuracy"] for s, v in m["per_source"].items()},
            "n": m["n"],
            "n_groups": m["n_groups"],
        }
        print(name, json.dumps({k: [round(v, 3) for v in results_table[name][k]] for k in KEYS}), flush=True)

    cache = Path(a.out).parent / "cache"
    bases = {
        "dl_lite0": (Xd, linear_learner([0.001, 0.003, 0.01, 0.03, 0.1], inner_folds=4)),
        **{f"radiomics_{m}": (Xr, radiomics_learner(m)) for m in a.models},
    }
    fused = f"radiomics_{a.fusion_model}"
    results = {}
    for name, (X, learner) in bases.items():
        if a.skip_fusion and name == "dl_lite0":
            continue
        inner = not a.skip_fusion and name in ("dl_lite0", fused)
        results[name] = _cached(
            cache / f"{name}{'_inner' if inner else ''}.pkl",
            lambda X=X, learner=learner, name=name, inner=inner: _base(
                name, learner, X, y, groups, folds, inner_oof=inner, timings=timings
            ),
        )
    for name, res in results.items():
        report(name, res["probs"])
    params = {n: r["params"] for n, r in results.items()}
    if not a.skip_fusion and fused in results:
        fusion, coefs = stack_out_of_fold(
            {"radiomics": results[fused], "dl": results["dl_lite0"]}, y, folds, len(CLASSES)
        )
        report(f"fusion_{fused}+dl_lite0", fusion)
        params["stacker_coef"] = coefs
    probs_of = {n: r["probs"] for n, r in results.items()}
    if not a.skip_fusion and fused in results:
        probs_of[f"fusion_{fused}+dl_lite0"] = fusion
    paired = {}
    if "dl_lite0" in probs_of:
        for name, p in probs_of.items():
            if name != "dl_lite0":
                paired[f"{name} - dl_lite0"] = _paired(p, probs_of["dl_lite0"], y, groups, a.n_boot)
                print("paired", name, "- dl_lite0", json.dumps(paired[f"{name} - dl_lite0"]), flush=True)
    out = {
        "n_images": int(len(y)),
        "paired_differences": paired,
        "n_features_extracted": len(rad.names),
        "n_features_robust": len(robust),
        "icc_threshold": a.icc,
        "split": a.split,
        "results": results_table,
        "fold_params": params,
        "seconds": timings,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2, default=str))
    print("wrote", a.out)


def _paired(pa: np.ndarray, pb: np.ndarray, y: np.ndarray, groups: np.ndarray, n_boot: int, seed: int = 0):  # noqa: ANN202
    """Paired cluster-bootstrap of metric(A) - metric(B): point difference and 95 % CI."""
    from sklearn.metrics import roc_auc_score

    def metrics(p: np.ndarray, w: np.ndarray) -> np.ndarray:
        acc = np.average(p.argmax(1) == y, weights=w)
        macro = np.mean([roc_auc_score(y == c, p[:, c], sample_weight=w) for c in range(p.shape[1])])
        ge_f2 = roc_auc_score(y >= 2, p[:, 2:].sum(1), sample_weight=w)
        return np.array([acc, macro, ge_f2])

    names = ["accuracy", "macro_auc", "auc_ge_f2"]

    def differences(weights: np.ndarray) -> dict[str, np.ndarray]:
        d = np.array([metrics(pa, w) - metrics(pb, w) for w in weights])
        return dict(zip(names, d.T, strict=True))

    point = metrics(pa, np.ones(len(y))) - metrics(pb, np.ones(len(y)))
    ci = bootstrap(differences, groups, n_boot=n_boot, seed=seed)
    return {n: [float(point[i]), ci[n].low, ci[n].high] for i, n in enumerate(names)}


def _base(name, learner, X, y, groups, folds, *, inner_oof, timings):  # noqa: ANN001, ANN202
    print(f"nested CV: {name} (inner out-of-fold for stacking: {inner_oof})", flush=True)
    t0, c0 = time.time(), time.process_time()
    res = nested_cv(learner, X, y, groups, folds, len(CLASSES), inner_oof=inner_oof)
    timings[name] = {"wall_s": time.time() - t0, "cpu_s": time.process_time() - c0}
    return res


def _cached(path: Path, compute):  # noqa: ANN001, ANN202
    """Results of ``compute()`` stored as a pickle, so an interrupted benchmark resumes."""
    if path.is_file():
        return pickle.loads(path.read_bytes())
    res = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(res))
    return res


if __name__ == "__main__":
    main()
