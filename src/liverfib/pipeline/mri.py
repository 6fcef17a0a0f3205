"""MRI workflows: liver segmentation (MR/CT volumes and slices), multi-phase staging, datasets
(training: :mod:`liverfib.pipeline.mri_train`).

Each ``run_*`` returns ``(json_summary, human_text)`` like the rest of :mod:`liverfib.pipeline`.
"""

from __future__ import annotations

import time
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
    prediction_columns,
    prob_cells,
)

__all__ = [
    "run_segment_volume",
    "run_mri_stage",
    "run_mri_phantom",
    "run_mri_inspect",
]

_VOLUME_SUFFIXES = (".nii.gz", ".nii")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*_VOLUME_SUFFIXES, ".png", ".jpg", ".jpeg", ".dcm", ".tif", ".tiff", ".bmp"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def run_segment_volume(
    paths: list[Path],
    *,
    out: Path,
    model: str = "default",
    as_json: bool = False,
    modality: str | None = None,
    series_uid: str | None = None,
    dicom_seg: bool = False,
) -> tuple[dict, str]:
    """Liver masks for MR/CT inputs with the 2D/3D MONAI segmenter.

    * a NIfTI file or DICOM series folder (searched recursively; ``series_uid`` picks one of
      several) -> ``out`` = ``mask.nii.gz`` (one input) or a folder (``<stem>_mask.nii.gz`` per
      input). The mask keeps the input's grid: a NIfTI input's own voxel order and affine, a DICOM
      input the affine its slice geometry gives. Beside it ``<mask>_qc.png`` (slices per axis with the
      mask outline and the volume in ml) and, with ``dicom_seg``, ``<mask>_seg.dcm``: a DICOM SEG
      whose frames reference the source slices (DICOM input only). JSON gives the liver ``volume_ml``.
    * a 2D slice (PNG/JPEG/single-frame DICOM) -> ``out`` is a folder; ``<stem>_mask.png`` uint8 0/255.

    ``modality`` ('mr' or 'ct'): inputs whose DICOM Modality says otherwise, or that are colour or
    cine, are refused before anything is written.
    """
    from liverfib.io import read_image
    from liverfib.io.dicom import read_dicom_series
    from liverfib.mri.maskio import write_mask_like
    from liverfib.mri.segmentation import load_seg_model
    from liverfib.mri.shape import liver_volume_ml
    from liverfib.pipeline.segment import check_segment_modality
    from liverfib.report.montage import write_mask_montage

    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("No input given; pass a NIfTI volume, a DICOM series folder or a 2D slice")
    out = Path(out)
    out_is_file = out.name.endswith((*_VOLUME_SUFFIXES, ".png"))
    if out_is_file and len(paths) > 1:
        raise ConfigError(f"--out {out} names one file but {len(paths)} inputs were given; pass a folder")
    if series_uid is not None and not any(p.is_dir() for p in paths):
        raise ConfigError(f"--series {series_uid} picks a DICOM series inside a folder; no folder was given")
    if dicom_seg:
        not_series = [str(p) for p in paths if not p.is_dir()]
        if not_series:
            raise ConfigError(f"--dicom-seg needs DICOM series folders as input (the SEG references their "
                              f"slices); not a folder: {', '.join(not_series[:3])}")
    images = []
    for path in paths:  # read and check every input before anything is written
        image = read_dicom_series(path, series_uid=series_uid) if path.is_dir() else read_image(path)
        if image.meta.get("is_sequence"):
            raise InputError(f"{path}: a cine/multi-frame sequence, expected an MR/CT volume or slice")
        reason = check_segment_modality(image, modality or "mr/ct")
        if reason:
            raise InputError(f"{path}: {reason}")
        if image.ndim == 3:
            target = out if out_is_file else out / f"{_stem(path)}_mask.nii.gz"
            if not target.name.endswith(_VOLUME_SUFFIXES):
                raise ConfigError(f"{path} is a volume; --out must end in .nii.gz (or be a folder), got {out}")
            if dicom_seg and "native_ornt" not in image.meta:
                raise InputError(f"{path}: --dicom-seg needs slices with ImagePositionPatient/Orientation")
        else:
            if out_is_file:
                raise ConfigError(f"{path} is a 2D slice; --out must be a folder (writes <stem>_mask.png), got {out}")
            if dicom_seg:
                raise ConfigError(f"{path}: --dicom-seg is for volumes (DICOM series folders), got a 2D slice")
            target = out / f"{_stem(path)}_mask.png"
        images.append((path, image, target))
    seg = load_seg_model(model)
    results: list[dict[str, Any]] = []
    for path, image, target in images:
        t0 = time.time()
        mask = seg.segment(image.array)
        write_mask_like(mask, image, target)
        entry: dict[str, Any] = {
            "input": str(path),
            "mask": str(target),
            "kind": "volume" if image.ndim == 3 else "slice",
            "modality": image.modality,
            "shape": list(image.shape),
            "spacing_mm": list(image.spacing_mm) if image.spacing_mm else None,
            "liver_voxels": int(mask.sum()),
        }
        if image.ndim == 3:
            volume_ml = round(liver_volume_ml(mask, image.spacing_mm), 2) if image.spacing_mm else None
            entry["volume_ml"] = volume_ml
            base = target.parent / _stem(target)
            qc = write_mask_montage(image.array, mask, base.with_name(base.name + "_qc.png"),
                                    spacing_mm=image.spacing_mm, volume_ml=volume_ml,
                                    title=f"{path.name} ({image.modality}), liverfib MR/CT liver segmenter",
                                    window=(-160.0, 240.0) if image.modality == "CT" else None)
            entry["qc_png"] = str(qc)
            if dicom_seg:
                entry["dicom_seg"] = str(_write_volume_seg(image, mask, base.with_name(base.name + "_seg.dcm")))
            if image.meta.get("SeriesInstanceUID"):
                entry["series_uid"] = image.meta["SeriesInstanceUID"]
        else:
            entry["area_mm2"] = (
                round(float(mask.sum() * image.spacing_mm[0] * image.spacing_mm[1]), 1) if image.spacing_mm else None
            )
        entry["seconds"] = round(time.time() - t0, 2)
        results.append(entry)
    summary: dict[str, Any] = {"model": str(model), "model_info": seg.info.get("trained_on"), "results": results}
    if len(results) == 1 and "volume_ml" in results[0]:
        summary["volume_ml"] = results[0]["volume_ml"]
    lines = []
    for r in results:
        what = f"liver {r['volume_ml']} ml" if r.get("volume_ml") is not None else f"{r['liver_voxels']} liver voxels"
        extra = "".join(f", {k.replace('_', ' ')} {r[k]}" for k in ("qc_png", "dicom_seg") if k in r)
        lines.append(f"{r['input']}: {what} -> {r['mask']}{extra} ({r['seconds']} s)")
    return summary, "\n".join(lines)


