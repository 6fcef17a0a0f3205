"""Classical classifiers on radiomics features and nested grouped cross-validation.

Registry (plain data): ``lr`` logistic regression, ``rf`` random forest, ``svm`` RBF SVM with
Platt probabilities, ``gb`` histogram gradient boosting; each with a small hyper-parameter grid.
A :class:`Learner` separates *tuning* (an inner grouped CV over the grid, on training rows only)
from *fitting with fixed parameters*, which is what leakage-free stacking needs
(:mod:`liverfib.radiomics.fusion`).

Folds come from the foundation's split CSV (``liverfib split --folds K``): whole near-duplicate
clusters stay on one side of every outer and inner split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liverfib.errors import ConfigError, InputError, unknown_choice

__all__ = [
    "MODELS",
    "Learner",
    "build_pipeline",
    "encode_folds",
    "linear_learner",
    "radiomics_learner",
    "nested_cv",
]


def _lr(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000, class_weight="balanced", random_state=seed)


def _rf(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=200, min_samples_leaf=2, class_weight="balanced_subsample", n_jobs=1, random_state=seed
    )


def _svm(seed: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    svc = SVC(kernel="rbf", class_weight="balanced", random_state=seed)
    return CalibratedClassifierCV(svc, method="sigmoid", ensemble=False)  # Platt scaling


def _gb(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=0.1, max_iter=100, class_weight="balanced", early_stopping=False, random_state=seed
    )


#: name -> (factory(seed) -> estimator, grid over the ``clf__`` parameters, description)
MODELS: dict[str, tuple[Callable[[int], Any], dict[str, list[Any]], str]] = {
    "lr": (_lr, {"clf__C": [0.01, 0.1, 1.0]}, "logistic regression (balanced)"),
    "rf": (_rf, {"clf__max_features": ["sqrt", 0.3]}, "random forest, 200 trees"),
    "svm": (_svm, {"clf__estimator__C": [0.3, 1.0, 3.0]}, "RBF SVM with Platt probabilities"),
    "gb": (_gb, {"clf__max_depth": [3, 6]}, "histogram gradient boosting, 100 rounds"),
}


def build_pipeline(
    model: str, *, corr_threshold: float = 0.95, lasso_c: float | None = 0.1, seed: int = 0
) -> Any:
    """Unfitted pipeline: constant filter -> correlation filter -> scale -> LASSO -> classifier."""
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from liverfib.radiomics.selection import CorrelationFilter, LassoSelector

    if model not in MODELS:
        raise unknown_choice("radiomics model", model, MODELS)
    steps: list[tuple[str, Any]] = [
        ("variance", VarianceThreshold(0.0)),
        ("corr", CorrelationFilter(corr_threshold)),
        ("scale", StandardScaler()),
    ]
    if lasso_c is not None:
        steps.append(("select", LassoSelector(lasso_c, seed)))
    steps.append(("clf", MODELS[model][0](seed)))
    return Pipeline(steps)


@dataclass(frozen=True)
class Learner:
    """A model family with a grid: ``tune`` picks parameters by inner grouped CV, ``fit`` fits them.

    ``make`` builds an unfitted estimator with ``predict_proba``; ``grid`` maps its parameter
    names to candidate values (empty: nothing to tune).
    """

    make: Callable[[], Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    inner_folds: int = 3
    scoring: str = "accuracy"
    seed: int = 0

    def tune(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
        """Best grid point by ``inner_folds``-fold StratifiedGroupKFold on these rows only."""
        if not self.grid or all(len(v) == 1 for v in self.grid.values()):
            return {k: v[0] for k, v in self.grid.items()}
        from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

        cv = StratifiedGroupKFold(self.inner_folds, shuffle=True, random_state=self.seed)
        search = GridSearchCV(self.make(), self.grid, scoring=self.scoring, cv=cv, n_jobs=1, refit=False)
        search.fit(X, y, groups=groups)
        return dict(search.best_params_)

    def fit(self, X: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> Any:
        est = self.make()
        est.set_params(**params)
        return est.fit(X, y)


def radiomics_learner(
    model: str,
    *,
    corr_threshold: float = 0.95,
    lasso_c: float | None = 0.1,
    inner_folds: int = 3,
    seed: int = 0,
) -> Learner:
    """The :class:`Learner` for a registered radiomics model."""
    if model not in MODELS:
        raise unknown_choice("radiomics model", model, MODELS)

    def make() -> Any:
        return build_pipeline(model, corr_threshold=corr_threshold, lasso_c=lasso_c, seed=seed)

    return Learner(make, dict(MODELS[model][1]), inner_folds=inner_folds, seed=seed)


def linear_learner(c_grid: Sequence[float], *, inner_folds: int = 4, seed: int = 0) -> Learner:
    """Scaled, class-balanced logistic regression with C tuned over ``c_grid`` (accuracy).

    The deep-learning feature recipe of ``benchmarks/cv_features.py`` (frozen backbone features ->
    this head); used for fused feature tables.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    def make() -> Any:
        lr = LogisticRegression(max_iter=3000, class_weight="balanced", random_state=seed)
        return Pipeline([("scale", StandardScaler()), ("clf", lr)])

    return Learner(make, {"clf__C": [float(c) for c in c_grid]}, inner_folds=inner_folds, seed=seed)


