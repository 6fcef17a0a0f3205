"""One MRE exam -> liver mask (the segmenter's or a given mask), ROI, stiffness (kPa) and stage, with
its masks, overlays and text; the ``synthetic`` flag of every MRE result."""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import InputError

__all__ = ["SYNTHETIC_LABEL", "measure_exam", "mre_segmenter", "synthetic_fields"]

SYNTHETIC_LABEL = "[SYNTHETIC: phantom data and/or a phantom-trained segmentation model; not a clinical result]"


@lru_cache(maxsize=4)
def mre_segmenter(model: str) -> tuple[Any, dict[str, Any]]:
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


def synthetic_fields(exam: Any, seg_info: dict[str, Any] | None) -> dict[str, Any]:
    """``synthetic`` and ``synthetic_reasons`` of a result: a phantom exam or a phantom-trained segmenter."""
    reasons = []
    if exam.synthetic:
        reasons.append("exam is a synthetic phantom")
    if seg_info is not None and _seg_is_synthetic(seg_info):
        reasons.append("liver segmentation model trained on synthetic phantoms only")
    return {"synthetic": bool(reasons), "synthetic_reasons": reasons}


def _liver(exam: Any, model: str, mask: Path | None,
           mag: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any], dict[str, Any] | None]:
    """Liver mask ``(D, H, W)`` bool, how it was found, and the segmenter's info (None for a given mask)."""
    if mask is not None:
        return _read_mask(Path(mask), exam.stiffness_kpa.shape), {"source": "mask", "path": str(mask)}, None
    import torch

    from liverfib.mre.segment import prepare_input, segment_liver

    torch.set_num_threads(min(torch.get_num_threads(), 2))
    net, info = mre_segmenter(model)
    liver = segment_liver(net, info, prepare_input(mag))
    seg = {"source": "model", "model": info["model"], "checkpoint": info["path"], "img_size": info["img_size"],
           "trained_on": info.get("data", "unknown")}
    return liver, seg, info


def _write_outputs(out_dir: Path, exam: Any, liver: np.ndarray, roi: np.ndarray, mag: np.ndarray | None,
                   result: dict[str, Any], summary: dict[str, Any], overlays: bool) -> None:
    """``liver_mask.nii.gz``, ``roi.nii.gz`` and (``overlays``) ``overlay_slice<k>.png`` under ``out_dir``."""
    from liverfib.image import Image
    from liverfib.io.nifti import write_nifti

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


def _lines(exam: Any, result: dict[str, Any], synthetic: bool) -> list[str]:
    """The per-slice table and the exam's stiffness and stage as text."""
    lines = [SYNTHETIC_LABEL] if synthetic else []
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
    return lines


def measure_exam(exam: Any, *, out_dir: Path | None, model: str, mask: Path | None, qcfg: Any, table: Any,
                 overlays: bool) -> tuple[dict[str, Any], list[str]]:
    """One exam -> (summary, text lines); writes masks/overlays under ``out_dir`` (not mre.json)."""
    from liverfib.mre.quantify import quantify_stiffness

    t0 = time.perf_counter()
    mag = exam.magnitude.array if exam.magnitude is not None else None
    liver, seg, info = _liver(exam, model, mask, mag)
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
        **synthetic_fields(exam, info),
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
        _write_outputs(Path(out_dir), exam, liver, roi, mag, result, summary, overlays)
        summary["seconds_total"] = round(time.perf_counter() - t0, 3)
    return summary, _lines(exam, result, summary["synthetic"])