def _write_volume_seg(image: Any, mask: Any, path: Path) -> Path:
    """DICOM SEG of ``mask`` (on the volume grid) whose frames reference the source slices."""
    from liverfib.clinical.dicom_out import write_seg_series
    from liverfib.io.dicom import read_series_headers, to_source_frames

    write_seg_series(read_series_headers(image), to_source_frames(mask, image), path)
    return path


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
    crops, prep = prepare_exam(exam, cfg, seg_model=seg() if exam.mask_path is None else None)
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
    from liverfib.mri.staging import load_staging_model

    if unit not in ("patient", "slice"):
        raise ConfigError(f"--unit must be 'patient' or 'slice', got {unit!r}")
    out_csv = check_out_csv(out_csv)
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found; pass a case folder, a NIfTI volume or a dataset root")
    _read_before_loading(path, mask)
    net, cfg, info = load_staging_model(model)
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
        chosen = [MriExam(case_id=_stem(path), root=path.parent, phase_paths={cfg.sequence: path},
                          mask_path=Path(mask) if mask else None, mask_phase=cfg.sequence if mask else None,
                          meta={"layout": "volume", "subject": _stem(path), "sequence": cfg.sequence})]
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

    slices = scan_slices(exam, cfg, seg_model=seg() if exam.mask_path is None else None)
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
