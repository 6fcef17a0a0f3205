"""Metrics for stage predictions: class probabilities (N, K) against true labels.

Class names are METAVIR ``F0..F4`` (ultrasound), LiQA ``S1..S4`` (MRI) or CirrMRI600+
``mild, moderate, severe``; the binary tasks (``ge_f2``, ``ge_f3``, ``f4``) are defined on the
METAVIR names, and LiQA's ``S2``/``S3``/``S4`` stand in for ``F2``/``F3``/``F4`` (LiQA grades
S2-S4 vs S1 as substantial fibrosis and S4 vs S1-S3 as cirrhosis), so ``auc_ge_f2`` of an
``S1..S4`` CSV is the LiQA "S2-S4 vs S1" AUC and ``auc_f4`` the "S4 vs S1-S3" AUC. The CirrMRI600+
grades are all cirrhosis: no binary task applies, the multi-class metrics do.

Point estimates come from scikit-learn. Confidence intervals come from a percentile bootstrap that
draws whole *groups* (clusters of near-duplicate images, or patients) with replacement, evaluated
for all resamples at once (:mod:`liverfib.evaluation.resampling`; ~1000x faster than calling
scikit-learn per resample, and tested to agree with it to 1e-12).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from liverfib.errors import ConfigError, InputError, unknown_choice
from liverfib.evaluation._inputs import STAGE_ORDER, check_inputs, check_same_length
from liverfib.evaluation.agreement import kappa_from_codes
from liverfib.evaluation.predictions_csv import read_predictions_csv
from liverfib.evaluation.resampling import (
    DEFAULT_THRESHOLD,
    N_CALIBRATION_BINS,
    PercentileCI,
    TaskArrays,
    bootstrap,
    calibration,
    resample_metrics,
)

__all__ = [
    "BINARY_TASKS",
    "N_CALIBRATION_BINS",
    "binary_tasks",
    "evaluate_probabilities",
    "fit_thresholds",
    "read_predictions_csv",
]

#: Clinical binary tasks: name -> (anchor class, positives are anchor *and above* in class order).
BINARY_TASKS: dict[str, tuple[str, bool]] = {
    "ge_f2": ("F2", True),  # significant fibrosis, P(>=F2) = p(F2) + p(F3) + p(F4)
    "ge_f3": ("F3", True),  # advanced fibrosis
    "f4": ("F4", False),  # cirrhosis
}
#: Binary-task anchor -> the LiQA stage that stands in for it when the classes are S1..S4.
_LIQA_ANCHORS = {"F2": "S2", "F3": "S3", "F4": "S4"}
#: task -> (is_positive (N,) bool, score (N,) float)
_CI_SCALARS = (
    "accuracy",
    "balanced_accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "macro_auc",
    "kappa_quadratic",
    "ece",
)


def _task_definition(task: str, classes: list[str]) -> np.ndarray | None:
    """Boolean mask (K,) of the positive classes of ``task``; None if its anchor class is missing."""
    anchor, and_above = BINARY_TASKS[task]
    if anchor not in classes and not any(c in classes for c in STAGE_ORDER):
        anchor = _LIQA_ANCHORS.get(anchor, anchor)
    if anchor not in classes:
        return None
    idx = classes.index(anchor)
    mask = np.zeros(len(classes), dtype=bool)
    if and_above:
        mask[idx:] = True
    else:
        mask[idx] = True
    return mask


def _task_arrays(y: np.ndarray, probs: np.ndarray, classes: list[str]) -> TaskArrays:
    out = {}
    for task in BINARY_TASKS:
        mask = _task_definition(task, classes)
        if mask is not None:
            out[task] = (mask[y], probs[:, mask].sum(axis=1))
    return out


def binary_tasks(y_true: Sequence[str], probs: np.ndarray, classes: Sequence[str]) -> TaskArrays:
    """Clinical binary tasks: ``task -> (is_positive (N,) bool, score (N,) float)``.

    ``classes`` must be in ascending stage order; ``ge_f2`` scores P(>=F2) as the sum of the
    probabilities of F2 and every later class. LiQA classes ``S1..S4`` use S2, S3, S4 as the
    anchors. Tasks whose anchor class (F2, F3, F4) is not in ``classes`` are left out.
    """
    y, p, names = check_inputs(y_true, probs, classes)
    return _task_arrays(y, p, names)


def _check_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    if thresholds is None:
        return {}
    out = {}
    for task, value in thresholds.items():
        if task not in BINARY_TASKS:
            raise unknown_choice("binary task in thresholds", str(task), BINARY_TASKS)
        try:
            thr = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"Expected a number as threshold for {task}, got {value!r}") from None
        if not math.isfinite(thr):
            raise ConfigError(f"Expected a finite threshold for {task}, got {value!r}")
        out[task] = thr
    return out


def _group_index(groups: list[str] | None, n: int) -> tuple[np.ndarray, int]:
    """Group id per item, numbered by first appearance, and the number of groups."""
    if groups is None:
        return np.arange(n), n
    _, first, inverse = np.unique(np.asarray(groups, dtype=object), return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.intp)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()], int(first.size)


# ------------------------------------------------------------------------------------ point metrics
def _float_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _auc_or_none(is_pos: np.ndarray, score: np.ndarray) -> float | None:
    if is_pos.all() or not is_pos.any():
        return None
    return float(roc_auc_score(is_pos, score))


def _macro_auc(y: np.ndarray, probs: np.ndarray, k: int) -> tuple[dict[int, float | None], float | None]:
    per_class = {c: _auc_or_none(y == c, probs[:, c]) for c in range(k)}
    defined = [v for v in per_class.values() if v is not None]
    return per_class, (float(np.mean(defined)) if defined else None)


def _reliability(conf: np.ndarray, correct: np.ndarray, bins: np.ndarray) -> tuple[float, dict[str, dict]]:
    table: dict[str, dict] = {}
    ece = 0.0
    for b in range(N_CALIBRATION_BINS):
        lo, hi = b / N_CALIBRATION_BINS, (b + 1) / N_CALIBRATION_BINS
        members = bins == b
        count = int(members.sum())
        mean_conf = float(conf[members].mean()) if count else None
        acc = float(correct[members].mean()) if count else None
        if count:
            ece += count / conf.size * abs(acc - mean_conf)
        table[f"{lo:.3f}-{hi:.3f}"] = {
            "lower": lo,
            "upper": hi,
            "mean_confidence": mean_conf,
            "accuracy": acc,
            "count": count,
        }
    return float(ece), table


def _binary_entry(is_pos: np.ndarray, score: np.ndarray, threshold: float, source: str) -> dict[str, Any]:
    called = score >= threshold
    n_pos, n_neg = int(is_pos.sum()), int((~is_pos).sum())
    return {
        "auc": _auc_or_none(is_pos, score),
        "threshold": threshold,
        "threshold_source": source,
        "sensitivity": float(recall_score(is_pos, called, pos_label=True)) if n_pos else None,
        "specificity": float(recall_score(is_pos, called, pos_label=False)) if n_neg else None,
        "n_positive": n_pos,
        "n_negative": n_neg,
    }


def _per_source(y: np.ndarray, pred: np.ndarray, probs: np.ndarray, sources: list[str], k: int) -> dict:
    src = np.asarray(sources, dtype=object)
    out = {}
    for name in dict.fromkeys(sources):  # first-appearance order
        m = src == name
        ys, ps = y[m], pred[m]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # predicted classes absent from this source's labels
            bacc = float(balanced_accuracy_score(ys, ps))
        out[name] = {
            "n": int(m.sum()),
            "accuracy": float(accuracy_score(ys, ps)),
            "balanced_accuracy": bacc,
            "macro_auc": _macro_auc(ys, probs[m], k)[1],
        }
    return out


# ----------------------------------------------------------------------------------------- public
def evaluate_probabilities(
    y_true: Sequence[str],
    probs: np.ndarray,
    classes: Sequence[str],
    *,
    groups: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate class probabilities ``probs`` (N, K) against labels ``y_true`` (N,).

    ``classes`` names the K columns in ascending stage order (e.g. F0..F4). The predicted class is
    the argmax. Class-averaged metrics (balanced accuracy, macro precision/recall/F1/AUC) average
    over the classes that occur in ``y_true``. Binary tasks call positive when score >= threshold,
    with thresholds from ``thresholds`` (fit them on validation data with :func:`fit_thresholds`)
    or 0.5. ``ci95`` holds percentile-bootstrap intervals from ``n_boot`` resamples of whole
    ``groups`` (each item its own group when None); a resample that lacks a class needed by a
    metric is skipped for that metric (see ``n_boot_effective``). Returns a JSON-ready dict.
    """
    y, p, names = check_inputs(y_true, probs, classes)
    n, k = p.shape
    group_list = check_same_length(groups, n, "groups")
    source_list = check_same_length(sources, n, "sources")
    thr = _check_thresholds(thresholds)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise ConfigError(f"Expected n_boot as an integer >= 0, got {n_boot!r}")

    pred = p.argmax(axis=1)
    present = np.flatnonzero(np.bincount(y, minlength=k) > 0)
    tasks = _task_arrays(y, p, names)
    result: dict[str, Any] = {"n": int(n), "classes": names, **_class_metrics(y, pred, p, names, present)}
    binary = _binary_results(tasks, thr, names)
    result.update({f"auc_{task}": entry["auc"] if entry else None for task, entry in binary.items()})
    result["binary"] = binary
    result["ece"], result["reliability"] = _reliability(*calibration(p, y))
    result["confusion_matrix"] = confusion_matrix(y, pred, labels=list(range(k))).tolist()
    result["per_source"] = _per_source(y, pred, p, source_list, k) if source_list is not None else None

    group, n_groups = _group_index(group_list, n)
    ci95, effective = _resampled_intervals(y, p, tasks, thr, present, group, n_boot, seed)
    result["ci95"] = ci95
    result["n_boot"] = int(n_boot)
    result["n_boot_effective"] = effective
    result["bootstrap_unit"] = "group" if group_list is not None else "item"
    result["n_groups"] = n_groups
    result["seed"] = int(seed)
    return result


