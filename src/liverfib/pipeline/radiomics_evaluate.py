"""``radiomics evaluate``: a trained radiomics model on the rows of one split subset it was never fit
on -> predictions, metrics with CIs and SHAP plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.errors import InputError
from liverfib.pipeline._radiomics_common import (
    columns,
    format_metrics,
    join_split,
    path_key,
    prediction_columns,
    prediction_rows,
    split_metrics,
    spread,
)

__all__ = ["run_radiomics_evaluate"]


def _load_model(model: Path) -> dict[str, Any]:
    import joblib

    if not model.is_file():
        raise InputError(f"{model}: radiomics model not found; train one with 'liverfib radiomics train'")
    try:
        return joblib.load(model)
    except Exception as exc:  # joblib/pickle raise many types on a corrupt file
        from liverfib.errors import ModelError

        raise ModelError(f"{model}: not a liverfib radiomics model ({type(exc).__name__})") from None


def _training_overlap(bundle: dict[str, Any], paths: list[str]) -> list[str]:
    """Paths of ``paths`` (feature-table rows) that the model in ``bundle`` was fit on."""
    trained = set(bundle.get("train_paths") or ())
    return [p for p in paths if path_key(p, None) in trained]


def _refuse_overlap(bundle: dict[str, Any], overlap: list[str], n_rows: int, subset: str | None, model: Path) -> None:
    how = bundle.get("train_split", {})
    refit = ""
    if how.get("kfold"):
        refit = (f" (it was refit on every row of the K-fold split {how.get('file')}; its honest figures "
                 "are the out-of-fold metrics of 'radiomics train')")
    raise InputError(
        f"{len(overlap)} of {n_rows} rows of subset {subset!r} were used to fit {model}{refit}; "
        f"scoring them would overstate accuracy. Evaluate rows the model never saw, or pass --allow-overlap "
        f"to score anyway (flagged in the output). First: {overlap[0]}"
    )


def _write_outputs(out_dir: Path, bundle: dict[str, Any], table: Any, split_rows: list[dict[str, str]], X: Any,
                   probs: Any, summary: dict[str, Any], explain: int) -> None:
    """predictions.csv, metrics.json and SHAP plots (waterfalls of the first ``explain`` images)."""
    from liverfib.io.jsonio import write_json
    from liverfib.pipeline._common import write_rows

    classes = bundle["classes"]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_rows(prediction_rows(table.paths, split_rows, probs, classes), out_dir / "predictions.csv",
               prediction_columns(classes))
    write_json(summary, out_dir / "metrics.json")
    if explain > 0:
        from liverfib.radiomics.explain import save_shap_plots, shap_values_ge_f2

        first = list(range(min(explain, len(X))))  # waterfalls: the first images of the subset
        rows = first + [i for i in spread(len(X), 100) if i >= len(first)]  # Kernel SHAP cost ~ rows
        expl = shap_values_ge_f2(bundle["pipeline"], X[rows], bundle["features"], classes, background=20)
        plots = save_shap_plots(expl, out_dir, [table.paths[i] for i in rows], waterfalls=first)
        summary["shap_plots"] = [str(p) for p in plots]


def run_radiomics_evaluate(
    model: Path,
    features: Path,
    split_csv: Path,
    *,
    data_dir: Path | None = None,
    subset: str | None = "test",
    out_dir: Path | None = None,
    n_boot: int = 1000,
    explain: int = 1,
    allow_overlap: bool = False,
) -> tuple[dict[str, Any], str]:
    """Apply a trained radiomics model to the ``subset`` rows of a split; metrics with CIs.

    With ``out_dir``: predictions.csv, metrics.json and SHAP waterfalls of the first ``explain`` images.
    Rows the model was fit on are refused (a K-fold model is refit on every row: its honest figures
    are the out-of-fold ones of ``radiomics train``); ``allow_overlap`` scores them anyway, flagged.
    """
    from liverfib.radiomics.models import _proba_full
    from liverfib.radiomics.table import read_feature_table

    model = Path(model)
    bundle = _load_model(model)
    table = read_feature_table(features)
    table, split_rows = join_split(table, split_csv, data_dir, {subset} if subset else None)
    missing = [n for n in bundle["features"] if n not in table.names]
    if missing:
        raise InputError(
            f"{features}: lacks {len(missing)} features the model needs, e.g. {missing[0]}; extract with the model's settings"
        )
    overlap = _training_overlap(bundle, table.paths)
    if overlap and not allow_overlap:
        _refuse_overlap(bundle, overlap, len(table.paths), subset, model)
    X = columns(table, bundle["features"])
    classes = bundle["classes"]
    probs = _proba_full(bundle["pipeline"], X, len(classes))
    unknown = sorted({r["label"] for r in split_rows} - set(classes))
    if unknown:
        raise InputError(f"{split_csv}: labels {unknown} unknown to the model (classes {classes})")
    metrics = split_metrics(split_rows, probs, classes, n_boot, 0)
    summary: dict[str, Any] = {"model": str(model), "subset": subset, "metrics": metrics,
                               "n_rows_seen_in_training": len(overlap) if "train_paths" in bundle else None}
    if out_dir is not None:
        _write_outputs(Path(out_dir), bundle, table, split_rows, X, probs, summary, explain)
    text = f"radiomics {subset or 'all'} (n={metrics['n']}): {format_metrics(metrics)}"
    if overlap:
        text += (f"\nWARNING: {len(overlap)} of these rows were used to fit the model; these figures are "
                 "optimistic (--allow-overlap)")
    elif "train_paths" not in bundle:
        text += "\nnote: this model does not record its training rows (made before 0.1.0); overlap not checked"
    if out_dir is not None:
        text += f"\nwrote predictions.csv and metrics.json to {Path(out_dir)}"
    return summary, text
