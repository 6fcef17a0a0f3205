"""Evaluation figures: ROC curves, confusion matrix, reliability diagram (PNG, matplotlib Agg)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib.errors import ConfigError
from liverfib.evaluation import binary_tasks

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_evaluation"]

_TASK_TITLES = {"ge_f2": ">=F2", "ge_f3": ">=F3", "f4": "F4"}


def _new_figure(width_in: float, height_in: float) -> Figure:
    """A figure bound to the Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _fmt_auc(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _plot_roc(
    result: Mapping[str, Any], y_true: Sequence[str], probs: np.ndarray, classes: list[str]
) -> Figure:
    from sklearn.metrics import roc_curve

    fig = _new_figure(11, 5)
    ax_cls, ax_bin = fig.subplots(1, 2)
    labels = np.asarray(list(y_true), dtype=object)
    for c, name in enumerate(classes):
        is_pos = labels == name
        if is_pos.all() or not is_pos.any():
            continue  # ROC undefined without both positives and negatives
        fpr, tpr, _ = roc_curve(is_pos, probs[:, c])
        ax_cls.plot(fpr, tpr, label=f"{name} vs rest (AUC {_fmt_auc(result['auc_per_class'].get(name))})")
    for task, (is_pos, score) in binary_tasks(y_true, probs, classes).items():
        if is_pos.all() or not is_pos.any():
            continue
        fpr, tpr, _ = roc_curve(is_pos, score)
        line = ax_bin.plot(fpr, tpr, label=f"{_TASK_TITLES[task]} (AUC {_fmt_auc(result[f'auc_{task}'])})")[0]
        entry = (result.get("binary") or {}).get(task)
        if entry and entry["sensitivity"] is not None and entry["specificity"] is not None:
            ax_bin.plot(1 - entry["specificity"], entry["sensitivity"], "o", color=line.get_color())
    for ax, title in ((ax_cls, "One-vs-rest per stage"), (ax_bin, "Clinical tasks (dot: operating point)")):
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="Sensitivity", title=title)
        ax.set_aspect("equal")
        ax.legend(loc="lower right", fontsize=8)
    return fig


def _plot_confusion(result: Mapping[str, Any], classes: list[str]) -> Figure:
    counts = np.asarray(result["confusion_matrix"], dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig = _new_figure(11, 5)
    for ax, data, title, fmt in zip(
        fig.subplots(1, 2),
        (counts, normalised),
        ("Counts", "Row-normalised (recall)"),
        ("{:.0f}", "{:.2f}"),
        strict=True,
    ):
        image = ax.imshow(data, cmap="Blues", vmin=0, vmax=max(data.max(), 1e-9))
        top = data.max() if data.max() > 0 else 1.0
        for i in range(len(classes)):
            for j in range(len(classes)):
                colour = "white" if data[i, j] > 0.5 * top else "black"
                ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center", color=colour, fontsize=9)
        ticks = range(len(classes))
        ax.set(xticks=ticks, yticks=ticks, xticklabels=classes, yticklabels=classes, title=title)
        ax.set(xlabel="Predicted", ylabel="True")
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _plot_reliability(result: Mapping[str, Any]) -> Figure:
    table = list(result["reliability"].values())
    lower = np.array([b["lower"] for b in table])
    width = np.array([b["upper"] - b["lower"] for b in table])
    count = np.array([b["count"] for b in table])
    acc = np.array([np.nan if b["accuracy"] is None else b["accuracy"] for b in table])
    conf = np.array([np.nan if b["mean_confidence"] is None else b["mean_confidence"] for b in table])
    fig = _new_figure(6, 7)
    ax, ax_hist = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    filled = count > 0
    ax.bar(
        lower[filled],
        acc[filled],
        width=width[filled],
        align="edge",
        edgecolor="black",
        label="Accuracy per bin",
    )
    ax.plot(conf[filled], acc[filled], "o", color="tab:red", label="(mean confidence, accuracy)")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="Perfect calibration")
    ax.set(ylim=(0, 1), ylabel="Accuracy", title=f"Reliability (ECE {result['ece']:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    ax_hist.bar(lower, count, width=width, align="edge", color="grey", edgecolor="black")
    ax_hist.set(xlim=(0, 1), xlabel="Top-class confidence", ylabel="Count")
    return fig


def plot_evaluation(
    result: Mapping[str, Any],
    y_true: Sequence[str],
    probs: np.ndarray,
    classes: Sequence[str],
    out_dir: str | Path,
) -> list[Path]:
    """Write ``roc_curves.png``, ``confusion_matrix.png`` and ``reliability.png`` into ``out_dir``.

    ``result`` is the dict from :func:`liverfib.evaluation.evaluate_probabilities` for the same
    ``y_true`` (N,), ``probs`` (N, K) and ``classes``. Returns the written paths.
    """
    names = list(classes)
    if list(result.get("classes", [])) != names or result.get("n") != len(y_true):
        raise ConfigError(
            f"Expected an evaluation result for classes {names} and n={len(y_true)}, "
            f"got classes {result.get('classes')} and n={result.get('n')}; re-run evaluate_probabilities"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    probs = np.asarray(probs, dtype=float)
    figures = {
        "roc_curves.png": _plot_roc(result, y_true, probs, names),
        "confusion_matrix.png": _plot_confusion(result, names),
        "reliability.png": _plot_reliability(result),
    }
    written = []
    for filename, fig in figures.items():
        fig.savefig(out / filename)
        written.append(out / filename)
    return written