def _class_metrics(y: np.ndarray, pred: np.ndarray, p: np.ndarray, names: list[str], present: np.ndarray) -> dict[str, Any]:
    """Multi-class point metrics; class averages over the ``present`` classes."""
    prec, rec, f1, _ = precision_recall_fscore_support(
        y, pred, labels=present, average="macro", zero_division=0
    )
    per_class_auc, macro_auc = _macro_auc(y, p, len(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # predicted classes that never occur in y_true
        bacc = float(balanced_accuracy_score(y, pred))
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": bacc,
        "macro_precision": float(prec),
        "macro_recall": float(rec),
        "macro_f1": float(f1),
        "macro_auc": macro_auc,
        "auc_per_class": {names[c]: v for c, v in per_class_auc.items()},
        "kappa_quadratic": kappa_from_codes(y, pred, len(names), "quadratic"),
    }


def _binary_results(tasks: TaskArrays, thr: dict[str, float], names: list[str]) -> dict[str, dict[str, Any] | None]:
    """Per binary task: AUC, threshold, sensitivity, specificity; None where the task does not apply."""
    binary: dict[str, dict[str, Any] | None] = {}
    for task in BINARY_TASKS:
        if task not in tasks:
            binary[task] = None
            continue
        source = "given" if task in thr else "default_0.5"
        entry = _binary_entry(*tasks[task], thr.get(task, DEFAULT_THRESHOLD), source)
        entry["positive_classes"] = [names[i] for i in np.flatnonzero(_task_definition(task, names))]
        binary[task] = entry
    return binary


def _resampled_intervals(
    y: np.ndarray, p: np.ndarray, tasks: TaskArrays, thr: dict[str, float], present: np.ndarray,
    group: np.ndarray, n_boot: int, seed: int,
) -> tuple[dict[str, list[float] | None], dict[str, int]]:
    """95 % CI and number of usable resamples per CI metric (None and 0 without resamples)."""
    ci_names = list(_CI_SCALARS) + [f"auc_{t}" for t in BINARY_TASKS]
    ci_names += [f"{t}_{m}" for t in BINARY_TASKS for m in ("sensitivity", "specificity")]
    intervals = cast(dict[str, PercentileCI], bootstrap(
        lambda w: resample_metrics(w, y, p, tasks, thr, present), group, n_boot=n_boot, seed=seed
    ) if n_boot else {})
    ci95 = {name: intervals[name].as_list() if name in intervals else None for name in ci_names}
    effective = {name: intervals[name].n_valid if name in intervals else 0 for name in ci_names}
    return ci95, effective


def fit_thresholds(y_true: Sequence[str], probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Youden-J optimal threshold (max sensitivity + specificity - 1) per binary task.

    Fit on VALIDATION predictions and pass the result to :func:`evaluate_probabilities` on test;
    positives are called at score >= threshold. Ties in J go to the highest threshold.
    """
    y, p, names = check_inputs(y_true, probs, classes)
    tasks = _task_arrays(y, p, names)
    if not tasks:
        raise ConfigError(f"Expected classes including F2, F3 or F4 (or S2, S3, S4) for the binary tasks, got {names}")
    out = {}
    for task, (is_pos, score) in tasks.items():
        if is_pos.all() or not is_pos.any():
            kind = "negatives" if is_pos.all() else "positives"
            raise InputError(f"Cannot fit the {task} threshold: validation labels have no {kind}")
        fpr, tpr, thr = roc_curve(is_pos, score)
        finite = np.isfinite(thr)  # the first roc_curve threshold is +inf (call nothing positive)
        j = np.where(finite, tpr - fpr, -np.inf)
        out[task] = float(thr[int(np.argmax(j))])
    return out
