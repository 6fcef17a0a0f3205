"""MR elastography workflow: phantoms, one exam -> stiffness and stage, agreement, segmentation training."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._common import progress_bar
from liverfib.pipeline.mre_exam import SYNTHETIC_LABEL, measure_exam, synthetic_fields

__all__ = ["run_phantom_mre", "run_mre", "train_seg_mre"]

#: Keys every ``run_mre`` JSON summary holds (the CLI contract of issue 6).
MRE_JSON_KEYS = ("mean_stiffness_kpa", "stage", "slices", "roi_area_mm2")


# -------------------------------------------------------------------------------------- phantoms
def run_phantom_mre(n: int, seed: int, out_dir: Path, *, vendor: str | None = None, variant: str = "standard",
                    fmt: str = "dicom") -> tuple[dict[str, Any], str]:
    """Write ``n`` SYNTHETIC MRE exams (DICOM or NIfTI + truth.json) under ``out_dir``."""
    from liverfib.mre.phantom import write_phantoms

    truths = write_phantoms(Path(out_dir), n, seed, vendor=vendor, variant=variant, fmt=fmt,
                            progress=progress_bar("phantom mre"))
    exams = [{k: t[k] for k in ("exam_id", "vendor", "stage", "mean_stiffness_kpa", "n_slices")} for t in truths]
    summary = {"out_dir": str(out_dir), "n": n, "seed": seed, "variant": variant, "format": fmt,
               "synthetic": True, "exams": exams}
    lines = [f"Wrote {n} SYNTHETIC MRE phantom exams ({fmt}, {variant} variant) to {out_dir} (seed {seed})"]
    lines += [f"  {e['exam_id']}  {e['vendor']:8s} {e['stage']}  {e['mean_stiffness_kpa']:.2f} kPa  "
              f"{e['n_slices']} slices" for e in exams]
    return summary, "\n".join(lines)


# -------------------------------------------------------------------------------------- exams
def run_mre(
    exam_dir: Path,
    *,
    out_dir: Path | None = None,
    model: str = "default",
    mask: Path | None = None,
    cutoffs: Path | None = None,
    confidence_min_pct: float = 95.0,
    edge_margin_mm: float = 4.0,
    stiffness_units: str | None = None,
    overlays: bool = True,
) -> tuple[dict[str, Any], str]:
    """Read every MRE exam under ``exam_dir``, segment the liver (or take ``mask``), measure, stage.

    One exam (DICOM series or a NIfTI folder with ``stiffness.nii.gz``): its summary, with
    ``mean_stiffness_kpa`` and ``stage`` at the top. With ``out_dir``: ``mre.json``,
    ``liver_mask.nii.gz``, ``roi.nii.gz`` and ``overlay_slice<k>.png`` (``k`` from 1, as in
    ``slices[].slice``).

    Several exams (one per DICOM study or NIfTI exam folder): every exam is measured, one row each;
    the summary holds ``exams`` (one summary per exam) and, with ``out_dir``, ``mre.csv``
    (``exam,mean_stiffness_kpa,stage,...``, the input of ``liverfib agreement``) plus one
    sub-folder per exam. An exam that cannot be measured gets its ``error`` and no value.

    Every summary carries ``synthetic`` (and ``synthetic_reasons``): true when the exam is a phantom
    or the segmentation model was trained on phantoms only.
    """
    from liverfib.mre.dicom import read_mre_exams
    from liverfib.mre.stages import load_cutoffs

    qcfg = _roi_config(confidence_min_pct, edge_margin_mm)
    table = load_cutoffs(cutoffs)
    exams = read_mre_exams(exam_dir, stiffness_units=stiffness_units)
    if len(exams) == 1:
        summary, lines = measure_exam(exams[0], out_dir=out_dir, model=model, mask=mask, qcfg=qcfg,
                                      table=table, overlays=overlays)
        summary["exam_dir"] = str(exam_dir)
        if out_dir is not None:
            from liverfib.io.jsonio import write_json

            write_json(summary, Path(out_dir) / "mre.json")
        return summary, "\n".join(lines)
    if mask is not None:
        raise ConfigError(f"--mask is for one exam; {exam_dir} holds {len(exams)} exams "
                          f"({', '.join(e.exam_id for e in exams)}); pass one exam folder")
    results = _measure_each(exams, out_dir=out_dir, model=model, qcfg=qcfg, table=table, overlays=overlays)
    failed = [r["exam"] for r in results if r.get("error")]
    summary: dict[str, Any] = {
        "input": str(exam_dir), "n_exams": len(results), "n_failed": len(failed), "failed": failed,
        "synthetic": any(r["synthetic"] for r in results),
        "synthetic_reasons": sorted({x for r in results for x in r.get("synthetic_reasons", [])}),
        "exams": results,
    }
    lines = _table_lines(summary, exam_dir)
    if out_dir is not None:
        _write_table(summary, Path(out_dir))
        lines.append(f"wrote {Path(out_dir) / 'mre.csv'} (one row per exam; liverfib agreement --a it --b reference.csv)")
    return summary, "\n".join(lines)


def _roi_config(confidence_min_pct: float, edge_margin_mm: float) -> Any:
    from liverfib.mre.quantify import QuantifyConfig
    from liverfib.mre.stages import validation_message

    try:
        return QuantifyConfig(confidence_min_pct=confidence_min_pct, edge_margin_mm=edge_margin_mm)
    except ValueError as exc:
        raise ConfigError(f"invalid ROI settings: {validation_message(exc)}") from None


def _measure_each(exams: list[Any], *, out_dir: Path | None, model: str, qcfg: Any, table: Any,
                  overlays: bool) -> list[dict[str, Any]]:
    """Measure every exam (one sub-folder each under ``out_dir``); an exam that fails gets its ``error``."""
    results: list[dict[str, Any]] = []
    tick = progress_bar("mre")
    for i, exam in enumerate(exams):
        sub = None if out_dir is None else Path(out_dir) / exam.exam_id.replace("#", "_")
        try:
            r, _ = measure_exam(exam, out_dir=sub, model=model, mask=None, qcfg=qcfg, table=table, overlays=overlays)
            if sub is not None:
                from liverfib.io.jsonio import write_json

                write_json(r, sub / "mre.json")
        except InputError as exc:
            r = {"exam": exam.exam_id, "mean_stiffness_kpa": None, "stage": None, "error": str(exc),
                 **synthetic_fields(exam, None)}
        results.append(r)
        tick(i + 1, len(exams))
    return results


def _table_lines(summary: dict[str, Any], exam_dir: Path) -> list[str]:
    """One text row per exam (kPa, stage, ROI, slices, or its error)."""
    results, failed = summary["exams"], summary["failed"]
    lines = [SYNTHETIC_LABEL] if summary["synthetic"] else []
    lines += [f"{len(results)} MRE exams under {exam_dir}", "",
              f"{'exam':30s} {'kPa':>6s} {'stage':>5s} {'ROI cm²':>8s} {'slices':>6s}"]
    for r in results:
        if r.get("error"):
            lines.append(f"{r['exam']:30s} error: {r['error']}")
        else:
            lines.append(f"{r['exam']:30s} {r['mean_stiffness_kpa']:6.2f} {r['stage']:>5s} "
                         f"{r['roi_area_mm2'] / 100:8.1f} {r['n_slices']:6d}")
    if failed:
        lines.append(f"{len(failed)} of {len(results)} exams could not be measured: {', '.join(failed)}")
    return lines


def _write_table(summary: dict[str, Any], out_dir: Path) -> None:
    """``mre.csv`` (one row per exam, the input of ``liverfib agreement``) and ``mre.json``."""
    from liverfib.io.atomic import atomic_write
    from liverfib.io.jsonio import write_json

    columns = ["exam", "mean_stiffness_kpa", "stage", "roi_area_mm2", "n_slices", "layout", "synthetic", "error"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows({**r, "synthetic": str(bool(r["synthetic"])).lower()} for r in summary["exams"])
    atomic_write(out_dir / "mre.csv", data=buf.getvalue())
    write_json(summary, out_dir / "mre.json")
    summary["csv"] = str(out_dir / "mre.csv")


# -------------------------------------------------------------------------------------- training
def train_seg_mre(
    data_dir: Path,
    *,
    out_dir: Path,
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    val_fraction: float = 0.0,
    threads: int | None = None,
) -> tuple[dict[str, Any], str]:
    """``train-seg --task mre``: defaults < YAML ``config`` < CLI ``overrides`` (see :mod:`liverfib.mre.train`).

    ``overrides`` may hold ``arch`` (a model of :data:`liverfib.mre.models.SEG_MODELS`), ``epochs``,
    ``batch_size``, ``lr``, ``img_size``, ``seed``. ``val_fraction`` > 0 replaces the config's
    exam-level validation share (0 keeps it).
    """
    import yaml

    config_path = config

    from liverfib.mre.train import SegTrainConfig, train_mre_segmentation

    values: dict[str, Any] = {}
    if config_path is not None:
        try:
            values = yaml.safe_load(Path(config_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{config_path}: cannot read the YAML config ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{config_path}: expected a mapping of SegTrainConfig keys")
    extra = dict(overrides or {})
    if "arch" in extra:
        extra["model"] = extra.pop("arch")
    values.update(extra)
    if val_fraction > 0:
        values["val_fraction"] = val_fraction
    if threads is not None:
        values["threads"] = threads
    try:
        cfg = SegTrainConfig(**values)
    except ValueError as exc:
        from liverfib.mre.stages import validation_message

        raise ConfigError(f"invalid train-seg config: {validation_message(exc)}") from None
    metrics = train_mre_segmentation(Path(data_dir), Path(out_dir), cfg, progress=progress_bar("train-seg"))
    text = (f"Trained {cfg.model} ({metrics['n_train_exams']} train / {metrics['n_val_exams']} val exams, "
            f"{cfg.epochs} epochs, {cfg.img_size}px, CPU, random init) in {metrics['train_seconds']} s; "
            f"val Dice {metrics['val_dice_mean']}. Model bundle: {Path(out_dir) / 'best'}")
    return metrics, text
