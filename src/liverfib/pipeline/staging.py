"""Ultrasound staging data and training: audit a labelled folder, write a grouped split, train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._common import printable, progress_bar, write_rows

__all__ = ["run_audit", "run_split", "run_train"]


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
    from liverfib.io.jsonio import write_json

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
        lines += [f"  skipped: {printable(u['error'])}" for u in unreadable]
    return summary, "\n".join(lines)


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
    from liverfib.pipeline.evaluate import format_metrics
    from liverfib.training.staging import StagingConfig, train_staging
    from liverfib.training.staging_cv import train_staging_cv

    cfg = StagingConfig.resolve(config_path, overrides or {})
    if cfg.select == "cv":
        if device != "cpu":
            raise ConfigError("select: cv runs the frozen-feature probe on the CPU; use --device cpu")
        summary = train_staging_cv(data_dir, split_csv, out_dir, cfg)
    else:
        summary = train_staging(data_dir, split_csv, out_dir, cfg, device=device, val_subset=val_subset)
    text = f"trained {cfg.backbone}: checkpoint {summary['checkpoint']}\n" + format_metrics(
        summary["val_metrics"]
    )
    return summary, text
