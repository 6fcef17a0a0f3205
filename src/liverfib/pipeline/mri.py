"""MRI workflows: liver segmentation (MR/CT volumes and slices), multi-phase staging, datasets.

Each ``run_*`` returns ``(json_summary, human_text)`` like the rest of :mod:`liverfib.pipeline`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError

__all__ = [
    "run_segment_volume",
    "run_mri_stage",
    "run_mri_phantom",
    "run_mri_inspect",
    "run_mri_train",
    "run_train_seg_mri",
]

_VOLUME_SUFFIXES = (".nii.gz", ".nii")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*_VOLUME_SUFFIXES, ".png", ".jpg", ".jpeg", ".dcm", ".tif", ".tiff", ".bmp"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def run_segment_volume(
    paths: list[Path], *, out: Path, model: str = "default", as_json: bool = False
) -> tuple[dict, str]:
    """Liver masks for MR/CT inputs with the 2D/3D MONAI segmenter.

    * a NIfTI file or DICOM series folder -> ``out`` = ``mask.nii.gz`` (one input) or a folder
      (``<stem>_mask.nii.gz`` per input); the mask keeps the input's grid and affine; JSON gives
      the liver ``volume_ml``.
    * a 2D slice (PNG/JPEG/single-frame DICOM) -> ``out`` is a folder; ``<stem>_mask.png`` uint8 0/255.
    """
    from liverfib.io import read_image
    from liverfib.mri.maskio import write_mask_like
    from liverfib.mri.segmentation import load_seg_model
    from liverfib.mri.shape import liver_volume_ml

    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("No input given; pass a NIfTI volume, a DICOM series folder or a 2D slice")
    out = Path(out)
    out_is_file = out.name.endswith((*_VOLUME_SUFFIXES, ".png"))
    if out_is_file and len(paths) > 1:
        raise ConfigError(f"--out {out} names one file but {len(paths)} inputs were given; pass a folder")
    seg = load_seg_model(model)
    results: list[dict[str, Any]] = []
    for path in paths:
        t0 = time.time()
        image = read_image(path)
        if image.meta.get("is_sequence"):
            raise InputError(f"{path}: a cine/multi-frame sequence, expected an MR/CT volume or slice")
        if image.ndim == 3:
            target = out if out_is_file else out / f"{_stem(path)}_mask.nii.gz"
            if not target.name.endswith(_VOLUME_SUFFIXES):
                raise ConfigError(f"{path} is a volume; --out must end in .nii.gz (or be a folder), got {out}")
        else:
            if out_is_file:
                raise ConfigError(f"{path} is a 2D slice; --out must be a folder (writes <stem>_mask.png), got {out}")
            target = out / f"{_stem(path)}_mask.png"
        mask = seg.segment(image.array)
        write_mask_like(mask, image, target)
        entry: dict[str, Any] = {
            "input": str(path),
            "mask": str(target),
            "kind": "volume" if image.ndim == 3 else "slice",
            "shape": list(image.shape),
            "spacing_mm": list(image.spacing_mm) if image.spacing_mm else None,
            "liver_voxels": int(mask.sum()),
            "seconds": round(time.time() - t0, 2),
        }
        if image.ndim == 3:
            entry["volume_ml"] = round(liver_volume_ml(mask, image.spacing_mm), 2) if image.spacing_mm else None
        else:
            entry["area_mm2"] = (
                round(float(mask.sum() * image.spacing_mm[0] * image.spacing_mm[1]), 1) if image.spacing_mm else None
            )
        results.append(entry)
    summary: dict[str, Any] = {"model": str(model), "model_info": seg.info.get("trained_on"), "results": results}
    if len(results) == 1 and "volume_ml" in results[0]:
        summary["volume_ml"] = results[0]["volume_ml"]
    lines = []
    for r in results:
        what = f"liver {r['volume_ml']} ml" if r.get("volume_ml") is not None else f"{r['liver_voxels']} liver voxels"
        lines.append(f"{r['input']}: {what} -> {r['mask']} ({r['seconds']} s)")
    return summary, "\n".join(lines)


_LIQA_CLASSES = ("S1", "S2", "S3", "S4")
_CIRRMRI_SPLITS = ("train", "valid", "test")


def _check_out_csv(out_csv: Path | None) -> Path | None:
    """``--out`` must name a .csv file; its folder is created. Checked before any work starts."""
    if out_csv is None:
        return None
    out_csv = Path(out_csv)
    if out_csv.suffix.lower() != ".csv" or out_csv.is_dir():
        raise ConfigError(f"--out must name a .csv file (e.g. preds.csv), got {out_csv}")
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    return out_csv


def _prediction_columns(classes: tuple[str, ...] | list[str], extra: list[str]) -> list[str]:
    """The ``liverfib evaluate --predictions`` columns, then ``extra`` (ignored by evaluate)."""
    return ["path", "label", *[f"prob_{c}" for c in classes], "group", "source", *extra]


def _prob_cells(classes: Any, probs: Any) -> dict[str, str]:
    """``prob_<class>`` cells of one predictions-CSV row."""
    return {f"prob_{c}": f"{float(v):.6f}" for c, v in zip(classes, probs, strict=True)}


class _LazySegmenter:
    """The liver segmenter, loaded the first time a scan without a mask needs it."""

    def __init__(self, name: str) -> None:
        self.name, self._model = name, None

    def __call__(self) -> Any:
        if self._model is None:
            from liverfib.mri.segmentation import load_seg_model

            self._model = load_seg_model(self.name)
        return self._model


def _stage_liqa_exam(exam: Any, net: Any, cfg: Any, seg: _LazySegmenter, phases: list[str] | None) -> dict[str, Any]:
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
        "stage_probs": {c: round(float(v), 4) for c, v in zip(_LIQA_CLASSES, probs, strict=True)},
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
        **_prob_cells(r["stage_probs"].keys(), r["stage_probs"].values()),
        "group": case.split("-")[0] if r["true_stage"] else case, "source": r["vendor"] or "?",
        "stage": r["stage"], "p_s4": r["p_s4"], "p_s2_s4": r["p_s2_s4"], "phases_used": " ".join(r["phases_used"]),
    }


def _progress(items: list[Any], desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="case", leave=False, mininterval=0.5, disable=None)


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
    out_csv = _check_out_csv(out_csv)
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found; pass a case folder, a NIfTI volume or a dataset root")
    net, cfg, info = load_staging_model(model)
    seg = _LazySegmenter(seg_model)
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


def _predict_liqa(path: Path, net: Any, cfg: Any, seg: _LazySegmenter, *, phases: list[str] | None
                  ) -> tuple[dict[str, Any], str, list[dict[str, Any]], list[str]]:
    from collections import Counter

    from liverfib.mri.exam import LIQA_PHASES
    from liverfib.mri.layouts import detect_layout, list_liqa_exams, read_liqa_case

    if phases:
        unknown = [p for p in phases if p not in LIQA_PHASES]
        if unknown:
            raise ConfigError(f"Unknown phase(s) {unknown}; valid: {', '.join(LIQA_PHASES)}")
    columns = _prediction_columns(_LIQA_CLASSES, ["stage", "p_s4", "p_s2_s4", "phases_used"])
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
    for exam in _progress(exams, "predict-mri"):
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


def _predict_cirrmri(path: Path, net: Any, cfg: Any, seg: _LazySegmenter, *, mask: Path | None,
                     labels_csv: Path | None, split: str, unit: str
                     ) -> tuple[dict[str, Any], str, list[dict[str, Any]], list[str]]:
    from collections import Counter

    from liverfib.mri.exam import MriExam
    from liverfib.mri.layouts import detect_layout, list_cirrmri_exams

    columns = _prediction_columns(cfg.classes, ["predicted", "slice", "n_slices", "mask_source"])
    layout = detect_layout(path)
    if layout == "liqa" or (path.is_dir() and any(path.glob("GED4*"))):
        raise InputError(f"{path}: LiQA data, but the model is a per-slice {cfg.sequence} (CirrMRI600+) model; "
                         "pass one volume, a CirrMRI600+ root, or a LiQA 'train-mri' model")
    if layout == "cirrmri":
        if mask is not None:
            raise ConfigError("--mask is for one volume; a CirrMRI600+ root has its own *_masks folders")
        if split not in (*_CIRRMRI_SPLITS, "all"):
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
    for exam in _progress(chosen, "predict-mri") if len(chosen) > 1 else chosen:
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


def _stage_volume(exam: Any, net: Any, cfg: Any, seg: _LazySegmenter) -> tuple[dict[str, Any], list[dict[str, Any]]]:
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
    rows = [{**base, "path": path, **_prob_cells(cfg.classes, mean),
             "predicted": r["grade"], "slice": "mean", "n_slices": len(p)}]
    for k, pk in zip(slices.slice_index, p, strict=True):
        rows.append({**base, "path": f"{path}#z{int(k)}", **_prob_cells(cfg.classes, pk),
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


def run_mri_train(
    data: Path,
    out: Path,
    *,
    layout: str = "auto",
    sequence: str | None = None,
    labels_csv: Path | None = None,
    fusion: str = "consensus",
    encoder: str = "small_cnn",
    steps: int = 250,
    cam_weight: float = 0.5,
    val_fraction: float = 0.25,
    n_slices: int = 16,
    crop_size: int | None = None,
    seed: int = 0,
    threads: int | None = 1,
    n_boot: int = 1000,
) -> tuple[dict, str]:
    """``train-mri``: the LiQA multi-phase staging net (S1..S4) or the CirrMRI600+ per-slice net (3 grades).

    ``layout`` ``auto`` reads it from ``data`` (``Vendor_*`` -> liqa, ``Cirrhosis_T*_3D`` -> cirrmri).
    LiQA: a ``val_fraction`` of the subjects (NNNN ids) is held out; AUC S4 vs S1-S3, AUC S2-S4 vs S1
    and accuracy with subject-bootstrap CIs. CirrMRI600+: ``sequence`` T1 or T2 and ``labels_csv``
    are required; train_ scans train, valid_ scans select the checkpoint, test_ scans are scored per
    slice and per patient (mean of the slice probabilities), CIs from a bootstrap over patients.
    Writes ``model.pt``, ``metrics.json`` and predictions CSVs (``evaluate --predictions`` format).
    """
    from liverfib.mri.layouts import detect_layout

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    data = Path(data)
    if not data.is_dir():
        raise InputError(f"{data}: dataset folder not found")
    if layout == "auto":
        found = detect_layout(data)
        if found is None:
            names = sorted(d.name for d in data.iterdir())[:8]
            raise InputError(f"{data}: expected a LiQA root (Vendor_* folders) or a CirrMRI600+ root "
                             f"(Cirrhosis_T1_3D/, Cirrhosis_T2_3D/), found {names}")
        layout = found
    if layout == "cirrmri":
        if sequence not in ("T1", "T2"):
            raise ConfigError(f"--layout cirrmri needs --sequence T1 or T2, got {sequence!r}")
        if labels_csv is None:
            raise ConfigError("--layout cirrmri needs --labels CSV (id column + radiological evaluation 1-3)")
        return _train_cirrmri(data, Path(out), sequence=sequence, labels_csv=labels_csv, encoder=encoder, steps=steps,
                              n_slices=n_slices, crop_size=crop_size or 64, seed=seed, n_boot=n_boot)
    if layout != "liqa":
        raise ConfigError(f"--layout must be auto, liqa or cirrmri, got {layout!r}")
    if sequence is not None or labels_csv is not None:
        raise ConfigError("--sequence and --labels are for --layout cirrmri; LiQA stages come from the folder names")
    return _train_liqa(data, Path(out), fusion=fusion, encoder=encoder, steps=steps, cam_weight=cam_weight,
                       val_fraction=val_fraction, crop_size=crop_size, seed=seed, n_boot=n_boot)


def _is_synthetic(data: Path) -> bool:
    """The phantom writers put SYNTHETIC.txt at the root of every generated dataset."""
    return (data / "SYNTHETIC.txt").is_file()


def _data_note(data: Path) -> str:
    return f"{data} (SYNTHETIC)" if _is_synthetic(data) else str(data)


def _train_liqa(data: Path, out: Path, *, fusion: str, encoder: str, steps: int, cam_weight: float,
                val_fraction: float, crop_size: int | None, seed: int, n_boot: int) -> tuple[dict, str]:
    import numpy as np

    from liverfib.evaluation.metrics import evaluate_probabilities
    from liverfib.mri.layouts import list_liqa_exams
    from liverfib.mri.staging import StagingConfig, cumulative_to_stage_probs, save_staging_model
    from liverfib.mri.staging_train import predict_cumulative, prepare_exam, stack_crops, train_staging
    from liverfib.pipeline._common import write_rows
    from liverfib.report.jsonio import write_json

    if not 0 < val_fraction < 1:
        raise ConfigError(f"--val must be in (0, 1), got {val_fraction}")
    try:
        cfg = StagingConfig(fusion=fusion, encoder=encoder, **({"crop_size": crop_size} if crop_size else {}))  # type: ignore[arg-type]
    except Exception as exc:  # pydantic ValidationError
        raise ConfigError(f"invalid staging option: {str(exc).splitlines()[-2].strip()}") from None
    exams = [e for e in list_liqa_exams(data) if e.stage is not None]
    if len(exams) < 8:
        raise InputError(f"{data}: {len(exams)} labelled exams; need at least 8 to train and validate")
    subjects = sorted({e.case_id.split("-")[0] for e in exams})
    rng = np.random.default_rng(seed)
    val_subjects = set(rng.choice(subjects, size=max(2, round(val_fraction * len(subjects))), replace=False).tolist())
    crops = [prepare_exam(e, cfg)[0] for e in _progress(exams, "prepare")]
    x, present, liver = stack_crops(crops)
    stages = np.array([e.stage for e in exams])
    is_val = np.array([e.case_id.split("-")[0] in val_subjects for e in exams])
    net, log = train_staging(x[~is_val], present[~is_val], liver[~is_val], stages[~is_val], cfg, steps=steps,
                             cam_weight=cam_weight, seed=seed)
    cum, _ = predict_cumulative(net, x[is_val], present[is_val])
    probs = cumulative_to_stage_probs(cum)
    val_exams = [e for e, v in zip(exams, is_val, strict=True) if v]
    ids = [e.case_id.split("-")[0] for e in val_exams]
    labels = [f"S{s}" for s in stages[is_val]]
    metrics = evaluate_probabilities(labels, probs, list(_LIQA_CLASSES), groups=ids,
                                     sources=[str(e.vendor) for e in val_exams], n_boot=n_boot, seed=seed)
    result = {
        "layout": "liqa", "data": str(data), "n_train": int((~is_val).sum()), "n_val": int(is_val.sum()),
        "auc_s4_vs_s1_s3": metrics["auc_f4"], "auc_s4_ci95": metrics["ci95"]["auc_f4"],
        "auc_s2_s4_vs_s1": metrics["auc_ge_f2"], "auc_s2_s4_ci95": metrics["ci95"]["auc_ge_f2"],
        "stage_accuracy": metrics["accuracy"], "stage_accuracy_ci95": metrics["ci95"]["accuracy"],
        "split": "validation subjects (grouped by NNNN id)", "steps": len(log), "config": cfg.model_dump(mode="json"),
    }
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"path": str(e.root), "label": lab, **_prob_cells(_LIQA_CLASSES, p),
             "group": g, "source": e.vendor} for e, lab, p, g in zip(val_exams, labels, probs, ids, strict=True)]
    write_rows(rows, out / "val_predictions.csv", _prediction_columns(_LIQA_CLASSES, []))
    write_json({**result, "metrics": metrics}, out / "metrics.json")
    save_staging_model(out / "model.pt", net, data=_data_note(data), synthetic=_is_synthetic(data), layout="liqa",
                       classes=list(_LIQA_CLASSES), heldout=result)
    text = (f"trained on {result['n_train']} exams; validation ({result['n_val']}): AUC S4 {result['auc_s4_vs_s1_s3']}, "
            f"AUC S2-S4 {result['auc_s2_s4_vs_s1']}, accuracy {result['stage_accuracy']} -> {out / 'model.pt'}")
    return result, text


def _train_cirrmri(data: Path, out: Path, *, sequence: str, labels_csv: Path, encoder: str, steps: int,
                   n_slices: int, crop_size: int, seed: int, n_boot: int) -> tuple[dict, str]:
    import time
    from collections import Counter

    import numpy as np
    from pydantic import ValidationError
    from tqdm import tqdm

    from liverfib.evaluation.metrics import evaluate_probabilities
    from liverfib.mri.layouts import list_cirrmri_exams
    from liverfib.mri.slice_staging import (
        SliceStagingConfig,
        average_by_group,
        predict_slice_probs,
        scan_slices,
        train_slice_staging,
    )
    from liverfib.mri.staging import save_staging_model
    from liverfib.pipeline._common import write_rows
    from liverfib.report.jsonio import write_json

    try:
        cfg = SliceStagingConfig(sequence=sequence, encoder=encoder, n_slices=n_slices, crop_size=crop_size)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"invalid staging option {err['loc'][0]}: {err['msg']}") from None
    t0 = time.time()
    exams = [e for e in list_cirrmri_exams(data, labels_csv) if e.meta.get("sequence") == sequence]
    by_split = {s: [e for e in exams if e.split == s] for s in _CIRRMRI_SPLITS}
    if not by_split["train"] or not by_split["valid"]:
        counts = {s: len(v) for s, v in by_split.items()}
        raise InputError(f"{data}: need {sequence} scans in train_images/ and valid_images/, found {counts}")
    seg = _LazySegmenter("default")
    prepared: dict[str, dict[str, Any]] = {}
    for split, members in by_split.items():
        xs, ys, groups, rows_meta = [], [], [], []
        for e in _progress(members, f"prepare {split}"):
            try:
                s = scan_slices(e, cfg, seg_model=seg() if e.mask_path is None else None)
            except InputError as exc:
                raise InputError(f"scan {e.case_id} ({split}): {exc}") from None
            xs.append(s.x)
            ys += [e.stage - 1] * len(s.x)  # type: ignore[operator]
            groups += [str(e.meta["subject"])] * len(s.x)
            rows_meta += [(e, int(k), s.mask_source) for k in s.slice_index]
        prepared[split] = {"x": np.concatenate(xs) if xs else np.zeros((0, 3, crop_size, crop_size), np.float16),
                           "y": np.array(ys, dtype=np.int64), "groups": groups, "meta": rows_meta}
    bar = tqdm(total=steps, desc="train-mri", unit="step", leave=False, disable=None)

    def progress(step: int, message: str) -> None:
        bar.n = step
        bar.set_postfix_str(message)

    tr, va, te = prepared["train"], prepared["valid"], prepared["test"]
    net, log, best = train_slice_staging(tr["x"], tr["y"], cfg, x_val=va["x"], y_val=va["y"], steps=steps, seed=seed,
                                         progress=progress)
    bar.close()
    classes = list(cfg.classes)
    result: dict[str, Any] = {
        "layout": "cirrmri", "sequence": sequence, "data": str(data), "labels": str(labels_csv), "classes": classes,
        "n_scans": {s: len(v) for s, v in by_split.items()},
        "n_slices": {s: int(len(prepared[s]["y"])) for s in _CIRRMRI_SPLITS},
        "train_grades": dict(Counter(classes[e.stage - 1] for e in by_split["train"])),  # type: ignore[operator]
        "mask_sources": dict(Counter(m[2] for s in _CIRRMRI_SPLITS for m in prepared[s]["meta"])),
        "selected_step": int(best["step"]), "val_slice_accuracy": best["val_accuracy"],
        "steps": len(log), "config": cfg.model_dump(mode="json"),
        "units": {"slice": "one prediction per 2.5D liver slice; 95% CI from a bootstrap over patients",
                  "patient": "mean of the patient's slice probabilities; 95% CI from a bootstrap over patients"},
    }
    out.mkdir(parents=True, exist_ok=True)
    if len(te["y"]):
        p = predict_slice_probs(net, te["x"])
        y_names = [classes[i] for i in te["y"]]
        m_slice = evaluate_probabilities(y_names, p, classes, groups=te["groups"], n_boot=n_boot, seed=seed)
        keys, p_pat = average_by_group(p, te["groups"])
        label_of = dict(zip(te["groups"], y_names, strict=True))
        m_pat = evaluate_probabilities([label_of[k] for k in keys], p_pat, classes, groups=keys, n_boot=n_boot, seed=seed)
        result.update(
            test_slice_accuracy=m_slice["accuracy"], test_slice_accuracy_ci95=m_slice["ci95"]["accuracy"],
            test_patient_accuracy=m_pat["accuracy"], test_patient_accuracy_ci95=m_pat["ci95"]["accuracy"],
            test_slice_macro_auc=m_slice["macro_auc"], test_patient_macro_auc=m_pat["macro_auc"],
            test_patient_confusion_matrix=m_pat["confusion_matrix"],
            metrics_slice=m_slice, metrics_patient=m_pat,
        )
        cols = _prediction_columns(classes, ["slice"])
        slice_rows = [{"path": f"{e.phase_paths[e.phases[0]]}#z{k}", "label": lab, "group": g, "source": sequence,
                       "slice": k, **_prob_cells(classes, pk)}
                      for (e, k, _), lab, g, pk in zip(te["meta"], y_names, te["groups"], p, strict=True)]
        path_of = {str(e.meta["subject"]): str(e.phase_paths[e.phases[0]]) for e in by_split["test"]}
        patient_rows = [{"path": path_of[k], "label": label_of[k], "group": k, "source": sequence, "slice": "mean",
                         **_prob_cells(classes, pk)}
                        for k, pk in zip(keys, p_pat, strict=True)]
        write_rows(slice_rows, out / "test_predictions_slices.csv", cols)
        write_rows(patient_rows, out / "test_predictions_patients.csv", cols)
    else:
        result.update(test_slice_accuracy=None, test_patient_accuracy=None, note="no test_images scans: no test metrics")
    result["seconds"] = round(time.time() - t0, 1)
    write_rows(log, out / "log.csv", ["step", "loss", "seconds", "val_accuracy", "val_log_loss"])
    write_json(result, out / "metrics.json")
    heldout = {k: v for k, v in result.items() if not k.startswith("metrics_")}
    save_staging_model(out / "model.pt", net, data=_data_note(data), synthetic=_is_synthetic(data), layout="cirrmri",
                       sequence=sequence, classes=classes, heldout=heldout)

    def fmt(key: str) -> str:
        v, ci = result.get(key), result.get(f"{key}_ci95")
        return "n/a" if v is None else f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    text = (f"trained {len(log)} steps on {result['n_scans']['train']} {sequence} scans "
            f"({result['n_slices']['train']} slices), selected step {result['selected_step']} on valid; "
            f"test accuracy per slice {fmt('test_slice_accuracy')}, per patient {fmt('test_patient_accuracy')} "
            f"({result['n_scans']['test']} patients) -> {out / 'model.pt'}")
    return {k: v for k, v in result.items() if not k.startswith("metrics_")}, text


def run_train_seg_mri(
    data_dir: Path,
    *,
    out_dir: Path,
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    val_fraction: float = 0.2,
    threads: int | None = 1,
) -> tuple[dict[str, Any], str]:
    """``train-seg --task mri``: the 2D slice-wise MR/CT liver segmenter.

    ``data_dir`` is a folder with ``manifest.csv`` holding ``file,mask[,source,case_id]`` (2D slices,
    like ../shared/data/ct-liver-slices) or ``case_id,image,mask`` (NIfTI volumes, like
    ../shared/data/mr-ct-liver), a CirrMRI600+ root (train/valid scans with masks; grouped by
    subject id, so T1 and T2 of one patient stay together) or a LiQA root (GED4 + mask_GED4). Defaults < YAML ``config`` <
    ``overrides`` (``arch``, ``epochs``, ``batch_size``, ``lr``, ``img_size``, ``seed``, plus YAML-only
    ``n_synthetic`` and ``mean_teacher``). A ``val_fraction`` of the cases (grouped) is held out and
    scored with Dice/HD95 (monai.metrics).
    """
    import csv

    import numpy as np
    import yaml
    from pydantic import BaseModel, ConfigDict, ValidationError

    from liverfib.mri.seg_training import (
        SliceSample,
        slices_from_ct_folder,
        slices_from_synthetic,
        slices_from_volumes,
        train_segmenter,
    )
    from liverfib.mri.segmentation import SegModel, SegModelConfig, dice_hd95, save_seg_model
    from liverfib.report.jsonio import write_json

    class SegTrainConfig(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        arch: str = "unet-lite0"
        img_size: int = 160
        epochs: float | None = None
        steps: int = 300
        batch_size: int = 8
        lr: float = 1e-3
        seed: int = 0
        n_synthetic: int = 0
        mean_teacher: float = 0.0

    values: dict[str, Any] = {}
    if config is not None:
        try:
            values = yaml.safe_load(Path(config).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{config}: cannot read YAML config ({exc})") from None
    values.update(overrides or {})
    try:
        cfg = SegTrainConfig(**values)
        model_cfg = SegModelConfig(arch=cfg.arch, img_size=cfg.img_size)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid mri segmentation option: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from None
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    data_dir = Path(data_dir)
    manifest = data_dir / "manifest.csv"
    samples: list[SliceSample]
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            columns = set(csv.DictReader(fh).fieldnames or [])
        if {"file", "mask"} <= columns:
            samples = slices_from_ct_folder(data_dir, cfg.img_size)
        elif {"case_id", "image", "mask"} <= columns:
            samples = slices_from_volumes(data_dir, cfg.img_size)
        else:
            raise InputError(f"{manifest}: expected columns file,mask or case_id,image,mask, found {sorted(columns)}")
    elif any(d.name.startswith("Cirrhosis_T") for d in data_dir.iterdir()) or data_dir.name.startswith("Cirrhosis_T"):
        samples = _cirrmri_slices(data_dir, cfg.img_size)
    else:
        samples = _liqa_slices(data_dir, cfg.img_size)
    if cfg.n_synthetic:
        samples += slices_from_synthetic(cfg.n_synthetic, cfg.img_size, seed=cfg.seed + 1)
    groups = sorted({s.group for s in samples})
    rng = np.random.default_rng(cfg.seed)
    n_val = int(round(val_fraction * len(groups))) if len(groups) > 1 else 0
    val_groups = set(rng.choice(groups, size=n_val, replace=False).tolist()) if n_val else set()
    train = [s for s in samples if s.group not in val_groups]
    steps = cfg.steps if cfg.epochs is None else max(1, int(cfg.epochs * len(train) / cfg.batch_size))
    unlabelled = slices_from_synthetic(8, cfg.img_size, seed=cfg.seed + 2, with_masks=False) if cfg.mean_teacher else []
    net, log = train_segmenter(train, cfg=model_cfg, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                               seed=cfg.seed, unlabelled=unlabelled, mean_teacher_weight=cfg.mean_teacher)
    model = SegModel(net, model_cfg)
    per_case: dict[str, list[float]] = {}
    for s in samples:
        if s.group in val_groups and s.mask is not None:
            d, _ = dice_hd95(model.segment(s.image.astype(np.float32)), s.mask)
            if d is not None:
                per_case.setdefault(s.group, []).append(d)
    case_dice = [float(np.mean(v)) for v in per_case.values()]
    result = {
        "task": "mri", "data": str(data_dir), "n_train_slices": len(train), "n_val_cases": len(val_groups),
        "val_dice_mean": float(np.mean(case_dice)) if case_dice else None,
        "val_unit": "case (mean slice Dice at the model's input size)", "steps": len(log),
        "config": cfg.model_dump(), "weights": "ImageNet lite0 encoder (offline)" if cfg.arch == "unet-lite0" else "random init",
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump()))
    write_json(result, out_dir / "metrics.json")
    save_seg_model(out_dir / "model.pt", net, model_cfg, trained_on=str(data_dir), val_dice_mean=result["val_dice_mean"])
    return result, f"trained {len(log)} steps on {len(train)} slices; val Dice {result['val_dice_mean']} -> {out_dir / 'model.pt'}"


def _cirrmri_slices(root: Path, size: int) -> list[Any]:
    """Slices with masks from a CirrMRI600+ root (``train``/``valid`` scans that have a mask)."""
    from liverfib.mri.exam import read_exam_volumes
    from liverfib.mri.layouts import list_cirrmri_exams
    from liverfib.mri.seg_training import SliceSample, _to_square
    from liverfib.mri.segmentation import normalize_intensity

    out = []
    for exam in list_cirrmri_exams(root):
        if exam.mask_path is None or exam.split == "test":
            continue
        images, mask = read_exam_volumes(exam)
        vol = normalize_intensity(images[exam.phases[0]].array)
        for k in range(vol.shape[0]):
            x, m = _to_square(vol[k], mask.array[k], size)  # type: ignore[union-attr]
            out.append(SliceSample(x.astype("float16"), m, str(exam.meta["subject"]), f"cirrmri-{exam.phases[0]}"))
    if not out:
        raise InputError(f"{root}: no CirrMRI600+ train/valid scans with masks found")
    return out


def _liqa_slices(root: Path, size: int) -> list[Any]:
    """GED4 slices with their mask_GED4 from a LiQA root (annotated cases only)."""
    from liverfib.mri.exam import read_exam_volumes
    from liverfib.mri.layouts import list_liqa_exams
    from liverfib.mri.seg_training import SliceSample, _to_square
    from liverfib.mri.segmentation import normalize_intensity

    out = []
    for exam in list_liqa_exams(root):
        if exam.mask_path is None or "GED4" not in exam.phase_paths:
            continue
        images, mask = read_exam_volumes(exam)
        vol = normalize_intensity(images["GED4"].array)
        for k in range(vol.shape[0]):
            x, m = _to_square(vol[k], mask.array[k], size)  # type: ignore[union-attr]
            out.append(SliceSample(x.astype("float16"), m, exam.case_id.split("-")[0], "liqa"))
    if not out:
        raise InputError(f"{root}: no manifest.csv and no annotated LiQA cases (GED4 + mask_GED4) found")
    return out
