"""Metrics against scikit-learn on hand-made cases, the group bootstrap, thresholds and the CSV reader."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
)

from liverfib.errors import ConfigError, InputError
from liverfib.evaluation import evaluate_probabilities, fit_thresholds, read_predictions_csv
from liverfib.evaluation.metrics import _reliability, _task_arrays
from liverfib.evaluation.resampling import resample_metrics as _resample_metrics

CLASSES = ["F0", "F1", "F2", "F3", "F4"]

# 12 hand-written predictions with ordinal mistakes; argmax in the comment.
HAND_LABELS = ["F0", "F0", "F1", "F1", "F1", "F2", "F2", "F3", "F3", "F4", "F4", "F2"]
HAND_PROBS = np.array(
    [
        [0.7, 0.2, 0.1, 0.0, 0.0],  # F0
        [0.3, 0.5, 0.1, 0.1, 0.0],  # F1
        [0.2, 0.6, 0.1, 0.1, 0.0],  # F1
        [0.1, 0.3, 0.4, 0.1, 0.1],  # F2
        [0.5, 0.4, 0.1, 0.0, 0.0],  # F0
        [0.1, 0.2, 0.5, 0.1, 0.1],  # F2
        [0.0, 0.1, 0.3, 0.5, 0.1],  # F3
        [0.0, 0.1, 0.2, 0.6, 0.1],  # F3
        [0.0, 0.0, 0.2, 0.3, 0.5],  # F4
        [0.0, 0.0, 0.1, 0.2, 0.7],  # F4
        [0.1, 0.1, 0.1, 0.3, 0.4],  # F4
        [0.1, 0.1, 0.6, 0.1, 0.1],  # F2
    ]
)

STABLE_KEYS = {
    "n", "classes", "accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1",
    "macro_auc", "auc_per_class", "kappa_quadratic", "auc_ge_f2", "auc_ge_f3", "auc_f4", "binary", "ece",
    "reliability", "confusion_matrix", "per_source", "ci95", "n_boot", "n_boot_effective",
    "bootstrap_unit", "n_groups", "seed",
}  # fmt: skip
CI_KEYS = {
    "accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc",
    "kappa_quadratic", "ece", "auc_ge_f2", "auc_ge_f3", "auc_f4",
    "ge_f2_sensitivity", "ge_f2_specificity", "ge_f3_sensitivity", "ge_f3_specificity",
    "f4_sensitivity", "f4_specificity",
}  # fmt: skip


def _idx(labels: list[str]) -> np.ndarray:
    return np.array([CLASSES.index(label) for label in labels])


def _synthetic(n: int, seed: int, signal: float = 1.5) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    logits = rng.normal(size=(n, 5))
    logits[np.arange(n), y] += signal
    probs = np.exp(logits)
    return [CLASSES[i] for i in y], probs / probs.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------ point estimates
def test_hand_case_matches_sklearn() -> None:
    r = evaluate_probabilities(HAND_LABELS, HAND_PROBS, CLASSES, n_boot=0)
    y, pred = _idx(HAND_LABELS), HAND_PROBS.argmax(axis=1)
    assert r["n"] == 12 and r["classes"] == CLASSES
    assert r["accuracy"] == pytest.approx(accuracy_score(y, pred)) == pytest.approx(7 / 12)
    assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    p, rec, f1, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert (r["macro_precision"], r["macro_recall"], r["macro_f1"]) == pytest.approx((p, rec, f1))
    assert r["kappa_quadratic"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    for c, name in enumerate(CLASSES):
        assert r["auc_per_class"][name] == pytest.approx(roc_auc_score(y == c, HAND_PROBS[:, c]))
    assert r["macro_auc"] == pytest.approx(roc_auc_score(y, HAND_PROBS, multi_class="ovr", average="macro"))
    assert r["auc_ge_f2"] == pytest.approx(roc_auc_score(y >= 2, HAND_PROBS[:, 2:].sum(axis=1)))
    assert r["auc_ge_f3"] == pytest.approx(roc_auc_score(y >= 3, HAND_PROBS[:, 3:].sum(axis=1)))
    assert r["auc_f4"] == pytest.approx(roc_auc_score(y == 4, HAND_PROBS[:, 4]))
    assert r["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    assert r["confusion_matrix"][1] == [1, 1, 1, 0, 0]  # row = true F1, columns = predicted
    assert r["binary"]["ge_f2"]["auc"] == r["auc_ge_f2"]
    assert r["per_source"] is None
    assert set(r) == STABLE_KEYS and set(r["ci95"]) == CI_KEYS
    assert all(v is None for v in r["ci95"].values())  # n_boot=0
    json.dumps(r, allow_nan=False)


def test_perfect_classifier() -> None:
    labels = [c for c in CLASSES for _ in range(2)]
    probs = np.full((10, 5), 0.025)
    probs[np.arange(10), _idx(labels)] = 0.9
    r = evaluate_probabilities(labels, probs, CLASSES, n_boot=50)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "kappa_quadratic", "auc_ge_f2"):
        assert r[key] == pytest.approx(1.0), key
    for task in ("ge_f2", "ge_f3", "f4"):
        b = r["binary"][task]
        assert (b["auc"], b["sensitivity"], b["specificity"]) == (1.0, 1.0, 1.0)
    assert r["confusion_matrix"] == (2 * np.eye(5, dtype=int)).tolist()
    assert r["ece"] == pytest.approx(0.1)  # always right at confidence 0.9
    assert r["ci95"]["accuracy"] == [1.0, 1.0]


def test_constant_classifier() -> None:
    labels = HAND_LABELS
    probs = np.tile([0.1, 0.2, 0.4, 0.2, 0.1], (12, 1))
    y, pred = _idx(labels), np.full(12, 2)
    r = evaluate_probabilities(labels, probs, CLASSES, n_boot=0)
    assert r["accuracy"] == pytest.approx(3 / 12)
    assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred)) == pytest.approx(0.2)
    p, rec, f1, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert (r["macro_precision"], r["macro_recall"], r["macro_f1"]) == pytest.approx((p, rec, f1))
    assert r["macro_auc"] == pytest.approx(0.5) and r["auc_ge_f2"] == pytest.approx(0.5)
    assert r["kappa_quadratic"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic")) == 0.0
    assert [row[2] for row in r["confusion_matrix"]] == [2, 3, 3, 2, 2]


def test_quadratic_kappa_penalises_distant_errors_unlike_plain_kappa() -> None:
    labels = ["F0", "F1", "F2", "F3", "F4"] * 2
    near = _idx(labels).copy()
    far = near.copy()
    near[[0, 4]] = [1, 3]  # F0 -> F1, F4 -> F3: off by one
    far[[0, 4]] = [4, 0]  # F0 -> F4, F4 -> F0: off by four
    plain = [cohen_kappa_score(_idx(labels), p) for p in (near, far)]
    assert plain[0] == pytest.approx(plain[1])  # plain kappa cannot tell them apart
    kappas = []
    for pred in (near, far):
        probs = np.full((10, 5), 0.05)
        probs[np.arange(10), pred] = 0.8
        r = evaluate_probabilities(labels, probs, CLASSES, n_boot=0)
        assert r["kappa_quadratic"] == pytest.approx(
            cohen_kappa_score(_idx(labels), pred, weights="quadratic")
        )
        assert r["accuracy"] == pytest.approx(0.8)
        kappas.append(r["kappa_quadratic"])
    assert kappas[0] > 0.8 > kappas[1]
    assert kappas[0] != pytest.approx(plain[0])


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_absent_class_gives_none_auc_and_averages_over_present_classes() -> None:
    keep = [i for i, label in enumerate(HAND_LABELS) if label != "F1"]
    labels = [HAND_LABELS[i] for i in keep]
    probs = HAND_PROBS[keep]
    r = evaluate_probabilities(labels, probs, CLASSES, n_boot=20)
    y, pred = _idx(labels), probs.argmax(axis=1)
    assert r["auc_per_class"]["F1"] is None
    present = [c for c in CLASSES if c != "F1"]
    assert r["macro_auc"] == pytest.approx(np.mean([r["auc_per_class"][c] for c in present]))
    assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    _, _, f1, _ = precision_recall_fscore_support(
        y, pred, labels=[0, 2, 3, 4], average="macro", zero_division=0
    )
    assert r["macro_f1"] == pytest.approx(f1)
    assert r["confusion_matrix"][1] == [0, 0, 0, 0, 0]


def test_ece_and_reliability_by_hand() -> None:
    labels = ["F0", "F1", "F2", "F3"]
    probs = np.array(
        [
            [0.91, 0.03, 0.03, 0.03, 0.0],  # right at 0.91
            [0.91, 0.03, 0.03, 0.03, 0.0],  # wrong at 0.91
            [0.1, 0.1, 0.62, 0.1, 0.08],  # right at 0.62
            [0.1, 0.1, 0.08, 0.62, 0.1],  # right at 0.62
        ]
    )
    r = evaluate_probabilities(labels, probs, CLASSES, n_boot=0)
    assert r["ece"] == pytest.approx(0.5 * abs(0.5 - 0.91) + 0.5 * abs(1.0 - 0.62))
    rel = r["reliability"]
    assert len(rel) == 15 and sum(b["count"] for b in rel.values()) == 4
    assert rel["0.867-0.933"] == pytest.approx(
        {"lower": 13 / 15, "upper": 14 / 15, "mean_confidence": 0.91, "accuracy": 0.5, "count": 2}
    )
    assert rel["0.600-0.667"]["accuracy"] == 1.0
    assert rel["0.000-0.067"] == {
        "lower": 0.0,
        "upper": 1 / 15,
        "mean_confidence": None,
        "accuracy": None,
        "count": 0,
    }


def test_per_source_matches_sklearn_subsets() -> None:
    sources = ["us_a"] * 6 + ["us_b"] * 4 + ["single"] * 2
    labels = HAND_LABELS[:10] + ["F2", "F2"]
    r = evaluate_probabilities(labels, HAND_PROBS, CLASSES, sources=sources, n_boot=0)
    y, pred = _idx(labels), HAND_PROBS.argmax(axis=1)
    assert list(r["per_source"]) == ["us_a", "us_b", "single"]
    for name, sl in (("us_a", slice(0, 6)), ("us_b", slice(6, 10))):
        entry = r["per_source"][name]
        assert entry["n"] == len(y[sl])
        assert entry["accuracy"] == pytest.approx(accuracy_score(y[sl], pred[sl]))
        assert entry["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[sl], pred[sl]))
    b = slice(6, 10)  # F2, F3, F3, F4: macro AUC over the three classes present
    expected = np.mean([roc_auc_score(y[b] == c, HAND_PROBS[b, c]) for c in (2, 3, 4)])
    assert r["per_source"]["us_b"]["macro_auc"] == pytest.approx(expected)
    assert r["per_source"]["single"]["macro_auc"] is None  # one class only: AUC undefined


# -------------------------------------------------------------------------------------- thresholds
def test_given_thresholds_are_used_and_default_is_half() -> None:
    y = _idx(HAND_LABELS)
    given = {"ge_f2": 0.65, "ge_f3": 0.65, "f4": 0.35}
    with_thr = evaluate_probabilities(HAND_LABELS, HAND_PROBS, CLASSES, thresholds=given, n_boot=0)["binary"]
    default = evaluate_probabilities(HAND_LABELS, HAND_PROBS, CLASSES, n_boot=0)["binary"]
    scores = {"ge_f2": (y >= 2, HAND_PROBS[:, 2:].sum(1)), "ge_f3": (y >= 3, HAND_PROBS[:, 3:].sum(1)),
              "f4": (y == 4, HAND_PROBS[:, 4])}  # fmt: skip
    for task, (is_pos, score) in scores.items():
        for entry, thr, source in (
            (with_thr[task], given[task], "given"),
            (default[task], 0.5, "default_0.5"),
        ):
            assert entry["threshold"] == thr and entry["threshold_source"] == source
            assert entry["sensitivity"] == pytest.approx(recall_score(is_pos, score >= thr))
            assert entry["specificity"] == pytest.approx(recall_score(~is_pos, score < thr))
    assert with_thr["ge_f2"]["specificity"] == 1.0 and default["ge_f2"]["specificity"] == 0.8
    assert with_thr["f4"]["sensitivity"] == 1.0 and default["f4"]["sensitivity"] == 0.5


def test_fit_thresholds_youden_by_hand_and_feeds_evaluation() -> None:
    # ge_f2 scores: negatives 0.1 0.2 0.3 0.35, positives 0.3 0.4 0.6 0.7 -> J = 3/4 - 0 at 0.4
    labels = ["F0", "F0", "F1", "F1", "F2", "F3", "F4", "F4"]
    probs = np.array(
        [
            [0.9, 0.0, 0.1, 0.0, 0.0],
            [0.8, 0.0, 0.2, 0.0, 0.0],
            [0.0, 0.7, 0.3, 0.0, 0.0],
            [0.0, 0.65, 0.35, 0.0, 0.0],
            [0.7, 0.0, 0.3, 0.0, 0.0],
            [0.6, 0.0, 0.0, 0.4, 0.0],
            [0.4, 0.0, 0.0, 0.0, 0.6],
            [0.3, 0.0, 0.0, 0.0, 0.7],
        ]
    )
    thr = fit_thresholds(labels, probs, CLASSES)
    assert thr == pytest.approx({"ge_f2": 0.4, "ge_f3": 0.4, "f4": 0.6})
    r = evaluate_probabilities(labels, probs, CLASSES, thresholds=thr, n_boot=0)
    assert r["binary"]["ge_f2"]["threshold"] == thr["ge_f2"]
    assert (r["binary"]["ge_f2"]["sensitivity"], r["binary"]["ge_f2"]["specificity"]) == (0.75, 1.0)


def test_fit_thresholds_maximises_youden_on_random_data() -> None:
    labels, probs = _synthetic(200, seed=3, signal=1.0)
    y = _idx(labels)
    fitted = fit_thresholds(labels, probs, CLASSES)
    is_pos, score = y >= 2, probs[:, 2:].sum(axis=1)

    def youden(t: float) -> float:
        return recall_score(is_pos, score >= t) + recall_score(~is_pos, score < t) - 1

    assert youden(fitted["ge_f2"]) == pytest.approx(max(youden(t) for t in np.unique(score)))


def test_fit_thresholds_needs_both_outcomes() -> None:
    with pytest.raises(InputError, match="f4 threshold.*no positives"):
        fit_thresholds(HAND_LABELS[:9], HAND_PROBS[:9], CLASSES)


def test_unknown_threshold_task_suggests_closest() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'ge_f2'"):
        evaluate_probabilities(HAND_LABELS, HAND_PROBS, CLASSES, thresholds={"ge_f22": 0.5})


# --------------------------------------------------------------------------------------- bootstrap
@pytest.mark.parametrize("never_predict_f4", [False, True])
def test_resample_engine_equals_sklearn_on_expanded_data(never_predict_f4: bool) -> None:
    """The vectorised bootstrap evaluates a resample exactly as sklearn would on the drawn rows."""
    rng = np.random.default_rng(7)
    n = 60
    y = rng.integers(0, 5, n)
    probs = rng.integers(0, 4, (n, 5)) + (np.arange(5) == y[:, None]) * 2.0  # many tied scores
    if never_predict_f4:  # precision of F4 is 0/0 -> 0 (zero_division=0)
        probs[:, 4] = 0.0
        probs[:, 0] += 0.5
    probs /= probs.sum(axis=1, keepdims=True)
    weights = rng.integers(0, 4, (4, n)).astype(float)
    thresholds = {"ge_f2": 0.4}
    tasks = _task_arrays(y, probs, CLASSES)
    present = np.arange(5)
    got = _resample_metrics(weights, y, probs, tasks, thresholds, present)
    for b in range(len(weights)):
        rows = np.repeat(np.arange(n), weights[b].astype(int))
        yb, pb = y[rows], probs[rows]
        assert set(yb) == set(range(5))
        pred = pb.argmax(axis=1)
        prec, rec, f1, _ = precision_recall_fscore_support(
            yb, pred, labels=present, average="macro", zero_division=0
        )
        conf = pb.max(axis=1)
        bins = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
        expected = {
            "accuracy": accuracy_score(yb, pred),
            "balanced_accuracy": balanced_accuracy_score(yb, pred),
            "macro_precision": prec,
            "macro_recall": rec,
            "macro_f1": f1,
            "kappa_quadratic": cohen_kappa_score(yb, pred, weights="quadratic"),
            "macro_auc": roc_auc_score(yb, pb, multi_class="ovr", average="macro"),
            "ece": _reliability(conf, (pred == yb).astype(float), bins)[0],
        }
        for task, (is_pos, score) in tasks.items():
            thr = thresholds.get(task, 0.5)
            expected[f"auc_{task}"] = roc_auc_score(is_pos[rows], score[rows])
            expected[f"{task}_sensitivity"] = recall_score(is_pos[rows], score[rows] >= thr)
            expected[f"{task}_specificity"] = recall_score(~is_pos[rows], score[rows] < thr)
            # and sklearn's sample_weight form agrees with the expanded rows
            assert roc_auc_score(is_pos, score, sample_weight=weights[b]) == pytest.approx(
                expected[f"auc_{task}"], abs=1e-12
            )
        assert set(expected) == set(got)
        for name, value in expected.items():
            assert got[name][b] == pytest.approx(value, abs=1e-12), name


def test_resample_engine_marks_resamples_without_a_class() -> None:
    y = _idx(HAND_LABELS)
    weights = np.ones((1, 12))
    weights[0, y == 4] = 0  # this resample drew no F4 image
    got = _resample_metrics(weights, y, HAND_PROBS, _task_arrays(y, HAND_PROBS, CLASSES), {}, np.arange(5))
    for name in ("auc_f4", "f4_sensitivity", "macro_auc", "macro_f1", "balanced_accuracy"):
        assert np.isnan(got[name][0]), name
    for name in ("accuracy", "f4_specificity", "auc_ge_f2", "kappa_quadratic", "ece"):
        assert np.isfinite(got[name][0]), name


def test_bootstrap_counts_effective_resamples() -> None:
    labels = [c for c in CLASSES for _ in range(2)]
    probs = HAND_PROBS[[0, 1, 2, 3, 5, 6, 7, 8, 9, 10]]
    r = evaluate_probabilities(labels, probs, CLASSES, n_boot=300, seed=0)
    eff = r["n_boot_effective"]
    assert eff["accuracy"] == eff["ece"] == 300
    assert 200 < eff["auc_f4"] < 300  # P(no F4 among 10 draws) = 0.8**10 ~ 0.11
    assert 0 < eff["macro_auc"] <= eff["auc_f4"]  # needs all five classes at once
    assert eff["f4_sensitivity"] >= eff["auc_f4"]  # needs positives only, not negatives too


def test_group_bootstrap_resamples_whole_groups() -> None:
    labels, probs = _synthetic(40, seed=1)
    base = evaluate_probabilities(labels, probs, CLASSES, n_boot=300, seed=5)
    dup_labels = list(np.repeat(labels, 50))
    dup_probs = np.repeat(probs, 50, axis=0)
    groups = list(np.repeat([f"img{39 - i:02d}" for i in range(40)], 50))  # 50 near-duplicates per image
    grouped = evaluate_probabilities(dup_labels, dup_probs, CLASSES, groups=groups, n_boot=300, seed=5)
    per_item = evaluate_probabilities(dup_labels, dup_probs, CLASSES, n_boot=300, seed=5)

    assert grouped["n_groups"] == 40 and grouped["bootstrap_unit"] == "group"
    assert per_item["n_groups"] == 2000 and per_item["bootstrap_unit"] == "item"
    assert grouped["accuracy"] == pytest.approx(base["accuracy"])
    for name, ci in base["ci95"].items():  # whole groups drawn: same intervals as the 40 originals
        assert grouped["ci95"][name] == pytest.approx(ci, abs=1e-9), name

    def width(r: dict, name: str) -> float:
        return r["ci95"][name][1] - r["ci95"][name][0]

    for name in ("accuracy", "macro_auc", "auc_ge_f2", "kappa_quadratic"):
        assert width(per_item, name) < 0.4 * width(grouped, name), name  # items would shrink it ~sqrt(50)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    labels, probs = _synthetic(120, seed=2)
    a = evaluate_probabilities(labels, probs, CLASSES, n_boot=200, seed=1)
    b = evaluate_probabilities(labels, probs, CLASSES, n_boot=200, seed=1)
    c = evaluate_probabilities(labels, probs, CLASSES, n_boot=200, seed=2)
    assert a["ci95"] == b["ci95"] and a["ci95"] != c["ci95"]
    for name in ("accuracy", "macro_auc", "kappa_quadratic", "auc_ge_f2", "ece"):
        low, high = a["ci95"][name]
        assert low < a[name] < high, name


def test_bootstrap_1000_on_1500_items_is_fast() -> None:
    labels, probs = _synthetic(1500, seed=4)
    groups = [f"p{i // 3}" for i in range(1500)]
    start = time.perf_counter()
    r = evaluate_probabilities(labels, probs, CLASSES, groups=groups, n_boot=1000, thresholds={"f4": 0.3})
    assert time.perf_counter() - start < 15.0
    assert r["n_boot_effective"]["macro_auc"] == 1000
    json.dumps(r, allow_nan=False)


# ------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"y_true": HAND_LABELS[:11]}, InputError, r"shape \(N, K\) = \(11, 5\)"),
        ({"y_true": [], "probs": np.empty((0, 5))}, InputError, "empty"),
        ({"probs": HAND_PROBS[:, :4]}, InputError, r"got \(12, 4\)"),
        ({"probs": HAND_PROBS[0]}, InputError, r"got \(5,\)"),
        ({"probs": np.where(np.eye(12, 5) > 0, np.nan, HAND_PROBS)}, InputError, "NaN"),
        ({"probs": HAND_PROBS * 2}, InputError, "sum to 1.*logits"),
        ({"probs": HAND_PROBS - np.eye(12, 5) * 0.2 + np.eye(12, 5, 1) * 0.2}, InputError, "non-negative"),
        ({"y_true": ["F0"] * 11 + ["F5"]}, InputError, r"unknown \['F5'\]"),
        ({"classes": ["F0", "F1", "F1", "F3", "F4"]}, ConfigError, "duplicates"),
        ({"classes": ["F0"]}, ConfigError, "at least 2"),
        ({"classes": ["F4", "F3", "F2", "F1", "F0"]}, ConfigError, "ascending stage order"),
        ({"groups": ["a"] * 11}, InputError, "groups with one entry per label"),
        ({"sources": ["a"] * 13}, InputError, "sources with one entry per label"),
        ({"n_boot": -1}, ConfigError, "n_boot"),
        ({"thresholds": {"f4": float("nan")}}, ConfigError, "finite threshold"),
    ],
)
def test_invalid_input_is_rejected(kwargs: dict, error: type[Exception], match: str) -> None:
    args = {"y_true": HAND_LABELS, "probs": HAND_PROBS, "classes": CLASSES, **kwargs}
    with pytest.raises(error, match=match):
        evaluate_probabilities(args.pop("y_true"), args.pop("probs"), args.pop("classes"), **args)


# -------------------------------------------------------------------------------------- CSV reader
HEADER = "path,label,prob_F0,prob_F1,prob_F2,prob_F3,prob_F4"


def _write(tmp_path, text: str):
    path = tmp_path / "pred.csv"
    path.write_text(text)
    return path


def test_read_predictions_csv_round_trip(tmp_path) -> None:
    path = _write(
        tmp_path,
        HEADER + ",group,source\n"
        "a.png,F0,0.7,0.2,0.1,0,0,g1,us_a\n"
        "b.png,F3,0.0,0.1,0.2,0.6,0.1,g1,us_b\n"
        "c.png,F4,0.1,0.1,0.1,0.3,0.4005,g2,us_b\n",
    )
    paths, labels, probs, classes, extra = read_predictions_csv(path)
    assert paths == ["a.png", "b.png", "c.png"] and labels == ["F0", "F3", "F4"]
    assert classes == CLASSES and probs.shape == (3, 5) and probs[1, 3] == 0.6
    assert extra == {"group": ["g1", "g1", "g2"], "source": ["us_a", "us_b", "us_b"]}
    r = evaluate_probabilities(
        labels, probs, classes, groups=extra["group"], sources=extra["source"], n_boot=10
    )
    assert r["n_groups"] == 2 and set(r["per_source"]) == {"us_a", "us_b"}


def test_read_predictions_csv_without_optional_columns(tmp_path) -> None:
    path = _write(tmp_path, HEADER + "\na.png,F1,0.1,0.6,0.1,0.1,0.1\n")
    assert read_predictions_csv(path)[4] == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("path,prob_F0,prob_F1\na.png,0.5,0.5\n", r"missing \['label'\]"),
        ("path,label\na.png,F0\n", "prob_<class>"),
        (HEADER + "\n", "no prediction rows"),
        ("", "missing"),
        (HEADER + "\na.png,F0,nan,0.2,0.1,0,0\n", ":2: expected a finite probability in prob_F0"),
        (
            HEADER + "\na.png,F0,0.7,0.2,0.1,0,0\nb.png,F0,,0.2,0.1,0,0.7\n",
            ":3: expected a number in prob_F0",
        ),
        (HEADER + "\na.png,F0,1.2,-0.2,0,0,0\n", "probability >= 0 in prob_F1"),
        (HEADER + "\na.png,F0,0.7,0.2,0.1,0,0.002\n", "summing to 1"),
        (HEADER + "\na.png,F5,0.7,0.2,0.1,0,0\n", r"among \['F0'.*got 'F5'"),
        (HEADER + "\na.png,F0,0.7,0.2,0.1,0\n", "expected 7 fields, found 6"),
        (HEADER + ",group\na.png,F0,0.7,0.2,0.1,0,0,\n", "empty group"),
    ],
)
def test_read_predictions_csv_errors(tmp_path, text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        read_predictions_csv(_write(tmp_path, text))


def test_read_predictions_csv_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_predictions_csv(tmp_path / "nope.csv")
