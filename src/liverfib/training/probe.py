"""The linear probe of ultrasound staging: a class-balanced logistic regression on frozen features.

Features are the backbone's multi-scale pooled features (optionally flip-averaged, or with
augmented views as extra rows), standardised; ``C`` is chosen on the validation rows by macro-AUC;
scaler and coefficients go into the network's buffers and linear head (see :mod:`.staging`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["augmented_rows", "cv_probe", "features", "fit_linear", "fit_probe", "head_probs", "refit_probe", "set_head"]

#: number of METAVIR stages F0..F4 (ordinal heads fit one model per threshold between them)
_N_STAGES = 5


def features(net: Any, images: np.ndarray, pre: Any, flip: bool, batch: int = 32) -> np.ndarray:
    """Pooled backbone features (N, F) of uint8 images (N, S, S); ``flip`` averages with the mirror image."""
    import torch

    from liverfib.progress import Progress

    feats = []
    with Progress(len(images), "features", "img") as bar:
        for s in range(0, len(images), batch):
            x = torch.from_numpy(np.stack([pre.normalise(im) for im in images[s : s + batch]]))
            with torch.inference_mode():
                f = net.pooled_features(x)
                if flip:
                    f = 0.5 * (f + net.pooled_features(x.flip(-1)))
            feats.append(f.numpy())
            bar.update(len(x))
    return np.concatenate(feats)


def augmented_rows(
    net: Any, images: np.ndarray, y: np.ndarray, pre: Any, views: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of the clean image, its flip and ``views`` augmented views, with their labels."""
    from liverfib.preprocess.augment import build_us_augment

    aug = build_us_augment(seed)
    blocks = [features(net, images, pre, flip=False), features(net, images[:, :, ::-1].copy(), pre, flip=False)]
    for _ in range(views):
        blocks.append(features(net, np.stack([aug(im) for im in images]), pre, flip=False))
    return np.concatenate(blocks), np.tile(y, len(blocks))


def fit_linear(
    X: np.ndarray, y: np.ndarray, C: float, head: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the head on standardised features; returns (weight (out, F), bias (out,))."""
    from sklearn.linear_model import LogisticRegression

    if head == "ordinal":  # Frank & Hall: one binary model per threshold P(y > k)
        ws, bs = [], []
        for k in range(_N_STAGES - 1):
            t = (y > k).astype(int)
            m = LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=seed).fit(X, t)
            ws.append(m.coef_[0])
            bs.append(m.intercept_[0])
        return np.stack(ws), np.array(bs)
    m = LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=seed).fit(X, y)
    return m.coef_, m.intercept_


def set_head(net: Any, mean: np.ndarray, std: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
    """Write the feature scaler and the probe's weights (out, F) and bias (out,) into ``net``."""
    import torch

    linear = net.head[-1]
    with torch.no_grad():
        net.feat_mean.copy_(torch.from_numpy(mean))
        net.feat_std.copy_(torch.from_numpy(std))
        if net.head_kind == "mlp":  # a linear probe cannot initialise an MLP; fine-tuning learns it
            return
        linear.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        linear.bias.copy_(torch.from_numpy(b.astype(np.float32)))


def head_probs(X: np.ndarray, w: np.ndarray, b: np.ndarray, head: str) -> np.ndarray:
    """Class probabilities (N, K) of the probe on standardised features ``X`` (N, F)."""
    import torch

    from liverfib.models.staging import ordinal_to_probs

    z = torch.from_numpy(X @ w.T + b).float()
    p = ordinal_to_probs(z) if head == "ordinal" else torch.softmax(z, dim=1)
    p = p / p.sum(dim=1, keepdim=True)
    return p.numpy().astype(np.float64)


def fit_probe(
    net: Any, X_tr: np.ndarray, y_fit: np.ndarray, X_va: np.ndarray, y_va: np.ndarray, cfg: Any,
    log: list[dict[str, Any]], t0: float,
) -> tuple[float, float]:
    """Fit the probe for each ``cfg.C_grid`` value, keep the best on validation macro-AUC, write it
    into ``net``; one ``log`` row per C. Returns ``(validation macro-AUC, C)`` of the kept probe."""
    from liverfib.training.finetune import macro_auc

    mean, std = X_tr.mean(0), X_tr.std(0) + 1e-6
    Z_tr, Z_va = (X_tr - mean) / std, (X_va - mean) / std
    best = (-1.0, cfg.C_grid[0], None, None)
    for C in cfg.C_grid:
        w, b = fit_linear(Z_tr, y_fit, C, cfg.head, cfg.seed)
        p_va = head_probs(Z_va, w, b, cfg.head)
        auc = macro_auc(y_va, p_va)
        acc = float(np.mean(p_va.argmax(1) == y_va))
        log.append(
            {
                "phase": "probe",
                "C": C,
                "epoch": 0,
                "val_macro_auc": auc,
                "val_accuracy": acc,
                "seconds": round(time.time() - t0, 1),
            }
        )
        if auc > best[0]:
            best = (auc, C, w, b)
    best_auc, best_C, w, b = best
    set_head(net, mean.astype(np.float32), std.astype(np.float32), w, b)
    return best_auc, best_C


def refit_probe(net: Any, X: np.ndarray, y: np.ndarray, C: float, head: str, seed: int) -> None:
    """Refit the probe with the chosen ``C`` on all rows ``X`` (N, F) and write it into ``net``."""
    mean, std = X.mean(0), X.std(0) + 1e-6
    w, b = fit_linear((X - mean) / std, y, C, head, seed)
    set_head(net, mean.astype(np.float32), std.astype(np.float32), w, b)


def cv_probe(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, strata: np.ndarray, C_grid: tuple[float, ...],
    head: str, seed: int, folds: int = 5,
) -> tuple[float, np.ndarray, list[dict[str, Any]]]:
    """Choose ``C`` by grouped K-fold CV over all rows (no validation split needed).

    Folds hold out whole ``groups`` (same-scan clusters), stratified by ``strata``; each fold's
    scaler and head are fitted on the other folds only. ``C`` maximises the macro-AUC of the
    out-of-fold probabilities. Returns ``(C, out-of-fold probabilities (N, K) at that C, one log
    row per C)``.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    from liverfib.errors import InputError
    from liverfib.training.finetune import macro_auc

    splits = list(StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, strata, groups))
    for tr, _ in splits:
        if len(np.unique(y[tr])) < _N_STAGES:
            raise InputError(f"a {folds}-fold CV training part lacks a stage; use fewer --cv-folds or more groups")
    best: tuple[float, float, np.ndarray | None] = (-1.0, C_grid[0], None)
    log = []
    for C in C_grid:
        oof = np.zeros((len(y), _N_STAGES))
        for tr, te in splits:
            mean, std = X[tr].mean(0), X[tr].std(0) + 1e-6
            w, b = fit_linear((X[tr] - mean) / std, y[tr], C, head, seed)
            oof[te] = head_probs((X[te] - mean) / std, w, b, head)
        auc = macro_auc(y, oof)
        log.append({"phase": "cv-probe", "C": C, "epoch": 0, "cv_macro_auc": auc,
                    "cv_accuracy": float(np.mean(oof.argmax(1) == y))})
        if auc > best[0]:
            best = (auc, C, oof)
    return best[1], best[2], log
