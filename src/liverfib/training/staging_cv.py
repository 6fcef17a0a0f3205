"""Ultrasound staging trained on every labelled row, with model selection by grouped cross-validation.

The validation regime (:func:`liverfib.training.staging.train_staging`) spends a fixed part of a
small data set on choosing ``C`` and the thresholds, and that part never trains the head. With
``select: cv`` the frozen-feature probe instead uses every ``train`` row of the split:

1. ``C`` is chosen by grouped K-fold CV over the training rows (whole same-scan groups per fold,
   stratified by stage x source), by out-of-fold macro-AUC (:func:`~liverfib.training.probe.cv_probe`);
2. the >=F2/>=F3/F4 thresholds are fitted (Youden J) on the out-of-fold probabilities at that ``C``;
3. the head that ships is fitted on all training rows with that ``C``.

The out-of-fold metrics stored in the bundle chose ``C``, so they are slightly optimistic; an
unbiased figure for this procedure needs an outer CV around it (``benchmarks/us_nested_cv.py``).
The thresholds come from heads fitted on (K-1)/K of the rows, not from the head that ships; that
cross-fitting is the usual price of not holding data out, and the bundle says so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ConfigError, InputError
from liverfib.training.staging import (
    STAGES,
    StagingConfig,
    _images,
    _save_model,
    _write_run_files,
    load_split_rows,
    preprocessing,
)

__all__ = ["train_staging_cv"]


def train_staging_cv(data_dir: Path, split_csv: Path, out_dir: Path, cfg: StagingConfig) -> dict[str, Any]:
    """Train per ``cfg`` (``select == "cv"``) on the split's ``train`` rows; write the bundle and run files."""
    import torch

    from liverfib.evaluation import evaluate_probabilities, fit_thresholds
    from liverfib.models.registry import get_spec
    from liverfib.models.staging import StagingNet
    from liverfib.training.probe import cv_probe, features, refit_probe

    if cfg.epochs > 0 or cfg.aug_views > 0:
        raise ConfigError("select: cv trains the frozen-feature probe only; set epochs: 0 and aug_views: 0")
    spec = get_spec(cfg.backbone)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    pre_cfg, pre = preprocessing(cfg, spec)
    rows = load_split_rows(data_dir, split_csv, "train", cfg.dedup)
    y = np.array([STAGES.index(r["label"]) for r in rows])
    if len(np.unique(y)) < len(STAGES):
        raise InputError(f"select: cv needs every stage {', '.join(STAGES)} among the training rows")
    groups = np.array([r.get("group") or r.get("cluster") or r["path"] for r in rows])
    sources = np.array([r.get("source") or "?" for r in rows])
    net = StagingNet(cfg.backbone, head=cfg.head, feature_stages=cfg.feature_stages, pooling=cfg.pooling,
                     pretrained=True).eval()
    X = features(net, _images(data_dir, rows, pre), pre, cfg.flip_features)
    strata = np.array([f"{a}|{b}" for a, b in zip(y, sources, strict=True)])
    best_C, oof, log = cv_probe(X, y, groups, strata, cfg.C_grid, cfg.head, cfg.seed, cfg.cv_folds)
    for row in log:
        row["seconds"] = round(time.time() - t0, 1)
    labels = [STAGES[i] for i in y]
    thresholds = fit_thresholds(labels, oof, list(STAGES))
    cv_metrics = evaluate_probabilities(labels, oof, list(STAGES), groups=list(groups), sources=list(sources),
                                        n_boot=500, seed=cfg.seed)
    refit_probe(net, X, y, best_C, cfg.head, cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_seconds = round(time.time() - t0, 1)
    run = {"data_dir": data_dir, "split_csv": split_csv, "n_train": len(rows), "selected_C": best_C,
           "val_subset": f"grouped {cfg.cv_folds}-fold CV over the training rows (out-of-fold; C chosen on it)",
           "weights_origin": spec.weights, "train_seconds": train_seconds}
    ckpt = _save_model(out_dir, net, cfg, pre_cfg, cv_metrics, thresholds, run)
    _write_run_files(out_dir, cfg, pre_cfg, best_C, log, cv_metrics)
    return {"checkpoint": str(ckpt), "selected_C": best_C, "n_train": len(rows), "n_val": 0,
            "train_seconds": train_seconds, "weights_origin": spec.weights, "val_metrics": cv_metrics}
