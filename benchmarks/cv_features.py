"""Grouped 5-fold CV of linear heads on cached features (benchmark helper).

usage: python benchmarks/cv_features.py FEATS.npz [--blocks final|all] [--C 0.1 ...] [--no-flip]
Each outer fold holds out whole near-duplicate clusters (StratifiedGroupKFold, label x source);
C is chosen by an inner grouped 4-fold CV on the training part only. Rows are distinct images.
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


def fit_predict(Xtr, ytr, gtr, Xte, Cs, seed=0):
    best, bestC = -1, Cs[0]
    if len(Cs) > 1:
        inner = StratifiedGroupKFold(4, shuffle=True, random_state=seed)
        for C in Cs:
            scores = []
            for tr, va in inner.split(Xtr, ytr, gtr):
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
    ap.add_argument("npz")
    ap.add_argument("--blocks", nargs="*", default=["final"])
    ap.add_argument("--C", type=float, nargs="*", default=[0.001, 0.003, 0.01, 0.03, 0.1])
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-source", action="store_true", help="one classifier per acquisition source")
    ap.add_argument("--dims", default="16,24,40,112,320,1280")
    a = ap.parse_args()
    d = np.load(a.npz)
    F = d["feats"]  # (N, 2, D)
    dims = [int(x) for x in a.dims.split(",")]
    pooling = str(d["pooling"]) if "pooling" in d else "mean"
    sl = block_slices(list(d["stages"]), dict(enumerate(dims[:5])), dims[5], pooling)
    cols = np.concatenate([np.arange(F.shape[2])[sl[b]] for b in a.blocks])
    X = F[:, 0, cols] if a.no_flip else F[:, :, cols].mean(1)
    y = d["labels"]
    g = d["clusters"]
    src = d["sources"]
    strata = np.array([f"{a}|{b}" for a, b in zip(y, src, strict=True)])
    probs = np.zeros((len(y), 5))
    chosen = []
    for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=a.seed).split(X, strata, g):
        if not a.per_source:
            p, C = fit_predict(X[tr], y[tr], g[tr], X[te], a.C, a.seed)
            probs[te] = p
            chosen.append(C)
            continue
        for s_ in np.unique(src):
            trs, tes = tr[src[tr] == s_], te[src[te] == s_]
            p, C = fit_predict(X[trs], y[trs], g[trs], X[tes], a.C, a.seed)
            cls = np.unique(y[trs])
            probs[np.ix_(tes, [CLASSES.index(c) for c in cls])] = p
            chosen.append(C)
    m = evaluate_probabilities(list(y), probs, CLASSES, groups=list(g), sources=list(src), n_boot=300)
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


if __name__ == "__main__":
    main()
