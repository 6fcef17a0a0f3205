"""Feature selection steps as scikit-learn transformers (fit on training folds only).

Order in every model (see :func:`liverfib.radiomics.models.build_pipeline`): drop constant
features (``VarianceThreshold``), drop one of every highly correlated pair
(:class:`CorrelationFilter`), standardise, then LASSO: keep the features with a non-zero
coefficient in an L1-penalised multinomial logistic regression (:class:`LassoSelector`). LASSO was
picked over mRMR because scikit-learn has it (mRMR would need another package or hand-written code).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["CorrelationFilter", "LassoSelector"]


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop features whose |Pearson r| with an already kept feature exceeds ``threshold``.

    Features are visited in column order (pyradiomics tables group a class's features together),
    so of a correlated pair the earlier column stays. Constant features are dropped too.
    ``support_`` is the kept-column mask (F,).
    """

    def __init__(self, threshold: float = 0.95) -> None:
        self.threshold = threshold

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> CorrelationFilter:
        X = validate_data(self, X, reset=True, dtype=np.float64)
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {self.threshold}")
        std = X.std(axis=0)
        z = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
        corr = np.abs(z.T @ z) / max(X.shape[0], 1)
        keep: list[int] = []
        for j in range(X.shape[1]):
            if std[j] == 0:
                continue
            if all(corr[j, i] <= self.threshold for i in keep):
                keep.append(j)
        self.support_ = np.zeros(X.shape[1], dtype=bool)
        self.support_[keep] = True
        return self

    def _get_support_mask(self) -> np.ndarray:  # SelectorMixin gives transform/get_support
        check_is_fitted(self, "support_")
        return self.support_


class LassoSelector(SelectorMixin, BaseEstimator):
    """Keep features with a non-zero coefficient in an L1 multinomial logistic regression.

    Expects standardised input. If the penalty zeroes every feature (no signal at this ``C``),
    the single feature with the largest ANOVA F statistic is kept, so the classifier downstream
    always gets an input (documented fallback, not a silent change: ``fallback_`` is True).
    """

    def __init__(self, C: float = 0.1, seed: int = 0) -> None:
        self.C = C
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> LassoSelector:
        from sklearn.feature_selection import f_classif
        from sklearn.linear_model import LogisticRegression

        X = validate_data(self, X, reset=True, dtype=np.float64)
        l1 = LogisticRegression(
            l1_ratio=1.0,
            solver="saga",
            C=self.C,
            max_iter=3000,
            class_weight="balanced",
            random_state=self.seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            l1.fit(X, y)
        self.support_ = np.abs(l1.coef_).max(axis=0) > 1e-8
        self.fallback_ = not self.support_.any()
        if self.fallback_:
            with np.errstate(invalid="ignore", divide="ignore"):
                f, _ = f_classif(X, y)
            self.support_[int(np.nanargmax(np.nan_to_num(f, nan=-1.0)))] = True
        return self

    def _get_support_mask(self) -> np.ndarray:  # SelectorMixin gives transform/get_support
        check_is_fitted(self, "support_")
        return self.support_
