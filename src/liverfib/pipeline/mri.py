"""MRI workflows: fibrosis staging (``predict-mri``), synthetic datasets, dataset listings
(training: :mod:`liverfib.pipeline.mri_train`; MR/CT liver masks: :mod:`liverfib.pipeline.segment_volume`).

Each ``run_*`` returns ``(json_summary, human_text)`` like the rest of :mod:`liverfib.pipeline`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._mri_common import (
    CIRRMRI_SPLITS,
    LIQA_CLASSES,
    LazySegmenter,
    case_progress,
    check_out_csv,
    file_stem,
    prediction_columns,
    prob_cells,
    staging_network,
)

__all__ = [
    "run_mri_stage",
    "run_mri_phantom",
    "run_mri_inspect",
]

def _stage_liqa_exam(exam: Any, net: Any, cfg: Any, seg: LazySegmenter, phases: list[str] | None) -> dict[str, Any]:
    """Stage one LiQA exam (any subset of phases) -> JSON-ready summary incl. ``stage_probs``."""
    import numpy as np

    from liverfib.mri.exam import LIQA_PHASES
    from liverfib.mri.staging import cumulative_to_stage_probs
    from liverfib.mri.staging_train import predict_cumulative, prepare_exam

    if phases:
        kept = {p: f for p, f in exam.phase_paths.items() if p in phases}
        if not kept:
            raise InputError(f"{exam.root}: none of the requested phases {phases} is present (has {list(exam.phases)})")
        exam = replace(exam, phase_paths=kept, missing_phases=tuple(p for p in LIQA_PHASES if p not in kept))
    crops, prep = prepare_exam(exam, cfg, seg_model=seg)
    cum, per = predict_cumulative(net, crops.x[None], crops.present[None])
    probs = cumulative_to_stage_probs(cum)[0]
    return {
        "exam": str(exam.root),
        "case_id": exam.case_id,
        "vendor": exam.vendor,
        "true_stage": f"S{exam.stage}" if exam.stage else None,
        "stage": f"S{int(np.argmax(probs)) + 1}",
        # from the monotone stage probabilities, so they equal the prob_S4 / 1 - prob_S1 of the CSV
        "p_s4": round(float(probs[3]), 4),
        "p_s2_s4": round(float(1 - probs[0]), 4),
        "stage_probs": {c: round(float(v), 4) for c, v in zip(LIQA_CLASSES, probs, strict=True)},
        "phases_used": prep["phases_used"],
        "missing_phases": [p for p in cfg.phases if p not in prep["phases_used"]],
        "reference_phase": prep["reference_phase"],
        "mask_source": prep["mask_source"],
        "per_phase": {
            p: {"p_s4": round(float(per[0, i, 2]), 4), "p_s2_s4": round(float(per[0, i, 0]), 4)}
            for i, p in enumerate(cfg.phases)
            if crops.present[i]
        },
    }


def _liqa_row(r: dict[str, Any]) -> dict[str, Any]:
    case = r["case_id"]
    return {
        "path": r["exam"], "label": r["true_stage"] or "",
        **prob_cells(r["stage_probs"].keys(), r["stage_probs"].values()),
        "group": case.split("-")[0] if r["true_stage"] else case, "source": r["vendor"] or "?",
        "stage": r["stage"], "p_s4": r["p_s4"], "p_s2_s4": r["p_s2_s4"], "phases_used": " ".join(r["phases_used"]),
    }


def run_mri_stage(
    path: Path,
    *,
    model: str = "default",
    seg_model: str = "default",
    phases: list[str] | None = None,
    mask: Path | None = None,
    labels_csv: Path | None = None,
    split: str = "test",
    unit: str = "patient",
    out_csv: Path | None = None,
) -> tuple[dict, str]:
    """``predict-mri``: stage one case or every case of a dataset root with a ``train-mri`` model.

    The model says which path applies (its config's ``layout``):

    * LiQA multi-phase model: ``path`` is a case folder (any subset of T1/T2/DWI_800/GED1..GED4,
      ``phases`` restricts them) or a LiQA root (``Vendor_*/NNNN-V-Sk``): every case is staged;
    * CirrMRI600+ per-slice model: ``path`` is one NIfTI volume (or DICOM series folder) of the
      model's sequence with an optional ``mask`` (else the segmenter ``seg_model``), or a
      CirrMRI600+ root: the scans of ``split`` (train/valid/test/all) of the model's sequence,
      labelled from ``labels_csv``.

    ``out_csv`` gets the predictions in the ``liverfib evaluate --predictions`` format (label,
    ``prob_<class>``, ``group`` = patient id, ``source`` = vendor or sequence); CirrMRI600+ rows are
    one per patient (``unit='patient'``, mean of the slice probabilities) or one per slice
    (``unit='slice'``, grouped by patient). The CSV is written only when every case succeeded.
    """
    from liverfib.mri.slice_staging import SliceStagingConfig

    if unit not in ("patient", "slice"):
        raise ConfigError(f"--unit must be 'patient' or 'slice', got {unit!r}")
    out_csv = check_out_csv(out_csv)
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found; pass a case folder, a NIfTI volume or a dataset root")
    _read_before_loading(path, mask)
    net, cfg, info = staging_network(model)
    seg = LazySegmenter(seg_model)
    if isinstance(cfg, SliceStagingConfig):
        if phases:
            raise ConfigError(f"--phases is for LiQA multi-phase models; this model stages one {cfg.sequence} volume")
        summary, text, rows, columns = _predict_cirrmri(path, net, cfg, seg, mask=mask, labels_csv=labels_csv,
                                                        split=split, unit=unit)
    else:
        if mask is not None:
            raise ConfigError("--mask is for single-volume (CirrMRI600+) models; a LiQA case carries mask_GED4.nii.gz")
        summary, text, rows, columns = _predict_liqa(path, net, cfg, seg, phases=phases)
    return _with_provenance(summary, text, rows, columns, model=model, info=info, out_csv=out_csv)


def _with_provenance(summary: dict[str, Any], text: str, rows: list[dict[str, Any]], columns: list[str], *,
                     model: str, info: dict[str, Any], out_csv: Path | None) -> tuple[dict, str]:
    """Add the model, what it was trained on and the SYNTHETIC flag; write the predictions CSV."""
    synthetic = bool(info.get("synthetic") or "SYNTHETIC" in str(info.get("data", "")))
    summary.update(model=str(model), model_trained_on=info.get("data", "unknown"), synthetic=synthetic)
    if synthetic:
        text += "\n[SYNTHETIC: model trained on synthetic data only; not a clinical result]"
    if out_csv is not None:
        from liverfib.pipeline._common import write_rows

        rows = [{**r, "synthetic": str(synthetic).lower()} for r in rows]
        write_rows(rows, out_csv, [*columns, "synthetic"])
        summary["predictions_csv"] = str(out_csv)
        text += f"\nwrote {len(rows)} rows to {out_csv} (liverfib evaluate --predictions {out_csv})"
    return summary, text


def _read_before_loading(path: Path, mask: Path | None) -> None:
    """Read one volume / one case (and ``mask``) before any model loads, so that a bad input (4D,
    NaN, corrupt, missing) fails in about a second. Dataset roots are checked case by case later."""
    from liverfib.io import read_image
    from liverfib.mri.layouts import detect_layout, read_liqa_case

    if mask is not None and not Path(mask).is_file():
        raise InputError(f"--mask {mask}: file not found")
    if path.is_file():
        read_image(path)
    elif path.is_dir() and detect_layout(path) is None:
        from liverfib.mri.exam import read_exam_volumes

        try:
            exam = read_liqa_case(path)
        except InputError:
            return  # not a LiQA case (e.g. a DICOM series folder): checked when it is staged
        read_exam_volumes(exam)


def _predict_liqa(path: Path, net: Any, cfg: Any, seg: LazySegmenter, *, phases: list[str] | None
                  ) -> tuple[dict[str, Any], str, list[dict[str, Any]], list[str]]:
    from collections import Counter

    from liverfib.mri.exam import LIQA_PHASES
    from liverfib.mri.layouts import detect_layout, list_liqa_exams, read_liqa_case

    if phases:
        unknown = [p for p in phases if p not in LIQA_PHASES]
        if unknown:
            raise ConfigError(f"Unknown phase(s) {unknown}; valid: {', '.join(LIQA_PHASES)}")
    columns = prediction_columns(LIQA_CLASSES, ["stage", "p_s4", "p_s2_s4", "phases_used"])
    if path.is_file():
        raise InputError(f"{path}: a file; this LiQA multi-phase model needs a case folder (T1, T2, DWI_800, "
                         "GED1..GED4 .nii.gz) or a LiQA root with Vendor_* folders")
    if detect_layout(path) == "cirrmri":
        raise InputError(f"{path}: a CirrMRI600+ root, but the model is a LiQA multi-phase model; pass a "
                         "'train-mri --layout cirrmri' model")
    if detect_layout(path) != "liqa":
        r = _stage_liqa_exam(read_liqa_case(path), net, cfg, seg, phases)
        r["fusion"] = cfg.fusion
        text = (f"{path}: stage {r['stage']}  P(S4)={r['p_s4']:.2f}  P(S2-S4)={r['p_s2_s4']:.2f}  "
                f"phases {','.join(r['phases_used'])} (mask: {r['mask_source']})")
        return r, text, [_liqa_row(r)], columns
    exams = list_liqa_exams(path)
    results = []
    for exam in case_progress(exams, "predict-mri"):
        try:
            results.append(_stage_liqa_exam(exam, net, cfg, seg, phases))
        except InputError as exc:
            raise InputError(f"case {exam.case_id}: {exc} (nothing written)") from None
    summary = {
        "root": str(path), "layout": "liqa", "n_exams": len(results), "fusion": cfg.fusion,
        "predicted_stages": dict(Counter(r["stage"] for r in results)), "exams": results,
    }
    lines = [f"{r['case_id']}: {r['stage']} P(S4)={r['p_s4']:.2f} P(S2-S4)={r['p_s2_s4']:.2f} "
             f"[{','.join(r['phases_used'])}]" for r in results]
    lines.append(f"{path}: staged {len(results)} exams; predicted {summary['predicted_stages']}")
    return summary, "\n".join(lines), [_liqa_row(r) for r in results], columns


def _predict_cirrmri(path: Path, net: Any, cfg: Any, seg: LazySegmenter, *, mask: Path | None,
                     labels_csv: Path | None, split: str, unit: str
                     ) -> tuple[dict[str, Any], str, list[dict[str, Any]], list[str]]:
    from collections import Counter

    from liverfib.mri.exam import MriExam
    from liverfib.mri.layouts import detect_layout, list_cirrmri_exams

    columns = prediction_columns(cfg.classes, ["predicted", "slice", "n_slices", "mask_source"])
    layout = detect_layout(path)
    if layout == "liqa" or (path.is_dir() and any(path.glob("GED4*"))):
        raise InputError(f"{path}: LiQA data, but the model is a per-slice {cfg.sequence} (CirrMRI600+) model; "
                         "pass one volume, a CirrMRI600+ root, or a LiQA 'train-mri' model")
    if layout == "cirrmri":
        if mask is not None:
            raise ConfigError("--mask is for one volume; a CirrMRI600+ root has its own *_masks folders")
        if split not in (*CIRRMRI_SPLITS, "all"):
            raise ConfigError(f"--split must be train, valid, test or all, got {split!r}")
        exams = [e for e in list_cirrmri_exams(path, labels_csv) if e.meta.get("sequence") == cfg.sequence]
        chosen = [e for e in exams if split == "all" or e.split == split]
        if not chosen:
            found = sorted({str(e.split) for e in exams})
            raise InputError(f"{path}: no {cfg.sequence} scans in split '{split}' (found splits {found}; "
                             f"sequence from the model)")
    else:
        if mask is not None and not Path(mask).is_file():
            raise InputError(f"{mask}: mask file not found")
        chosen = [MriExam(case_id=file_stem(path), root=path.parent, phase_paths={cfg.sequence: path},
                          mask_path=Path(mask) if mask else None, mask_phase=cfg.sequence if mask else None,
                          meta={"layout": "volume", "subject": file_stem(path), "sequence": cfg.sequence})]
    results, rows = [], []
    for exam in case_progress(chosen, "predict-mri") if len(chosen) > 1 else chosen:
        try:
            r, scan_rows = _stage_volume(exam, net, cfg, seg)
        except InputError as exc:
            raise InputError(f"scan {exam.case_id}: {exc} (nothing written)") from None
        results.append(r)
        rows += scan_rows[1:] if unit == "slice" else scan_rows[:1]
    if layout != "cirrmri":
        r = results[0]
        text = (f"{path}: {r['grade']} ({cfg.sequence}, mean of {r['n_slices']} slices; mask: {r['mask_source']})  "
                + "  ".join(f"P({c})={v:.2f}" for c, v in r["probs"].items()))
        return {**r, "unit": unit}, text, rows, columns
    summary = {"root": str(path), "layout": "cirrmri", "sequence": cfg.sequence, "split": split, "unit": unit,
               "n_scans": len(results), "predicted": dict(Counter(r["grade"] for r in results)), "scans": results}
    text = f"{path}: staged {len(results)} {cfg.sequence} scans ({split}); predicted {summary['predicted']}"
    return summary, text, rows, columns


def _stage_volume(exam: Any, net: Any, cfg: Any, seg: LazySegmenter) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One scan -> (summary, CSV rows: the patient row first, then one row per slice)."""
    from liverfib.mri.slice_staging import predict_slice_probs, scan_slices

    slices = scan_slices(exam, cfg, seg_model=seg)
    p = predict_slice_probs(net, slices.x)
    mean = p.mean(axis=0)
    label = cfg.classes[exam.stage - 1] if exam.stage else ""
    subject = str(exam.meta.get("subject", exam.case_id))
    path = str(exam.phase_paths[exam.phases[0]])
    r = {
        "scan": path, "case_id": exam.case_id, "subject": subject, "sequence": cfg.sequence, "split": exam.split,
        "true_grade": label or None, "grade": cfg.classes[int(mean.argmax())],
        "probs": {c: round(float(v), 4) for c, v in zip(cfg.classes, mean, strict=True)},
        "n_slices": len(p), "mask_source": slices.mask_source,
        "slice_grades": {int(k): cfg.classes[int(i)] for k, i in zip(slices.slice_index, p.argmax(1), strict=True)},
    }
    base = {"label": label, "group": subject, "source": cfg.sequence, "mask_source": slices.mask_source}
    rows = [{**base, "path": path, **prob_cells(cfg.classes, mean),
             "predicted": r["grade"], "slice": "mean", "n_slices": len(p)}]
    for k, pk in zip(slices.slice_index, p, strict=True):
        rows.append({**base, "path": f"{path}#z{int(k)}", **prob_cells(cfg.classes, pk),
                     "predicted": cfg.classes[int(pk.argmax())], "slice": int(k), "n_slices": 1})
    return r, rows


def run_mri_phantom(
    out: Path, *, layout: str = "liqa", n_subjects: int = 8, seed: int = 0, p_missing: float = 0.15, size: int = 96,
    slices: int = 32
) -> tuple[dict, str]:
    """Write a SYNTHETIC MRI dataset in the LiQA or the CirrMRI600+ layout (for demos and tests)."""
    from liverfib.mri.synthetic import SYNTHETIC_NOTE, write_cirrmri_dataset, write_liqa_dataset

    if layout not in ("liqa", "cirrmri"):
        raise ConfigError(f"--layout must be 'liqa' or 'cirrmri', got {layout!r}")
    if not 0 <= p_missing < 1:
        raise ConfigError(f"--p-missing must be in [0, 1), got {p_missing}")
    if size < 32 or slices < 8:
        raise ConfigError(f"--size must be >= 32 and --slices >= 8, got {size} and {slices}")
    if layout == "cirrmri":
        rows = write_cirrmri_dataset(out, n_subjects, seed=seed, shape=(slices, size, size))
        what = "CirrMRI600+-layout subjects (T1 + T2, labels.csv, Healthy_subjects/)"
    else:
        rows = write_liqa_dataset(out, n_subjects, seed=seed, shape=(slices, size, size), p_missing=p_missing)
        what = "LiQA-layout exams"
    summary = {"out": str(out), "layout": layout, "n_subjects": len(rows), "note": SYNTHETIC_NOTE, "subjects": rows}
    return summary, f"wrote {len(rows)} SYNTHETIC {what} to {out} ({SYNTHETIC_NOTE})"


def run_mri_inspect(root: Path, *, labels_csv: Path | None = None) -> tuple[dict, str]:
    """List the exams of a LiQA or CirrMRI600+ root (or one case folder): vendor, stage, phases, missing."""
    from collections import Counter

    from liverfib.mri.layouts import detect_layout, list_cirrmri_exams, list_liqa_exams, read_liqa_case

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: folder not found")
    detected = detect_layout(root)
    if detected == "liqa":
        exams, layout = list_liqa_exams(root), "liqa"
    elif detected == "cirrmri":
        exams, layout = list_cirrmri_exams(root, labels_csv), "cirrmri600"
    else:
        exams, layout = [read_liqa_case(root)], "liqa-case"
    missing = Counter(p for e in exams for p in e.missing_phases)
    summary = {
        "root": str(root),
        "layout": layout,
        "n_exams": len(exams),
        "by_vendor": dict(Counter(str(e.vendor) for e in exams)),
        "by_stage": dict(Counter(str(e.stage) for e in exams)),
        "annotated": sum(e.mask_path is not None for e in exams),
        "missing_phase_counts": dict(missing),
        "exams": [e.summary() for e in exams],
    }
    text = (
        f"{root}: {len(exams)} exams ({layout}); vendors {summary['by_vendor']}; stages {summary['by_stage']}; "
        f"{summary['annotated']} with liver mask; missing phases {dict(missing) or 'none'}"
    )
    return summary, text
