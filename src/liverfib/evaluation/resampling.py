"""The one bootstrap of liverfib: percentile CIs over resamples of whole groups (clusters).

A resample is a vector of per-item counts (how often each item's group was drawn), so every
statistic is a sample-weighted statistic and B resamples are evaluated at once. :func:`bootstrap`
serves every CI in the codebase (classification metrics, overlap means, kappa, MAE); the
classification metrics of :func:`liverfib.evaluation.metrics.evaluate_probabilities` are evaluated
per resample by :func:`resample_metrics` from weighted confusion matrices and weighted rank sums,
tested to agree with scikit-learn given ``sample_weight`` to 1e-12.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from liverfib.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_THRESHOLD",
    "N_CALIBRATION_BINS",
    "PercentileCI",
    "TaskArrays",
    "bootstrap",
    "calibration",
    "resample_metrics",
    "weighted_auc",
]

#: Equal-width bins of top-class confidence for ECE and the reliability diagram.
N_CALIBRATION_BINS = 15
#: decision threshold of a binary task without a fitted one
DEFAULT_THRESHOLD = 0.5
#: binary task name -> (is_pos (N,) bool, score (N,))
TaskArrays = dict[str, tuple[np.ndarray, np.ndarray]]


def calibration(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-class confidence (N,), correctness (N,) and bin index (N,) with bins (lo, hi]."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    bins = np.clip(np.ceil(conf * N_CALIBRATION_BINS).astype(np.intp) - 1, 0, N_CALIBRATION_BINS - 1)
    return conf, correct, bins


def weighted_auc(weights: np.ndarray, is_pos: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC for each row of ``weights`` (B, N) as sample weights; NaN where undefined.

    Mann-Whitney form with ties counted one half, which equals scikit-learn's trapezoidal area.
    """
    order = np.argsort(score, kind="stable")
    s, pos = score[order], is_pos[order]
    w = weights[:, order]
    new_block = np.r_[True, s[1:] != s[:-1]]
    block = np.cumsum(new_block) - 1
    starts = np.flatnonzero(new_block)
    ends = np.r_[starts[1:], s.size]
    neg_cum = np.zeros((w.shape[0], s.size + 1))
    np.cumsum(w * ~pos, axis=1, out=neg_cum[:, 1:])
    below = neg_cum[:, starts[block]]
    tied = neg_cum[:, ends[block]] - below
    w_pos = w[:, pos].sum(axis=1)
    w_neg = neg_cum[:, -1]
    num = (w[:, pos] * (below[:, pos] + 0.5 * tied[:, pos])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((w_pos > 0) & (w_neg > 0), num / (w_pos * w_neg), np.nan)


def _indicator_columns(y: np.ndarray, probs: np.ndarray, tasks: TaskArrays, thresholds: dict[str, float]) -> np.ndarray:
    """Per-item indicators (N, K*K + 3 bins + 4 per task) whose weighted sums give every metric.

    Columns: confusion cell (true, predicted); calibration bin, its confidence and correctness;
    per task positive, negative, true positive, true negative.
    """
    n, k = probs.shape
    pred = probs.argmax(axis=1)
    conf, correct, bins = calibration(probs, y)
    bin_onehot = np.zeros((n, N_CALIBRATION_BINS))
    bin_onehot[np.arange(n), bins] = 1.0
    cols = [np.eye(k * k)[y * k + pred], bin_onehot, bin_onehot * conf[:, None], bin_onehot * correct[:, None]]
    for task, (is_pos, score) in tasks.items():
        called = score >= thresholds.get(task, DEFAULT_THRESHOLD)
        cols.append(np.stack([is_pos, ~is_pos, is_pos & called, ~is_pos & ~called], axis=1).astype(float))
    return np.concatenate(cols, axis=1)


def _confusion_metrics(cm: np.ndarray, present: np.ndarray, all_present: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, class-averaged metrics and quadratic kappa from confusion matrices (B, K, K)."""
    k = cm.shape[1]
    total = cm.sum(axis=(1, 2))
    row, col, diag = cm.sum(axis=2), cm.sum(axis=1), np.einsum("bii->bi", cm)
    recall = diag / row
    precision = np.where(col > 0, diag / col, 0.0)
    f1 = np.where(row + col > 0, 2 * diag / (row + col), 0.0)
    wq = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2.0
    observed = (cm * wq).sum(axis=(1, 2)) / total
    expected = np.einsum("bi,bj,ij->b", row, col, wq) / total**2
    return {
        "accuracy": diag.sum(axis=1) / total,
        "balanced_accuracy": _keep(recall[:, present].mean(axis=1), all_present),
        "macro_precision": _keep(precision[:, present].mean(axis=1), all_present),
        "macro_recall": _keep(recall[:, present].mean(axis=1), all_present),
        "macro_f1": _keep(f1[:, present].mean(axis=1), all_present),
        "kappa_quadratic": np.where(expected > 1e-12, 1.0 - observed / expected, np.nan),
    }


def _keep(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.where(ok, values, np.nan)


def resample_metrics(
    weights: np.ndarray,
    y: np.ndarray,
    probs: np.ndarray,
    tasks: TaskArrays,
    thresholds: dict[str, float],
    present: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every bootstrapped metric for each row of ``weights`` (B, N); NaN where a resample skips it.

    Class-averaged metrics are averaged over ``present`` (classes with labels in the full data) and
    skipped in resamples that miss any of them; task metrics are skipped without positives/negatives.
    """
    k = probs.shape[1]
    nb = N_CALIBRATION_BINS
    sums = weights @ _indicator_columns(y, probs, tasks, thresholds)
    cm = sums[:, : k * k].reshape(-1, k, k)
    all_present = (cm.sum(axis=2)[:, present] > 0).all(axis=1)
    off = k * k
    with np.errstate(invalid="ignore", divide="ignore"):
        out = _confusion_metrics(cm, present, all_present)
        counts, conf_sum, correct_sum = (sums[:, off + i * nb : off + (i + 1) * nb] for i in range(3))
        out["ece"] = np.abs(correct_sum - conf_sum).sum(axis=1) / counts.sum(axis=1)
        off += 3 * nb
        if present.size >= 2:
            per_class = np.stack([weighted_auc(weights, y == c, probs[:, c]) for c in present], axis=1)
            out["macro_auc"] = _keep(per_class.mean(axis=1), all_present)
        else:
            out["macro_auc"] = np.full(weights.shape[0], np.nan)
        for task, (is_pos, score) in tasks.items():
            n_pos, n_neg, tp, tn = sums[:, off : off + 4].T
            off += 4
            out[f"auc_{task}"] = weighted_auc(weights, is_pos, score)
            out[f"{task}_sensitivity"] = np.where(n_pos > 0, tp / n_pos, np.nan)
            out[f"{task}_specificity"] = np.where(n_neg > 0, tn / n_neg, np.nan)
    return out


@dataclass(frozen=True)
class PercentileCI:
    """A percentile bootstrap interval; ``low``/``high`` are None when too few resamples were finite."""

    low: float | None
    high: float | None
    #: resamples that gave a finite value
    n_valid: int

    def as_list(self) -> list[float] | None:
        """``[low, high]``, or None without an interval (the JSON form)."""
        return None if self.low is None or self.high is None else [self.low, self.high]


#: per-item values (N,), or resample weights (B, N) -> values (B,) or {name: values (B,)}
Statistic = np.ndarray | Sequence[float] | Callable[[np.ndarray], np.ndarray | dict[str, np.ndarray]]


def _resample_weights(codes: np.ndarray, n_groups: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Yield per-item counts (b, N) for ``n_boot`` group resamples, in memory-bounded chunks."""
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // max(codes.size, n_groups))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        counts = np.bincount((draws + n_groups * np.arange(b)[:, None]).ravel(), minlength=b * n_groups)
        yield counts.reshape(b, n_groups)[:, codes].astype(np.float64)


def bootstrap(
    stat: Statistic,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    min_valid: float = 0.0,
) -> PercentileCI | dict[str, PercentileCI]:
    """Percentile bootstrap CI of a statistic, resampling whole ``groups`` with replacement.

    ``stat`` is per-item values (N,), whose mean is the statistic, or a function of resample weights
    (B, N) returning (B,) values or a dict of them (NaN: the resample cannot give that statistic).
    ``groups`` labels the N items' clusters (names, or integer codes numbered 0..G-1); None makes
    each item its own group (per-item values only). An interval needs finite values in at least
    ``max(1, min_valid * n_boot)`` resamples. Returns one :class:`PercentileCI`, or a dict of them
    when ``stat`` returns a dict.
    """
    if n_boot < 1:
        raise ConfigError(f"Expected n_boot >= 1 resamples, got {n_boot}")
    if callable(stat):
        fn = stat
        if groups is None:
            raise InputError("bootstrap of a function needs groups (one label per item)")
    else:
        values = np.asarray(stat, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise InputError(f"expected a non-empty list of per-item values, got shape {values.shape}")

        def fn(w: np.ndarray) -> np.ndarray:
            return (w @ values) / w.sum(axis=1)

        groups = np.arange(values.size) if groups is None else groups
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    codes = codes.ravel()
    parts = [fn(w) for w in _resample_weights(codes, int(codes.max()) + 1, n_boot, seed)]
    q = [round(50 * (1 - level), 10), round(50 * (1 + level), 10)]
    if isinstance(parts[0], dict):
        return {k: _interval(np.concatenate([p[k] for p in parts]), q, min_valid * n_boot) for k in parts[0]}
    return _interval(np.concatenate(parts), q, min_valid * n_boot)


def _interval(draws: np.ndarray, q: list[float], min_valid: float) -> PercentileCI:
    finite = draws[np.isfinite(draws)]
    if finite.size < max(1.0, min_valid):
        return PercentileCI(None, None, int(finite.size))
    lo, hi = np.percentile(finite, q)
    return PercentileCI(float(lo), float(hi), int(finite.size))
