"""Ultrasound staging of one image: read -> stage -> field of view, liver mask and Grad-CAM when
available -> DICOM SEG + SR + SC -> report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.errors import InputError
from liverfib.pipeline.clinical.config import ModelCache
from liverfib.pipeline.clinical.context import accuracy_of, overlay_legend, study_tags

__all__ = ["analyse_file"]

#: The pictures and DICOM results every ultrasound analysis writes.
_FILES = ["image.png", "overlay.png", "overlay_layer.png", "seg.dcm", "sr.dcm", "sc.dcm"]


def analyse_file(
    path: Path, out_dir: Path, *, models: ModelCache, name: str | None = None
) -> dict[str, Any]:
    """Analyse one image file (DICOM or raster) into ``out_dir``; returns the result dict.

    Writes ``image.png``, ``overlay.png`` (RGBA layer), ``seg.dcm``, ``sr.dcm``, ``sc.dcm``,
    ``result.json`` and, with ``cfg.pdf``, ``report.html``/``report.pdf``.

    Raises:
        InputError: unreadable input, not B-mode ultrasound, multi-frame input.
    """
    from liverfib.inference.predictor import PredictOutput, check_bmode
    from liverfib.io.jsonio import write_json
    from liverfib.preprocess.fan import detect_fan
    from liverfib.report.clinical_report import write_report
    from liverfib.report.dicom import Segment, write_sc, write_seg, write_sr

    cfg = models.cfg
    out_dir.mkdir(parents=True, exist_ok=True)
    image, source = _read_input(path, out_dir, name)
    warning = check_bmode(image)
    predictor = models.predictor()
    probs = predictor.predict_arrays([image.array])
    record = PredictOutput([path], probs, predictor.classes, [warning]).as_records()[0]
    notes: list[str] = []
    fan = detect_fan(image.array)
    masks: dict[str, Any] = {"fov": fan.mask}
    segments = [Segment("Ultrasound field of view", fan.mask, "fov")]
    liver_area_mm2 = _add_liver(models, image, masks, segments, notes) if cfg.with_liver else None
    heat = _add_cam(predictor, image.array, fan.mask, segments, notes) if cfg.with_cam else None
    composite = _write_pictures(image.array, masks, heat, out_dir)
    findings = {
        **{k: record[k] for k in ("stage", "probabilities", "p_ge_f2", "p_ge_f3", "p_f4")},
        "liver_area_mm2": liver_area_mm2,
        "model": f"us-staging:{cfg.model}",
    }
    write_seg(source, segments, out_dir / "seg.dcm")
    write_sr(source, findings, out_dir / "sr.dcm")
    write_sc(source, composite, out_dir / "sc.dcm")
    result: dict[str, Any] = {
        "status": "done",
        "name": name or path.name,
        "route": "us-staging",
        **findings,
        "warning": warning,
        "study": study_tags(source),
        "segments": [s.label for s in segments],
        "notes": notes,
        **_model_context(predictor, str(cfg.model)),
        "overlay_legend": overlay_legend(masks, heat is not None),
        "files": list(_FILES),
    }
    if cfg.pdf:
        write_report(result, out_dir, deidentified=cfg.deidentified_report)
        result["files"] += ["report.html", "report.pdf"]
    write_json(result, out_dir / "result.json")
    return result


def _read_input(path: Path, out_dir: Path, name: str | None) -> tuple[Any, Any]:
    """``(image, source dataset)`` of a B-mode DICOM or a raster picture (wrapped as a Secondary
    Capture, saved as ``source.dcm``)."""
    from liverfib.io import read_image, sniff_kind
    from liverfib.pipeline.clinical.routing import route_dataset
    from liverfib.report.dicom import dataset_from_array, read_dicom_dataset, save_dataset

    kind = sniff_kind(path)
    if kind == "dicom":
        source = read_dicom_dataset(path)
        route, reason = route_dataset(source)
        if route != "us-staging":
            raise InputError(f"{path.name}: {reason}; this analysis stages B-mode ultrasound")
        if int(source.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(f"{path.name}: multi-frame ultrasound (cine) is not analysed yet; send one frame")
        return read_image(path), source
    if kind == "raster":
        image = read_image(path)
        source = dataset_from_array(image.array, series_description=f"upload {name or path.name}"[:64])
        save_dataset(source, out_dir / "source.dcm")
        return image, source
    raise InputError(f"{path.name}: not an image (expected DICOM, PNG, JPEG, BMP or TIFF content)")


def _add_liver(models: ModelCache, image: Any, masks: dict[str, Any], segments: list[Any],
               notes: list[str]) -> float | None:
    """Add the segmenter's liver mask (or a note why there is none); returns the liver area in mm²."""
    from liverfib.report.dicom import Segment

    segmenter, note = models.segmenter()
    if segmenter is None:
        if note:
            notes.append(note)
        return None
    liver = segmenter.predict(image)
    masks["liver"] = liver
    segments.append(Segment("Liver", liver, "liver"))
    if image.spacing_mm is not None and liver.any():
        return float(liver.sum() * image.spacing_mm[0] * image.spacing_mm[1])
    return None


def _add_cam(predictor: Any, gray: Any, fov: Any, segments: list[Any], notes: list[str]) -> Any:
    """Add the Grad-CAM pseudo-mask segment and its note; returns the ``(H, W)`` heatmap or None."""
    from liverfib.report.dicom import Segment

    heat = None
    try:
        from liverfib.explain.cam import compute_cams
        from liverfib.explain.pseudo_masks import cam_to_mask

        heat = compute_cams(predictor, [gray])[0].heatmap
        cam_mask = cam_to_mask(heat, fov, "otsu")
        if cam_mask.any():
            segments.append(Segment("Grad-CAM pseudo-mask (model attention, not anatomy)", cam_mask, "cam"))
        notes.append("Grad-CAM shows where the model looked; it is not a lesion or liver outline")
    except ImportError as exc:
        notes.append(f"Grad-CAM not available ({exc})")
    return heat


def _write_pictures(gray: Any, masks: dict[str, Any], heat: Any, out_dir: Path) -> Any:
    """Write ``image.png``, ``overlay_layer.png`` (RGBA) and ``overlay.png``; returns the composite RGB."""
    from liverfib.report.clinical_report import overlay_rgb, overlay_rgba, write_png

    layer = overlay_rgba(gray.shape, masks, heat)
    write_png(gray, out_dir / "image.png")
    write_png(layer, out_dir / "overlay_layer.png")
    composite = overlay_rgb(gray, layer)
    write_png(composite, out_dir / "overlay.png")
    return composite


def _model_context(predictor: Any, model: str) -> dict[str, Any]:
    """``models`` (what staged the image) and ``model_accuracy`` of the result."""
    desc = predictor.describe()
    return {
        "models": {
            "staging": f"{desc.get('name')} ({desc.get('backbone', desc.get('arch', '?'))}; "
            f"weights: {desc.get('weights_origin') or 'not recorded'})",
        },
        "model_accuracy": accuracy_of("us_staging_default" if model == "default" else None, model),
    }
