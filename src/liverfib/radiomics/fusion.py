"""Stacking fusion of several base models (radiomics, deep-learning features, clinical variables).

Leakage-free by construction: for every outer fold k the stacker (a multinomial logistic
regression on the base models' log-probabilities) is fit on *inner* out-of-fold probabilities of
the training rows, produced by base models that never saw fold k nor the row being predicted; it
is then applied to the outer out-of-fold probabilities of fold k (base models fit on all training
rows). Base-model hyper-parameters are tuned on the training rows of fold k only
(:func:`liverfib.radiomics.models.nested_cv`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.radiomics.models import Learner, nested_cv

__all__ = ["nested_stacking", "stack_features", "stack_out_of_fold"]

_EPS = 1e-6


def stack_features(prob_blocks: list[np.ndarray]) -> np.ndarray:
    """Stacker input ``(N, B*K)``: log-probabilities of the B base models side by side."""
    return np.concatenate([np.log(np.clip(p, _EPS, 1.0)) for p in prob_blocks], axis=1)


def _stacker(seed: int, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000, class_weight="balanced", random_state=seed)


def nested_stacking(
    blocks: Mapping[str, tuple[np.ndarray, Learner]],
    y: np.ndarray,
    groups: np.ndarray,
    folds: np.ndarray,
    n_classes: int,
    *,
    stacker_c: float = 1.0,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Out-of-fold probabilities of each base model and of their stacked fusion.

    Args:
        blocks: name -> (features ``(N, F_b)``, learner); rows aligned with ``y``.
        y: ``(N,)`` int labels; groups: ``(N,)`` clusters; folds: ``(N,)`` outer fold index.

    Returns:
        ``{"base": {name: (N, K)}, "fusion": (N, K), "params": {name: [...]},
        "stacker_coef": [per fold (K, B*K)]}``.
    """
    if not blocks:
        raise InputError("stacking needs at least one base model")
    results = {}
    for name, (X, learner) in blocks.items():
        if progress:
            progress(name)
        results[name] = nested_cv(learner, X, y, groups, folds, n_classes, inner_oof=True)
    names = list(blocks)
    fusion, coefs = stack_out_of_fold(results, y, folds, n_classes, stacker_c=stacker_c, seed=seed)
    return {
        "base": {n: results[n]["probs"] for n in names},
        "fusion": fusion,
        "params": {n: results[n]["params"] for n in names},
        "stacker_coef": coefs,
        "blocks": names,
    }


def stack_out_of_fold(
    results: Mapping[str, dict[str, Any]],
    y: np.ndarray,
    folds: np.ndarray,
    n_classes: int,
    *,
    stacker_c: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, list[list[list[float]]]]:
    """Fused out-of-fold probabilities ``(N, K)`` from base results of ``nested_cv(..., inner_oof=True)``.

    For each outer fold k the stacker is fit on the base models' *inner* out-of-fold probabilities
    of the training rows and applied to their outer out-of-fold probabilities of fold k.
    Returns the fused probabilities and the stacker coefficients per fold.
    """
    names = list(results)
    fusion = np.full((len(y), n_classes), np.nan)
    coefs = []
    for k in sorted(set(folds.tolist())):
        tr, te = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        z_tr = stack_features([results[n]["inner"][k][tr] for n in names])
        z_te = stack_features([results[n]["probs"][te] for n in names])
        if not np.isfinite(z_tr).all():
            raise InputError(f"fold {k}: inner out-of-fold probabilities missing for some training rows")
        st = _stacker(seed, stacker_c).fit(z_tr, y[tr])
        p = np.zeros((len(te), n_classes))
        p[:, st.classes_] = st.predict_proba(z_te)
        fusion[te] = p
        coefs.append(st.coef_.tolist())
    return fusion, coefs
