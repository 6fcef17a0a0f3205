"""Evaluate ultrasound staging: a predictions CSV, or a model on a split subset or a labelled folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._common import progress_bar

__all__ = ["run_evaluate", "format_metrics"]


def format_metrics(m: dict[str, Any]) -> str:
    """Headline metrics with their 95 % CIs, one per line, then accuracy per source."""
    ci = m.get("ci95", {})

    def fmt(key: str) -> str:
        v = m.get(key)
        if v is None:
            return f"{key:18s} n/a"
        lo_hi = ci.get(key)
        tail = f"  [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi and None not in lo_hi else ""
        return f"{key:18s} {v:.3f}{tail}"

    keys = [
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "macro_auc",
        "kappa_quadratic",
        "auc_ge_f2",
        "auc_ge_f3",
        "auc_f4",
        "ece",
    ]
    lines = [f"n = {m['n']} (95% CI: bootstrap over groups)"] + [fmt(k) for k in keys]
    for src, d in sorted(m.get("per_source", {}).items()):
        lines.append(f"source {src}: n={d['n']} accuracy={d['accuracy']:.3f}")
    return "\n".join(lines)


def run_evaluate(
    *,
    model: str | None = None,
    data_dir: Path | None = None,
    split_csv: Path | None = None,
    subset: str = "test",
    predictions_csv: Path | None = None,
    out_dir: Path | None = None,
    n_boot: int = 1000,
    keep_copies: bool = False,
    cam: str | None = None,
    labels_csv: Path | None = None,
) -> tuple[dict[str, Any], str]:
    """Evaluate a predictions CSV, a model on a split subset, or a model on a whole labelled folder.

    With a model, byte-identical copies are evaluated once (``keep_copies=False``), so an image
    copied five times does not count five times. Without ``split_csv`` the whole folder
    (F0..F4 sub-folders, or ``labels_csv``) is scored and the bootstrap groups are the audit's
    near-duplicate clusters joined through patients, as ``liverfib split`` would group them.
    ``cam`` (a CAM method) adds the shortcut check per source: the share of CAM mass outside the fan.
    """
    import numpy as np

    from liverfib.evaluation import evaluate_probabilities

    if (predictions_csv is None) == (model is None):
        raise ConfigError("give either --predictions CSV or --model (with --data and --split)")
    if predictions_csv is not None:
        preds = _read_predictions(predictions_csv)
    else:
        preds = _predict_for_evaluation(model, data_dir, split_csv, subset, labels_csv, dedup=not keep_copies)
    if cam is not None and model is None:
        raise ConfigError("--cam needs --model (CAMs are computed from the model)")
    labels, probs, classes = preds["labels"], np.asarray(preds["probs"]), preds["classes"]
    groups, sources, thresholds = preds["groups"], preds["sources"], preds["thresholds"]
    metrics = evaluate_probabilities(
        labels, probs, classes, groups=groups, sources=sources, thresholds=thresholds, n_boot=n_boot
    )
    if sources is not None and groups is not None:
        _add_source_cis(metrics, labels, probs, classes, groups, sources, thresholds, n_boot)
    text = format_metrics(metrics)
    if cam is not None and model is not None and data_dir is not None:
        metrics["cam_shortcut"] = _cam_shortcut(model, [data_dir / p for p in preds["paths"]], sources, cam)
        text += "\n" + _format_cam_shortcut(metrics["cam_shortcut"])
    return metrics, text + "\n" + _write_evaluation(metrics, labels, probs, classes, out_dir)


def _read_predictions(predictions_csv: Path) -> dict[str, Any]:
    """The evaluation inputs from a predictions CSV (groups and sources when it has those columns)."""
    from liverfib.evaluation import read_predictions_csv

    paths, labels, probs, classes, extra = read_predictions_csv(predictions_csv)
    return {"paths": paths, "labels": labels, "probs": probs, "classes": classes,
            "groups": extra.get("group"), "sources": extra.get("source"), "thresholds": None}


def _predict_for_evaluation(
    model: Any, data_dir: Path | None, split_csv: Path | None, subset: str, labels_csv: Path | None, dedup: bool
) -> dict[str, Any]:
    """The evaluation inputs from a model on a split subset, or on a whole labelled folder."""
    if data_dir is None:
        raise ConfigError("--model needs --data DIR (and optionally --split CSV --subset NAME)")
    if split_csv is not None and labels_csv is not None:
        raise ConfigError("--labels applies to a whole folder; with --split the labels come from the split CSV")
    if split_csv is None:
        return _predict_folder(model, data_dir, labels_csv, dedup=dedup)
    return _predict_split(model, data_dir, split_csv, subset, dedup=dedup)


def _format_cam_shortcut(shortcut: dict[str, Any]) -> str:
    return "\n".join(
        f"source {src}: CAM mass outside the fan {d['mass_outside_fan']['mean']:.2f} "
        f"[{d['mass_outside_fan']['ci95'][0]:.2f}, {d['mass_outside_fan']['ci95'][1]:.2f}] vs area "
        f"{d['area_outside_fan']:.2f}{'  SHORTCUT ALARM' if d['alarm'] else ''}"
        for src, d in sorted(shortcut.items())
    )


def _write_evaluation(metrics: dict[str, Any], labels: list[str], probs: Any, classes: list[str], out_dir: Path | None) -> str:
    """metrics.json and the plots into ``out_dir``; returns the line that says what was written."""
    if out_dir is None:
        return "(nothing written; pass --out FOLDER for metrics.json and plots)"
    from liverfib.io.jsonio import write_json
    from liverfib.report.plots import plot_evaluation

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(metrics, out_dir / "metrics.json")
    plot_evaluation(metrics, labels, probs, classes, out_dir)
    written = sorted(p.name for p in out_dir.iterdir() if p.is_file())
    return f"wrote {', '.join(written)} to {out_dir}"


def _add_source_cis(
    metrics: dict[str, Any],
    labels: list[str],
    probs: Any,
    classes: list[str],
    groups: list[str],
    sources: list[str],
    thresholds: Any,
    n_boot: int,
) -> None:
    """Per source: accuracy 95 % CI by a bootstrap over that source's groups (``accuracy_ci95``)."""
    import numpy as np

    from liverfib.evaluation import evaluate_probabilities

    per_source = metrics.get("per_source") or {}
    for src, entry in per_source.items():
        idx = [i for i, s in enumerate(sources) if s == src]
        sub = evaluate_probabilities(
            [labels[i] for i in idx], np.asarray(probs)[idx], classes, groups=[groups[i] for i in idx],
            thresholds=thresholds, n_boot=n_boot,
        )
        entry["accuracy_ci95"] = sub["ci95"].get("accuracy")
        entry["groups"] = len({groups[i] for i in idx})