def encode_folds(split: Sequence[str]) -> np.ndarray:
    """Fold index (N,) from split names ``fold0..fold{K-1}`` (as written by ``liverfib split --folds``)."""
    names = sorted(set(split))
    if not all(n.startswith("fold") and n[4:].isdigit() for n in names) or len(names) < 2:
        raise InputError(
            f"expected a K-fold split CSV (split column fold0..fold{{K-1}}), got values {names[:6]}; "
            "create one with 'liverfib split DATA --folds 5 --out folds.csv'"
        )
    return np.array([int(s[4:]) for s in split])


def _proba_full(est: Any, X: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` spread onto all ``n_classes`` columns (a class missing in training gets 0)."""
    p = est.predict_proba(X)
    out = np.zeros((X.shape[0], n_classes))
    out[:, np.asarray(est.classes_, dtype=np.intp)] = p
    return out


def nested_cv(
    learner: Learner,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    folds: np.ndarray,
    n_classes: int,
    *,
    inner_oof: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Out-of-fold probabilities with tuning nested inside each outer training part.

    Args:
        X: ``(N, F)`` features; y: ``(N,)`` int labels 0..K-1; groups: ``(N,)`` cluster ids;
        folds: ``(N,)`` outer fold index.
        inner_oof: also return, for each outer fold k, out-of-fold probabilities on its training
            rows from an inner grouped split (same tuned parameters), for stacking.

    Returns:
        ``{"probs": (N, K), "params": [per outer fold], "inner": {k: (N, K) (NaN off training)}}``.
    """
    if X.shape[0] != y.shape[0] or y.shape != groups.shape or y.shape != folds.shape:
        raise InputError(f"X {X.shape}, y {y.shape}, groups {groups.shape}, folds {folds.shape} disagree")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS/OpenMP thread: the machine is shared, CV folds are many
        return _nested_cv(learner, X, y, groups, folds, n_classes, inner_oof, progress)


def _nested_cv(
    learner: Learner,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    folds: np.ndarray,
    n_classes: int,
    inner_oof: bool,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    probs = np.full((len(y), n_classes), np.nan)
    params: list[dict[str, Any]] = []
    inner: dict[int, np.ndarray] = {}
    outer = sorted(set(folds.tolist()))
    for step, k in enumerate(outer):
        tr, te = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        best = learner.tune(X[tr], y[tr], groups[tr])
        params.append(best)
        est = learner.fit(X[tr], y[tr], best)
        probs[te] = _proba_full(est, X[te], n_classes)
        if inner_oof:
            inner[k] = _inner_probs(learner, X, y, groups, tr, best, n_classes)
        if progress:
            progress(step + 1, len(outer))
    return {"probs": probs, "params": params, "inner": inner}


def _inner_probs(
    learner: Learner, X: np.ndarray, y: np.ndarray, groups: np.ndarray, tr: np.ndarray, params: dict, k: int
) -> np.ndarray:
    from sklearn.model_selection import StratifiedGroupKFold

    out = np.full((len(y), k), np.nan)
    cv = StratifiedGroupKFold(learner.inner_folds, shuffle=True, random_state=learner.seed + 1)
    for itr, ite in cv.split(X[tr], y[tr], groups[tr]):
        est = learner.fit(X[tr[itr]], y[tr[itr]], params)
        out[tr[ite]] = _proba_full(est, X[tr[ite]], k)
    return out


def check_model_name(name: str) -> str:
    if name not in MODELS:
        raise unknown_choice("radiomics model", name, MODELS)
    return name


def check_classes_present(y: np.ndarray, classes: Sequence[str]) -> None:
    missing = [c for i, c in enumerate(classes) if not (y == i).any()]
    if len(missing) == len(classes) - 1:
        raise ConfigError(f"training labels hold a single class; expected several of {list(classes)}")
