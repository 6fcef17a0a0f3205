"""``radiomics train``: a classical model on a feature table and a grouped split -- nested grouped CV
(out-of-fold figures, optional stacking with ``--fuse`` tables) or train+val -> test -- then the final
model fit, saved with its training rows, and SHAP plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._common import progress_bar
from liverfib.pipeline._radiomics_common import (
    classes_of,
    columns,
    format_metrics,
    join_split,
    path_key,
    prediction_columns,
    prediction_rows,
    robust_names,
    split_metrics,
    spread,
)

__all__ = ["run_radiomics_train"]


@dataclass
class _Data:
    """The feature table joined to the split, the robust feature columns and the encoded labels."""

    table: Any
    split_rows: list[dict[str, str]]
    kfold: bool
    names: list[str]
    icc_file: str | None
    X: Any
    classes: list[str]
    y: Any
    groups: Any


def _training_data(features: Path, split_csv: Path, data_dir: Path | None, cfg: Any, fuse: Sequence[Path]) -> _Data:
    import numpy as np

    from liverfib.radiomics.table import read_feature_table

    table = read_feature_table(features)
    table, split_rows = join_split(table, split_csv, data_dir)
    splits = {r["split"] for r in split_rows}
    kfold = all(s.startswith("fold") for s in splits)
    if not kfold and "test" not in splits:
        raise InputError(f"{split_csv}: expected fold0..foldK or train/val/test rows, got {sorted(splits)}")
    if fuse and not kfold:
        raise ConfigError("--fuse needs a K-fold split (liverfib split --folds 5) for leakage-free stacking")
    names, icc_file = robust_names(features, table.names, cfg.icc_threshold)
    labels = [r["label"] for r in split_rows]
    classes = classes_of(labels)
    y = np.array([classes.index(lab) for lab in labels])
    groups = np.array([r.get("group") or r.get("cluster") or r["path"] for r in split_rows])
    return _Data(table, split_rows, kfold, names, icc_file, columns(table, names), classes, y, groups)


def _fusion_blocks(data: _Data, learner: Any, features: Path, fuse: Sequence[Path], split_csv: Path,
                   data_dir: Path | None, cfg: Any) -> dict[str, tuple[Any, Any]]:
    """The radiomics block and one linear-model block per ``fuse`` table, rows aligned by path."""
    from liverfib.radiomics.models import linear_learner
    from liverfib.radiomics.table import read_feature_table

    blocks = {"radiomics": (data.X, learner)}
    for f in fuse:
        ftab, _ = join_split(read_feature_table(f), split_csv, data_dir)
        index = {path_key(p, None): i for i, p in enumerate(ftab.paths)}
        missing = [p for p in data.table.paths if path_key(p, None) not in index]
        if missing:
            raise InputError(
                f"{f}: no row for {len(missing)} images of {features}, e.g. {missing[0]}"
            )
        rows_f = [index[path_key(p, None)] for p in data.table.paths]
        blocks[Path(f).stem] = (
            ftab.values[rows_f],
            linear_learner(cfg.fuse_c_grid, inner_folds=cfg.fuse_inner_folds, seed=cfg.seed),
        )
    return blocks


def _cross_validate(data: _Data, learner: Any, blocks: dict[str, Any] | None, cfg: Any, out_dir: Path,
                    summary: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    """Nested grouped CV (stacked with ``blocks`` when given): out-of-fold CSVs and metrics per model."""
    from liverfib.pipeline._common import write_rows
    from liverfib.radiomics.models import encode_folds, nested_cv

    folds = encode_folds([r["split"] for r in data.split_rows])
    n_classes = len(data.classes)
    if blocks is not None:
        from liverfib.radiomics.fusion import nested_stacking

        res = nested_stacking(blocks, data.y, data.groups, folds, n_classes, stacker_c=cfg.stacker_c, seed=cfg.seed)
        all_probs = {**res["base"], "fusion": res["fusion"]}
        params = res["params"]["radiomics"]
    else:
        res = nested_cv(learner, data.X, data.y, data.groups, folds, n_classes, progress=progress_bar("folds"))
        all_probs = {"radiomics": res["probs"]}
        params = res["params"]
    metrics = {}
    for name, probs in all_probs.items():
        metrics[name] = split_metrics(data.split_rows, probs, data.classes, cfg.n_boot, cfg.seed)
        rows = prediction_rows(data.table.paths, data.split_rows, probs, data.classes)
        write_rows(rows, out_dir / f"oof_{name}.csv", prediction_columns(data.classes))
        lines.append(f"{name:12s} out-of-fold: {format_metrics(metrics[name])}")
    summary["evaluation"] = "nested grouped CV, out-of-fold"
    summary["fold_params"] = params
    return metrics


def _holdout(data: _Data, learner: Any, cfg: Any, out_dir: Path, summary: dict[str, Any],
             lines: list[str]) -> tuple[dict[str, Any], Any, list[str]]:
    """Tune and fit on train+val, measure on test; returns metrics, the tuned parameters and the fit paths.

    ``data`` is narrowed to the train+val rows (what the final model is fit on)."""
    import numpy as np

    from liverfib.pipeline._common import write_rows
    from liverfib.radiomics.models import _proba_full

    X, y, groups, split_rows = data.X, data.y, data.groups, data.split_rows
    fit_rows = np.array([r["split"] in ("train", "val") for r in split_rows])
    test_rows = np.array([r["split"] == "test" for r in split_rows])
    final_params = learner.tune(X[fit_rows], y[fit_rows], groups[fit_rows])
    est = learner.fit(X[fit_rows], y[fit_rows], final_params)
    test_idx = np.flatnonzero(test_rows)
    probs = _proba_full(est, X[test_idx], len(data.classes))
    sr = [split_rows[i] for i in test_idx]
    metrics = {"radiomics": split_metrics(sr, probs, data.classes, cfg.n_boot, cfg.seed)}
    write_rows(prediction_rows([data.table.paths[i] for i in test_idx], sr, probs, data.classes),
               out_dir / "test_radiomics.csv", prediction_columns(data.classes))
    summary["evaluation"] = "fit on train+val, measured on test"
    lines.append(f"radiomics    test: {format_metrics(metrics['radiomics'])}")
    fit_rows_idx = np.flatnonzero(fit_rows)
    data.X, data.y, data.groups = X[fit_rows_idx], y[fit_rows_idx], groups[fit_rows_idx]
    return metrics, final_params, [data.table.paths[i] for i in fit_rows_idx]


def _save_model(out_dir: Path, final: Any, data: _Data, final_params: Any, cfg: Any, fit_paths: list[str],
                split_csv: Path) -> None:
    """``model.joblib``: the fitted pipeline, its features, classes, settings and training rows."""
    import joblib

    from liverfib.io.atomic import atomic_write

    bundle = {
        "pipeline": final,
        "features": data.names,
        "classes": data.classes,
        "params": final_params,
        "train_config": cfg.model_dump(mode="json"),
        "extraction_config": data.table.config_yaml,
        # the rows the final model was fit on: `radiomics evaluate` refuses to score them as a test
        "train_paths": sorted(path_key(p, None) for p in fit_paths),
        "train_split": {"file": str(split_csv), "kfold": data.kfold},
    }
    with atomic_write(out_dir / "model.joblib", mode="wb") as fh:
        joblib.dump(bundle, fh)


def _start(data: _Data, cfg: Any, out_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The summary's header fields and the first text line."""
    n_all, n_robust = len(data.table.names), len(data.names)
    summary: dict[str, Any] = {
        "out": str(out_dir),
        "model": cfg.model,
        "n_images": len(data.y),
        "n_features_extracted": n_all,
        "n_features_robust": n_robust,
        "robustness_file": data.icc_file,
        "classes": data.classes,
    }
    robust_note = (
        f"{n_robust}/{n_all} features pass ICC >= {cfg.icc_threshold}"
        if data.icc_file
        else f"{n_robust} features (no robustness file: none dropped)"
    )
    return summary, [f"radiomics {cfg.model}: {len(data.y)} images, {robust_note}"]


