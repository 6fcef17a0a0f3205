"""Ultrasound staging workflow: audit, split, evaluate, predict, train."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError, ModelError
from liverfib.pipeline._common import collect_files, progress_bar, write_rows

__all__ = ["run_audit", "run_split", "run_evaluate", "run_predict", "run_train"]


# ----------------------------------------------------------------------------------------- audit
def _grouping(near_threshold: float, cnn_threshold: float, cnn: bool) -> Any:
    from liverfib.dataset.audit import GroupingRule

    return GroupingRule(pixel=near_threshold, cnn=cnn_threshold, use_cnn=cnn)


def run_audit(
    data_dir: Path,
    *,
    labels_csv: Path | None = None,
    out_dir: Path | None = None,
    near_threshold: float = 0.85,
    cnn_threshold: float = 0.82,
    cnn: bool = True,
) -> tuple[dict[str, Any], str]:
    """Audit a labelled folder; with ``out_dir`` write audit.json, files.csv and audit.html."""
    from liverfib.dataset.audit import audit_folder
    from liverfib.report.jsonio import write_json

    result = audit_folder(
        data_dir, labels_csv=labels_csv, grouping=_grouping(near_threshold, cnn_threshold, cnn),
        progress=progress_bar("audit"),
    )
    s = result.summary
    if out_dir is not None:
        from liverfib.report.audit_html import write_audit_html

        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(s, out_dir / "audit.json")
        write_rows(
            result.files, out_dir / "files.csv", ["path", "label", "patient", "sha256", "cluster", "source"]
        )
        write_audit_html(s, Path(data_dir), out_dir / "audit.html")
    lines = [f"Audit of {data_dir}", ""]
    lines.append(f"{'label':8s} {'files':>7s} {'distinct':>9s} {'clusters':>9s}")
    for lab, d in s["labels"].items():
        lines.append(f"{lab:8s} {d['files']:7d} {d['distinct_images']:9d} {d['unique_clusters']:9d}")
    lines += [
        "",
        f"unreadable files:            {s['n_unreadable']}",
        f"byte-identical copy groups:  {s['n_exact_duplicate_groups']} (distinct contents {s['n_unique_exact']})",
        f"pixel-identical distinct:    {s['n_unique_pixels']}",
        f"same-scan clusters:          {s['n_clusters']} (largest {s['largest_cluster']} distinct images)",
        f"grouping:                    {s['grouping']}",
        f"cross-label conflicts:       {len(s['cross_label_conflicts'])}",
        "",
        "sources (distinct images per label):",
    ]
    for src in s["sources"]:
        per = " ".join(f"{k}={v}" for k, v in src["distinct_per_label"].items())
        lines.append(f"  {src['source']} [{src['fingerprint']}]: {per}")
    lines += [f"source/label Cramér's V:     {s['source_label_cramers_v']:.3f}", "", "pairs of distinct images per similarity band:"]
    for name, bands in s["similarity_bands"].items():
        lines.append(f"  {name:6s} " + "  ".join(f"[{b['band'][0]:.2f},{b['band'][1]:.2f}) {b['pairs']}" for b in bands[:-1]))
    lines += ["", s["verdict"]]
    for bad in s["unreadable"][:20]:
        lines.append(f"  unreadable: {bad['error']}")
    return s, "\n".join(lines)


# ----------------------------------------------------------------------------------------- split
def run_split(
    data_dir: Path,
    out_csv: Path,
    *,
    labels_csv: Path | None = None,
    val: float = 0.15,
    test: float = 0.15,
    folds: int | None = None,
    seed: int = 0,
    naive: bool = False,
    near_threshold: float = 0.85,
    cnn_threshold: float = 0.82,
    cnn: bool = True,
    strict: bool = False,
) -> tuple[dict[str, Any], str]:
    """Audit (for clusters and sources) and write a grouped split CSV. Unreadable files are left out
    and listed with the reason (``strict``: stop instead, nothing written)."""
    from collections import Counter

    from liverfib.dataset.audit import audit_folder
    from liverfib.dataset.split import check_split_options, make_folds, make_split, write_split_csv
    from liverfib.io.outputs import check_output_file

    check_split_options(val=val, test=test, folds=folds, naive=naive)
    check_output_file(out_csv, (".csv",))
    result = audit_folder(
        data_dir, labels_csv=labels_csv, grouping=_grouping(near_threshold, cnn_threshold, cnn),
        progress=progress_bar("split"),
    )
    unreadable = result.summary["unreadable"]
    if strict and unreadable:
        raise InputError(f"--strict: {len(unreadable)} unreadable file(s), first: {unreadable[0]['error']}")
    if folds is not None:
        rows = make_folds(result.files, folds=folds, seed=seed)
    else:
        rows = make_split(result.files, val=val, test=test, seed=seed, naive=naive)
    write_split_csv(rows, out_csv)
    counts = Counter((r["split"], r["label"]) for r in rows)
    parts = sorted({r["split"] for r in rows})
    labels = sorted({r["label"] for r in rows})
    summary = {
        "out": str(out_csv),
        "mode": "naive-per-file" if naive else ("grouped-kfold" if folds else "grouped"),
        "n_files": len(rows),
        "n_groups": len({r["group"] for r in rows}),
        "counts": {p: {lab: counts.get((p, lab), 0) for lab in labels} for p in parts},
        "n_unreadable": result.summary["n_unreadable"],
        "unreadable": unreadable,
    }
    lines = [f"wrote {out_csv} ({summary['mode']}, {len(rows)} files, {summary['n_groups']} groups)"]
    lines.append(f"{'split':8s} " + " ".join(f"{lab:>6s}" for lab in labels))
    for p in parts:
        lines.append(f"{p:8s} " + " ".join(f"{counts.get((p, lab), 0):6d}" for lab in labels))
    if naive:
        lines.append("WARNING: naive split puts copies of one image on both sides; use only to show leakage.")
    if unreadable:
        lines.append(f"left out {len(unreadable)} unreadable file(s) (--strict stops instead):")
        lines += [f"  skipped: {_printable(u['error'])}" for u in unreadable]
    return summary, "\n".join(lines)


# -------------------------------------------------------------------------------------- evaluate
def _format_metrics(m: dict[str, Any]) -> str:
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

    from liverfib.evaluation import evaluate_probabilities, read_predictions_csv
    from liverfib.report.jsonio import write_json

    if (predictions_csv is None) == (model is None):
        raise ConfigError("give either --predictions CSV or --model (with --data and --split)")
    thresholds = None
    if predictions_csv is not None:
        _paths, labels, probs, classes, extra = read_predictions_csv(predictions_csv)
        groups = extra.get("group")
        sources = extra.get("source")
    else:
        if data_dir is None:
            raise ConfigError("--model needs --data DIR (and optionally --split CSV --subset NAME)")
        if split_csv is not None and labels_csv is not None:
            raise ConfigError("--labels applies to a whole folder; with --split the labels come from the split CSV")
        if split_csv is None:
            preds = _predict_folder(model, data_dir, labels_csv, dedup=not keep_copies)
        else:
            preds = _predict_split(model, data_dir, split_csv, subset, dedup=not keep_copies)
        labels, probs, classes = preds["labels"], preds["probs"], preds["classes"]
        groups, sources, thresholds = preds["groups"], preds["sources"], preds["thresholds"]
    if cam is not None and model is None:
        raise ConfigError("--cam needs --model (CAMs are computed from the model)")
    metrics = evaluate_probabilities(
        labels,
        np.asarray(probs),
        classes,
        groups=groups,
        sources=sources,
        thresholds=thresholds,
        n_boot=n_boot,
    )
    if sources is not None and groups is not None:
        _add_source_cis(metrics, labels, np.asarray(probs), classes, groups, sources, thresholds, n_boot)
    text = _format_metrics(metrics)
    if cam is not None and model is not None and data_dir is not None:
        metrics["cam_shortcut"] = _cam_shortcut(model, [data_dir / p for p in preds["paths"]], sources, cam)
        text += "\n" + "\n".join(
            f"source {src}: CAM mass outside the fan {d['mass_outside_fan']['mean']:.2f} "
            f"[{d['mass_outside_fan']['ci95'][0]:.2f}, {d['mass_outside_fan']['ci95'][1]:.2f}] vs area "
            f"{d['area_outside_fan']:.2f}{'  SHORTCUT ALARM' if d['alarm'] else ''}"
            for src, d in sorted(metrics["cam_shortcut"].items())
        )
    if out_dir is not None:
        from liverfib.report.plots import plot_evaluation

        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(metrics, out_dir / "metrics.json")
        plot_evaluation(metrics, labels, np.asarray(probs), classes, out_dir)
        written = sorted(p.name for p in out_dir.iterdir() if p.is_file())
        text += f"\nwrote {', '.join(written)} to {out_dir}"
    else:
        text += "\n(nothing written; pass --out FOLDER for metrics.json and plots)"
    return metrics, text


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


# --------------------------------------------------------------------------------------- predict
def run_predict(
    paths: Sequence[Path],
    *,
    model: str = "default",
    tta: bool = False,
    batch_size: int = 16,
    out_csv: Path | None = None,
    engine: str = "auto",
    strict: bool = False,
) -> tuple[dict[str, Any], str]:
    """Stage each image; returns per-image stage, probabilities and binary-task probabilities.

    ``engine``: ``auto`` runs the network in ONNX Runtime when it is installed (same weights,
    ~2-3x faster on CPU), ``torch`` forces PyTorch. Inputs, options and ``out_csv`` are checked
    before the model loads (a bad input fails in well under a second); ``out_csv`` is written
    atomically and only when at least one image was staged, so a failed run never replaces an
    earlier file. Unreadable files are skipped and listed; ``strict`` stops at the first one."""
    from liverfib.inference.onnx_engine import ENGINES
    from liverfib.inference.predictor import load_predictor, stage_files
    from liverfib.io.outputs import check_output_file

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if engine not in ENGINES:
        from liverfib.errors import unknown_choice

        raise unknown_choice("engine", engine, ENGINES)
    if str(model) != "default" and not Path(model).exists():
        raise ModelError(f"--model {model}: model bundle not found (use 'default' or the model/ folder "
                         "(or .zip) written by 'liverfib train')")
    if out_csv is not None:
        check_output_file(out_csv, (".csv",))
    files = collect_files(paths)
    loaded: dict[str, Any] = {}

    def load() -> Any:
        loaded["predictor"] = load_predictor(model, engine=engine)
        return loaded["predictor"]

    out = stage_files(files, load, tta=tta, batch_size=batch_size, progress=len(files) > 8)
    if not out.paths:
        raise InputError(f"no image could be staged ({len(out.errors)} refused): " +
                         "; ".join(_printable(e) for _, e in out.errors[:3]))
    if strict and out.errors:
        raise InputError(f"--strict: {len(out.errors)} file(s) refused, first: {out.errors[0][1]}")
    predictor = loaded["predictor"]
    results = out.as_records()
    summary = {
        "model": predictor.describe(),
        "n": len(results),
        "predictions": results,
        "n_skipped": len(out.errors),
        "errors": [{"path": str(p), "error": e} for p, e in out.errors],
    }
    if out_csv is not None:
        cols = (
            ["path", "stage"]
            + [f"prob_{c}" for c in predictor.classes]
            + ["p_ge_f2", "p_ge_f3", "p_f4", "warning"]
        )
        flat = [
            {
                "path": r["path"],
                "stage": r["stage"],
                **{f"prob_{k}": v for k, v in r["probabilities"].items()},
                "p_ge_f2": r["p_ge_f2"],
                "p_ge_f3": r["p_ge_f3"],
                "p_f4": r["p_f4"],
                "warning": r.get("warning", ""),
            }
            for r in results
        ]
        write_rows(flat, out_csv, cols)
        summary["out"] = str(out_csv)
    head = f"{'file':32s} {'stage':5s} " + " ".join(f"{c:>6s}" for c in predictor.classes) + "  P(>=F2) note"
    lines = [f"model: {predictor.describe()['name']}  (research use only)", head]
    for r in results:
        probs = " ".join(f"{v:6.2f}" for v in r["probabilities"].values())
        lines.append(
            f"{_display_name(r['path'])[:32]:32s} {r['stage']:5s} {probs}  {r['p_ge_f2']:6.2f}  {r.get('warning', '')}"
        )
    lines += [f"skipped: {_printable(e)}" for _, e in out.errors]
    if out.errors:
        lines.append(f"{len(out.errors)} file(s) skipped, reasons above (--strict stops at the first)")
    if out_csv is not None:
        lines.append(f"wrote {_printable(str(out_csv))}")
    return summary, "\n".join(lines)


def _display_name(path: str) -> str:
    """A file name safe to print on any terminal (non-UTF-8 bytes shown as \\xNN)."""
    return _printable(Path(path).name)


def _printable(text: str) -> str:
    """``text`` with undecodable file-name bytes (surrogate escapes) shown as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# ----------------------------------------------------------------------------------------- train
def run_train(
    data_dir: Path,
    split_csv: Path,
    out_dir: Path,
    *,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "cpu",
    val_subset: str = "val",
    threads: int | None = None,
) -> tuple[dict[str, Any], str]:
    """Train a staging model (see :mod:`liverfib.training.staging`)."""
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)
    from liverfib.training.staging import StagingConfig, train_staging

    cfg = StagingConfig.resolve(config_path, overrides or {})
    summary = train_staging(data_dir, split_csv, out_dir, cfg, device=device, val_subset=val_subset)
    text = f"trained {cfg.backbone}: checkpoint {summary['checkpoint']}\n" + _format_metrics(
        summary["val_metrics"]
    )
    return summary, text