def _predict_folder(model: str, data_dir: Path, labels_csv: Path | None, dedup: bool = True) -> dict[str, Any]:
    """Predict every image of a labelled folder; groups from the audit clustering (+ patients)."""
    from liverfib.dataset.audit import audit_folder
    from liverfib.dataset.split import assign_groups
    from liverfib.training.staging import STAGES

    audit = audit_folder(data_dir, labels_csv=labels_csv, progress=progress_bar("audit"))
    unknown = sorted({r["label"] for r in audit.files} - set(STAGES))
    if unknown:
        raise InputError(
            f"{data_dir}: labels {unknown} are not METAVIR stages {', '.join(STAGES)}; name the "
            "sub-folders F0..F4 or pass --labels CSV with path,label"
        )
    groups = assign_groups(audit.files)
    rows = [{**r, "group": g} for r, g in zip(audit.files, groups, strict=True)]
    if dedup:
        first: dict[str, dict[str, Any]] = {}
        for r in rows:
            first.setdefault(r["sha256"], r)
        rows = list(first.values())
    return _predict_rows(model, data_dir, rows)


def _predict_rows(model: str, data_dir: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage every row (``path`` relative to ``data_dir`` or absolute, ``label``, optional ``group``/
    ``cluster``/``source``) with ``model``: the inputs of the evaluation metrics."""
    from liverfib.inference.predictor import load_predictor

    predictor = load_predictor(model, engine="auto")
    out = predictor.predict_paths([_resolve(data_dir, r["path"]) for r in rows], progress=True)
    if out.errors:
        raise InputError(f"{len(out.errors)} files could not be read, e.g. {out.errors[0][1]}")
    return {
        "paths": [r["path"] for r in rows],
        "labels": [r["label"] for r in rows],
        "probs": out.probs,
        "classes": predictor.classes,
        "groups": [r.get("group") or r.get("cluster") or r["path"] for r in rows],
        "sources": [r.get("source") or "?" for r in rows],
        "thresholds": predictor.thresholds,
    }


def _resolve(data_dir: Path, rel: str) -> Path:
    path = Path(rel)
    return path if path.is_absolute() else data_dir / path


def _cam_shortcut(model: str, paths: list[Path], sources: list[str], method: str) -> dict[str, Any]:
    """Per source: mean share of CAM mass outside the fan (95 % CI) against the share of the image
    area outside the fan; an alarm when the CAM favours the outside more than a uniform map would."""
    import numpy as np

    from liverfib.evaluation.resampling import bootstrap
    from liverfib.explain.cam import cam_statistics, compute_cams
    from liverfib.inference.predictor import load_predictor
    from liverfib.io import read_image
    from liverfib.preprocess.fan import detect_fan, to_uint8

    predictor = load_predictor(model)
    out_mass, out_area = [], []
    for start in range(0, len(paths), 32):
        arrays = [read_image(p).array for p in paths[start : start + 32]]
        for a, c in zip(arrays, compute_cams(predictor, arrays, method=method), strict=True):
            fan = detect_fan(to_uint8(a)).mask
            out_mass.append(1.0 - (cam_statistics(c.heatmap, fan_mask=fan)["mass_in_fan"] or 0.0))
            out_area.append(1.0 - float(fan.mean()))
    result: dict[str, Any] = {}
    for src in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == src]
        mass = [out_mass[i] for i in idx]
        mean, ci = float(np.mean(mass)), bootstrap(mass)
        lo, hi = ci.low, ci.high
        area = float(np.mean([out_area[i] for i in idx]))
        result[src] = {"n": len(idx), "mass_outside_fan": {"mean": round(mean, 4), "ci95": [round(lo, 4), round(hi, 4)]},
                       "area_outside_fan": round(area, 4), "alarm": bool(lo > area)}
    return result


def _predict_split(
    model: str, data_dir: Path, split_csv: Path, subset: str, dedup: bool = True
) -> dict[str, Any]:
    """Predict one split subset; with ``dedup`` exact copies are counted once."""
    from liverfib.training.staging import load_split_rows

    return _predict_rows(model, data_dir, load_split_rows(data_dir, split_csv, subset, dedup=dedup))