def run_radiomics_train(
    features: Path,
    split_csv: Path,
    out_dir: Path,
    *,
    data_dir: Path | None = None,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    fuse: Sequence[Path] = (),
) -> tuple[dict[str, Any], str]:
    """Train a radiomics model on a feature table and a grouped split.

    With a K-fold split (``fold0..``): nested grouped CV gives out-of-fold predictions and metrics
    (tuning inside each training part), then the final model is tuned and fit on all rows. With a
    train/val/test split: tuned and fit on train+val, measured on test. ``fuse`` tables (other
    features keyed by path, e.g. deep-learning features) are stacked with the radiomics model,
    nested so the stacker never sees its evaluation fold (K-fold splits only).
    """
    from liverfib.io.jsonio import write_json
    from liverfib.radiomics.config import load_train_config, save_config
    from liverfib.radiomics.explain import selected_feature_names
    from liverfib.radiomics.models import radiomics_learner

    cfg = load_train_config(config_path, overrides)
    data = _training_data(features, split_csv, data_dir, cfg, fuse)
    learner = radiomics_learner(cfg.model, corr_threshold=cfg.corr_threshold, lasso_c=cfg.lasso_c,
                                inner_folds=cfg.inner_folds, seed=cfg.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "train_config.yaml")
    summary, lines = _start(data, cfg, out_dir)
    if data.kfold:
        blocks = _fusion_blocks(data, learner, features, fuse, split_csv, data_dir, cfg) if fuse else None
        metrics = _cross_validate(data, learner, blocks, cfg, out_dir, summary, lines)
        final_params = learner.tune(data.X, data.y, data.groups)
        fit_paths = data.table.paths
    else:
        metrics, final_params, fit_paths = _holdout(data, learner, cfg, out_dir, summary, lines)
    final = learner.fit(data.X, data.y, final_params)
    selected = selected_feature_names(final, data.names)
    _save_model(out_dir, final, data, final_params, cfg, fit_paths, split_csv)
    summary.update({"final_params": final_params, "selected_features": selected, "metrics": metrics})
    write_json(summary, out_dir / "metrics.json")
    if cfg.shap_images > 0:
        from liverfib.radiomics.explain import save_shap_plots, shap_values_ge_f2

        rows = spread(len(data.y), cfg.shap_images)  # evenly over the (path-sorted) table, all stages
        expl = shap_values_ge_f2(final, data.X[rows], data.names, data.classes, background=cfg.shap_background,
                                 seed=cfg.seed)
        plots = save_shap_plots(expl, out_dir, [fit_paths[i] for i in rows])
        summary["shap_plots"] = [str(p) for p in plots]
    lines.append(
        f"final model: params {final_params}, {len(selected)} selected features -> {out_dir / 'model.joblib'}"
    )
    return summary, "\n".join(lines)
