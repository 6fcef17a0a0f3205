"""MR elastography workflow: phantoms, one exam -> stiffness and stage, agreement, segmentation training."""

from __future__ import annotations

import csv
import io
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._common import progress_bar

__all__ = ["run_phantom_mre", "run_mre", "run_agreement", "train_seg_mre"]

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


# -------------------------------------------------------------------------------------- one exam
@lru_cache(maxsize=4)
def _model(model: str) -> tuple[Any, dict[str, Any]]:
    """The ``mre-seg`` network of bundle ``model`` (or ``"default"``), eval mode, and its :func:`seg_info`."""
    from liverfib.errors import ModelError
    from liverfib.models.assets import resolve_model
    from liverfib.models.bundle import load_bundle
    from liverfib.models.tasks import network_from_bundle
    from liverfib.mre.models import seg_info

    path = resolve_model(model, "mre-seg")
    if not path.exists():
        raise ModelError(f"{path}: segmentation model not found; train one with "
                         "'liverfib train-seg --task mre' or use --model default")
    bundle = load_bundle(path, task="mre-seg")
    net = network_from_bundle(bundle, f"model '{bundle.network['name']}' ({path})")
    return net, seg_info(bundle, path)


def _read_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    if str(path).endswith(".npy"):
        try:
            mask = np.load(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read the mask ({exc})") from None
    else:
        from liverfib.io.nifti import read_nifti

        mask = read_nifti(path).array
    if mask.shape != shape:
        raise InputError(f"{path}: mask shape {mask.shape} does not match the exam {shape} (slices, rows, cols)")
    return np.asarray(mask) > 0


def _seg_is_synthetic(info: dict[str, Any]) -> bool:
    """True when the segmentation checkpoint was trained on phantoms only (its own record says so)."""
    if "synthetic" in info:
        return bool(info["synthetic"])
    return "phantom" in str(info.get("data", "")).lower() or "phantom" in str(info.get("train_config", "")).lower()


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
    from liverfib.mre.quantify import QuantifyConfig
    from liverfib.mre.stages import load_cutoffs, validation_message

    try:
        qcfg = QuantifyConfig(confidence_min_pct=confidence_min_pct, edge_margin_mm=edge_margin_mm)
    except ValueError as exc:
        raise ConfigError(f"invalid ROI settings: {validation_message(exc)}") from None
    table = load_cutoffs(cutoffs)
    exams = read_mre_exams(exam_dir, stiffness_units=stiffness_units)
    if len(exams) == 1:
        summary, lines = _measure_exam(exams[0], out_dir=out_dir, model=model, mask=mask, qcfg=qcfg,
                                       table=table, overlays=overlays)
        summary["exam_dir"] = str(exam_dir)
        if out_dir is not None:
            from liverfib.report.jsonio import write_json

            write_json(summary, Path(out_dir) / "mre.json")
        return summary, "\n".join(lines)
    if mask is not None:
        raise ConfigError(f"--mask is for one exam; {exam_dir} holds {len(exams)} exams "
                          f"({', '.join(e.exam_id for e in exams)}); pass one exam folder")
    results: list[dict[str, Any]] = []
    tick = progress_bar("mre")
    for i, exam in enumerate(exams):
        sub = None if out_dir is None else Path(out_dir) / exam.exam_id.replace("#", "_")
        try:
            r, _ = _measure_exam(exam, out_dir=sub, model=model, mask=None, qcfg=qcfg, table=table, overlays=overlays)
            if sub is not None:
                from liverfib.report.jsonio import write_json

                write_json(r, sub / "mre.json")
        except InputError as exc:
            r = {"exam": exam.exam_id, "mean_stiffness_kpa": None, "stage": None, "error": str(exc),
                 **_synthetic_fields(exam, None)}
        results.append(r)
        tick(i + 1, len(exams))
    failed = [r["exam"] for r in results if r.get("error")]
    summary: dict[str, Any] = {
        "input": str(exam_dir), "n_exams": len(results), "n_failed": len(failed), "failed": failed,
        "synthetic": any(r["synthetic"] for r in results),
        "synthetic_reasons": sorted({x for r in results for x in r.get("synthetic_reasons", [])}),
        "exams": results,
    }
    lines = [_SYNTHETIC_LABEL] if summary["synthetic"] else []
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
    if out_dir is not None:
        from liverfib.io.atomic import atomic_write
        from liverfib.report.jsonio import write_json

        columns = ["exam", "mean_stiffness_kpa", "stage", "roi_area_mm2", "n_slices", "layout", "synthetic", "error"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows({**r, "synthetic": str(bool(r["synthetic"])).lower()} for r in results)
        atomic_write(Path(out_dir) / "mre.csv", data=buf.getvalue())
        write_json(summary, Path(out_dir) / "mre.json")
        summary["csv"] = str(Path(out_dir) / "mre.csv")
        lines.append(f"wrote {Path(out_dir) / 'mre.csv'} (one row per exam; liverfib agreement --a it --b reference.csv)")
    return summary, "\n".join(lines)


_SYNTHETIC_LABEL = "[SYNTHETIC: phantom data and/or a phantom-trained segmentation model; not a clinical result]"


def _synthetic_fields(exam: Any, seg_info: dict[str, Any] | None) -> dict[str, Any]:
    reasons = []
    if exam.synthetic:
        reasons.append("exam is a synthetic phantom")
    if seg_info is not None and _seg_is_synthetic(seg_info):
        reasons.append("liver segmentation model trained on synthetic phantoms only")
    return {"synthetic": bool(reasons), "synthetic_reasons": reasons}


def _measure_exam(exam: Any, *, out_dir: Path | None, model: str, mask: Path | None, qcfg: Any, table: Any,
                  overlays: bool) -> tuple[dict[str, Any], list[str]]:
    """One exam -> (summary, text lines); writes masks/overlays under ``out_dir`` (not mre.json)."""
    from liverfib.image import Image
    from liverfib.mre.quantify import quantify_stiffness

    t0 = time.perf_counter()
    shape = exam.stiffness_kpa.shape
    mag = exam.magnitude.array if exam.magnitude is not None else None
    info: dict[str, Any] | None = None
    if mask is not None:
        liver = _read_mask(Path(mask), shape)
        seg: dict[str, Any] = {"source": "mask", "path": str(mask)}
    else:
        import torch

        from liverfib.mre.segment import prepare_input, segment_liver

        torch.set_num_threads(min(torch.get_num_threads(), 2))
        net, info = _model(model)
        liver = segment_liver(net, info, prepare_input(mag))
        seg = {"source": "model", "model": info["model"], "checkpoint": info["path"], "img_size": info["img_size"],
               "trained_on": info.get("data", "unknown")}
    result, roi = quantify_stiffness(exam.stiffness_kpa.array, liver, exam.confidence_pct.array,
                                     exam.pixel_spacing_mm, magnitude=mag, config=qcfg, cutoffs=table)
    px_mm2 = exam.pixel_spacing_mm[0] * exam.pixel_spacing_mm[1]
    for s, loc, n_liver in zip(result["slices"], exam.slice_locations_mm, liver.sum(axis=(1, 2)), strict=True):
        s["slice_location_mm"] = loc
        s["liver_area_mm2"] = round(float(n_liver * px_mm2), 4)
    summary: dict[str, Any] = {
        "exam": exam.exam_id,
        "mean_stiffness_kpa": result["mean_stiffness_kpa"],
        "stage": result["stage"],
        **_synthetic_fields(exam, info),
        "roi_area_mm2": result["roi_area_mm2"],
        "slices": result["slices"],
        "slice_numbering": "slice = 1..n in order of slice location (as in the text and overlay_slice<k>.png)",
        "n_slices": exam.n_slices,
        "layout": exam.layout,
        "series": exam.series,
        "segmentation": seg,
        "roi_rules": qcfg.model_dump(),
        "cutoffs_kpa": result["cutoffs_kpa"],
        "cutoffs_source": result["cutoffs_source"],
        "aggregation": "area-weighted mean of slice ROI means (QIBA MRE profile)",
        "warnings": exam.warnings,
        "seconds_to_measure": round(time.perf_counter() - t0, 3),
    }
    if out_dir is not None:
        from liverfib.io.nifti import write_nifti

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        spacing = exam.stiffness_kpa.spacing_mm
        write_nifti(Image(liver.astype(np.uint8), spacing_mm=spacing, modality="MR"), out_dir / "liver_mask.nii.gz")
        write_nifti(Image(roi.astype(np.uint8), spacing_mm=spacing, modality="MR"), out_dir / "roi.nii.gz")
        if overlays:
            from liverfib.mre.plots import write_slice_overlays

            background = mag if mag is not None else exam.confidence_pct.array
            paths = write_slice_overlays(out_dir, background, exam.stiffness_kpa.array, liver, roi, result["slices"],
                                         label="SYNTHETIC" if summary["synthetic"] else None)
            summary["overlays"] = [str(p) for p in paths]
        summary["seconds_total"] = round(time.perf_counter() - t0, 3)
    lines = [_SYNTHETIC_LABEL] if summary["synthetic"] else []
    lines += [f"MRE exam {exam.exam_id}  ({exam.layout})", "",
              f"{'slice':>5s} {'mean':>7s} {'median':>7s} {'IQR':>6s} {'ROI cm²':>8s}"]
    for s in result["slices"]:
        if s["mean_kpa"] is None:
            lines.append(f"{s['slice']:5d}    (no valid ROI)")
        else:
            lines.append(f"{s['slice']:5d} {s['mean_kpa']:7.2f} {s['median_kpa']:7.2f} {s['iqr_kpa']:6.2f} "
                         f"{s['area_mm2'] / 100:8.1f}")
    lines += ["", f"liver stiffness {result['mean_stiffness_kpa']:.2f} kPa (area-weighted, ROI "
              f"{result['roi_area_mm2'] / 100:.1f} cm²) -> stage {result['stage']}",
              f"cut-offs: {result['cutoffs_source']}"]
    lines += [f"warning: {w}" for w in exam.warnings]
    return summary, lines


# ------------------------------------------------------------------------------------- agreement
def _read_measurements(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        raise InputError(f"{path}: CSV not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if "exam" not in cols or "mean_stiffness_kpa" not in cols:
            raise InputError(f"{path}: expected columns exam,mean_stiffness_kpa[,stage][,mask], found "
                             f"{','.join(cols) or 'no header'}")
        rows = {}
        for r in reader:
            if r["exam"] in rows:
                raise InputError(f"{path}: exam '{r['exam']}' appears twice")
            rows[r["exam"]] = r
    return rows


def _float(value: str, path: Path, exam: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: exam '{exam}' has mean_stiffness_kpa '{value}', expected a number") from None
    if not np.isfinite(v):
        raise InputError(f"{path}: exam '{exam}' has a non-finite stiffness")
    return v


def run_agreement(
    a_csv: Path,
    b_csv: Path,
    *,
    out_dir: Path | None = None,
    cutoffs: Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[dict[str, Any], str]:
    """Agreement of A (e.g. automatic) with B (e.g. manual or truth) over the exams both list."""
    from liverfib.evaluation.agreement import bland_altman, icc, pearson_ci
    from liverfib.mre.agreement import mask_agreement, stage_agreement
    from liverfib.mre.stages import load_cutoffs, stage_from_kpa

    table = load_cutoffs(cutoffs)
    ra, rb = _read_measurements(Path(a_csv)), _read_measurements(Path(b_csv))
    common = sorted(set(ra) & set(rb))
    if len(common) < 3:
        raise InputError(f"{a_csv} and {b_csv} share {len(common)} exam ids (need >= 3); "
                         f"e.g. A has {sorted(ra)[:3]}, B has {sorted(rb)[:3]}")
    a = np.array([_float(ra[e]["mean_stiffness_kpa"], Path(a_csv), e) for e in common])
    b = np.array([_float(rb[e]["mean_stiffness_kpa"], Path(b_csv), e) for e in common])

    def stages(rows: dict[str, dict[str, str]], vals: np.ndarray) -> list[str]:
        return [rows[e].get("stage") or stage_from_kpa(v, table) for e, v in zip(common, vals, strict=True)]

    sa, sb = stages(ra, a), stages(rb, b)
    summary: dict[str, Any] = {
        "n": len(common),
        "only_in_a": sorted(set(ra) - set(rb)),
        "only_in_b": sorted(set(rb) - set(ra)),
        "pearson": pearson_ci(a, b),
        "icc": {f"icc{f[0]}_1": icc(np.column_stack([a, b]), form=f) for f in ("3,1", "2,1")},
        "bland_altman": bland_altman(a, b),
        "stage": stage_agreement(sa, sb, n_boot=n_boot, seed=seed),
    }
    has_masks = all(ra[e].get("mask") and rb[e].get("mask") for e in common)
    if has_masks:
        from liverfib.evaluation.segmentation import overlap_scores

        rows = []
        for e, st in zip(common, sb, strict=True):
            ma = _load_any_mask(Path(a_csv).parent / ra[e]["mask"])
            mb = _load_any_mask(Path(b_csv).parent / rb[e]["mask"])
            if ma.shape != mb.shape:
                raise InputError(f"exam '{e}': masks differ in shape {ma.shape} vs {mb.shape}")
            rows.append({"exam": e, "stage": st, **overlap_scores(ma, mb)})
        summary["masks"] = mask_agreement(rows, n_boot=n_boot, seed=seed)
    if out_dir is not None:
        from liverfib.mre.plots import write_agreement_plot
        from liverfib.report.jsonio import write_json

        out_dir = Path(out_dir)
        summary["plot"] = str(write_agreement_plot(out_dir / "bland_altman.png", a, b, summary["bland_altman"]))
        write_json(summary, out_dir / "agreement.json")
    p, ic, ba, st = summary["pearson"], summary["icc"], summary["bland_altman"]["kpa"], summary["stage"]
    lines = [
        f"Agreement of {a_csv} (A) with {b_csv} (B) over {len(common)} exams",
        f"Pearson r       {p['r']:.4f}  (95% CI {p['ci_low']:.4f}-{p['ci_high']:.4f})",
        f"ICC(2,1)        {ic['icc2_1']['icc']:.4f}  (95% CI {ic['icc2_1']['ci_low']:.4f}-{ic['icc2_1']['ci_high']:.4f})",
        f"ICC(3,1)        {ic['icc3_1']['icc']:.4f}  (95% CI {ic['icc3_1']['ci_low']:.4f}-{ic['icc3_1']['ci_high']:.4f})",
        f"Bland-Altman    bias {ba['bias']:+.3f} kPa (95% CI {ba['bias_ci_low']:+.3f} to {ba['bias_ci_high']:+.3f}), "
        f"LoA {ba['loa_low']:+.3f} to {ba['loa_high']:+.3f} kPa",
        f"stage kappa     {_fmt(st['kappa'])}, quadratic {_fmt(st['kappa_quadratic'])}, "
        f"agreement {st['percent_agreement']:.1f} %",
    ]
    if "masks" in summary:
        m = summary["masks"]["overall"]
        lines.append(f"mask Dice       {m['dice']:.4f} (95% CI {m['dice_ci_low']:.4f}-{m['dice_ci_high']:.4f}), "
                     f"IoU {m['iou']:.4f}")
    return summary, "\n".join(lines)


def _fmt(k: dict[str, Any]) -> str:
    if k["value"] is None:
        return "undefined"
    ci = f" (95% CI {k['ci_low']:.3f}-{k['ci_high']:.3f})" if k["ci_low"] is not None else ""
    return f"{k['value']:.3f}{ci}"


def _load_any_mask(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: mask file not found")
    if path.suffix == ".npy":
        return np.load(path) > 0
    from liverfib.io.nifti import read_nifti

    return read_nifti(path).array > 0


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
