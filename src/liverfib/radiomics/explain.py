"""SHAP explanations of a fitted radiomics pipeline: a summary (beeswarm) over images and a
per-image waterfall, for the clinically central score P(>=F2) = p(F2) + p(F3) + p(F4).

The explained function is the classifier on the *selected* features (after the constant,
correlation and LASSO filters), so each bar is one named pyradiomics feature. ``shap`` picks a
model-agnostic Kernel SHAP (``shap.KernelExplainer``) over a background sample; the newer
``shap.Explainer`` front end JIT-compiles its maskers with numba (~30 s on first use), too slow
for a command-line tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["selected_feature_names", "shap_values_ge_f2", "save_shap_plots"]


def selected_feature_names(pipeline: Any, names: Sequence[str]) -> list[str]:
    """Names of the features that reach the classifier of a fitted :func:`build_pipeline`."""
    keep = np.asarray(list(names), dtype=object)
    for _name, step in pipeline.steps[:-1]:
        if hasattr(step, "get_support"):
            keep = keep[step.get_support()]
    return [str(n) for n in keep]


def shap_values_ge_f2(
    pipeline: Any,
    X: np.ndarray,
    names: Sequence[str],
    classes: Sequence[str],
    *,
    background: int = 20,
    nsamples: int = 512,
    seed: int = 0,
) -> Any:
    """``shap.Explanation`` of P(>=F2) for rows ``X`` (N, F raw features) on the selected features.

    ``background`` rows (sampled from ``X``) stand for "feature absent"; ``nsamples`` coalitions per
    row trade accuracy for time (Kernel SHAP).
    """
    import shap

    pre = pipeline[:-1]
    clf = pipeline[-1]
    Z = pre.transform(X)
    positive = [i for i, c in enumerate(classes) if c in ("F2", "F3", "F4")]
    cols = [list(clf.classes_).index(i) for i in positive if i in clf.classes_]

    def score(z: np.ndarray) -> np.ndarray:
        return clf.predict_proba(z)[:, cols].sum(axis=1)

    rng = np.random.default_rng(seed)
    bg = Z[rng.choice(len(Z), size=min(background, len(Z)), replace=False)]
    explainer = shap.KernelExplainer(score, bg)
    values = explainer.shap_values(Z, nsamples=nsamples, silent=True)
    selected = selected_feature_names(pipeline, names)
    column = {n: j for j, n in enumerate(names)}
    return shap.Explanation(
        values=np.asarray(values, dtype=np.float64),
        base_values=np.full(len(Z), float(explainer.expected_value)),
        data=np.asarray(X, dtype=np.float64)[:, [column[n] for n in selected]],  # shown in raw units
        feature_names=selected,
    )


def save_shap_plots(
    explanation: Any, out_dir: Path, image_names: Sequence[str], *, waterfalls: Sequence[int] = (0,)
) -> list[Path]:
    """Write ``shap_summary.png`` (beeswarm over all rows) and ``shap_waterfall_<image>.png`` for
    each row index in ``waterfalls``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    out_dir.mkdir(parents=True, exist_ok=True)
    plt.figure()
    shap.plots.beeswarm(explanation, max_display=15, show=False)
    plt.title("SHAP: P(>=F2)")
    written = [out_dir / "shap_summary.png"]
    plt.savefig(written[0], dpi=100, bbox_inches="tight")
    plt.close("all")
    for i in waterfalls:
        plt.figure()
        shap.plots.waterfall(explanation[i], max_display=12, show=False)
        path = out_dir / f"shap_waterfall_{Path(str(image_names[i])).stem}.png"
        plt.savefig(path, dpi=100, bbox_inches="tight")
        plt.close("all")
        written.append(path)
    return written
