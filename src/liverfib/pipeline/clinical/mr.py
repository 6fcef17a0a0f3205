"""MR jobs: an MR elastography study becomes stiffness (kPa), stage, an SR, a stiffness-map SC and a
report; DICOM multi-phase MRI is stored but not analysed yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.errors import InputError, LiverfibError
from liverfib.pipeline.clinical.config import ModelCache
from liverfib.pipeline.clinical.context import accuracy_of, study_tags

__all__ = ["analyse_mr"]


def analyse_mr(job: Any, models: ModelCache) -> tuple[str, dict[str, Any] | None, str | None]:
    """MR routes: MRE studies go to the MRE workflow; DICOM multi-phase MRI is not analysed yet."""
    if job.kind == "mri":
        return (
            "unsupported",
            None,
            "multi-phase MRI received and stored, but the MRI staging workflow reads LiQA case folders "
            "(NIfTI per phase), not DICOM series; the series is kept in the spool folder",
        )
    try:
        return "done", _analyse_mre(job), None
    except ImportError as exc:
        return "unsupported", None, f"MRE series stored, but the MRE workflow is not available ({exc})"
    except LiverfibError as exc:
        return "failed", None, str(exc)


def _first_dicom(folder: Path) -> Path | None:
    """The first DICOM file under ``folder``, by content (a zip upload's ``IM_0001`` has no suffix)."""
    from liverfib.io import sniff_kind

    for f in sorted(folder.rglob("*")):
        if f.is_file() and sniff_kind(f) == "dicom":
            return f
    return None


def _analyse_mre(job: Any) -> dict[str, Any]:
    """MR elastography study folder -> stiffness (kPa) and stage via :func:`liverfib.pipeline.mre.run_mre`,
    written as a TID 1500 SR referencing one image of the study."""
    from liverfib.io.jsonio import write_json
    from liverfib.pipeline.mre import run_mre
    from liverfib.report.clinical_report import write_report
    from liverfib.report.dicom import read_dicom_dataset, write_sr

    study_dir, out_dir = Path(job.input_path), Path(job.out_dir) / job.id
    summary, _text = run_mre(study_dir, out_dir=out_dir, overlays=True)
    kpa = summary.get("mean_stiffness_kpa")
    if kpa is None:
        raise InputError(f"{study_dir.name}: MRE read, but no valid liver ROI to measure stiffness in")
    first = _first_dicom(study_dir)
    if first is None:
        raise InputError(f"{study_dir}: no DICOM file to reference from the SR")
    source = read_dicom_dataset(first)
    findings = {"stage": summary.get("stage"), "stiffness_kpa": kpa, "model": "mre:default",
                "synthetic": bool(summary.get("synthetic"))}
    write_sr(source, findings, out_dir / "sr.dcm")
    files = ["sr.dcm", "mre.json", *_write_stiffness_map(summary, source, out_dir)]
    if (out_dir / "liver_mask.nii.gz").is_file():  # for the web app's volume viewer
        from liverfib.pipeline.clinical.volume import write_mre_volumes

        files += ["liver_mask.nii.gz", *write_mre_volumes(study_dir, out_dir)]
    result = _mre_result(job.name, summary, kpa, source, files)
    write_report(result, out_dir)
    result["files"] += ["report.html", "report.pdf"]
    write_json(result, out_dir / "result.json")
    return result


def _write_stiffness_map(summary: dict[str, Any], source: Any, out_dir: Path) -> list[str]:
    """Copy the overlay of the slice with the largest ROI (stiffness map with its colour bar) to
    ``mre_map.png`` and send it as ``sc.dcm``; returns the files written (none without overlays)."""
    import shutil

    import numpy as np
    from PIL import Image as PILImage

    from liverfib.report.dicom import write_sc

    overlays = [Path(p) for p in summary.get("overlays") or []]
    if not overlays:
        return []
    areas = [s.get("area_mm2") or 0.0 for s in summary["slices"]]
    shutil.copyfile(overlays[int(np.argmax(areas))], out_dir / "mre_map.png")
    rgb = np.asarray(PILImage.open(out_dir / "mre_map.png").convert("RGB"))
    write_sc(source, rgb, out_dir / "sc.dcm", description="liverfib MRE stiffness map (research use)")
    return ["mre_map.png", "sc.dcm"]


def _mre_result(name: str | None, summary: dict[str, Any], kpa: float, source: Any, files: list[str]) -> dict[str, Any]:
    """The result dict of an MRE job (the JSON the web page, report and API show)."""
    segmentation = summary.get("segmentation", {})
    return {
        "status": "done",
        "name": name,
        "route": "mre",
        "stage": summary.get("stage"),
        "stiffness_kpa": kpa,
        "synthetic": bool(summary.get("synthetic")),
        "probabilities": {},
        "study": study_tags(source),
        "mre": {
            "mean stiffness (kPa)": f"{kpa:.2f}",
            "stage (from cut-offs)": str(summary.get("stage")),
            "ROI area (cm2)": f"{summary.get('roi_area_mm2', 0) / 100:.1f}",
            "cut-offs": str(summary.get("cutoffs_source")),
        },
        "notes": list(summary.get("warnings") or []),
        "models": {"mre liver segmentation": str(segmentation.get("model", "?"))},
        "model_accuracy": accuracy_of("mre_seg_default" if segmentation.get("source") == "model" else None, "own mask"),
        "overlay_legend": "stiffness map in kPa (colour bar beside it); the measured ROI is outlined",
        "files": files,
    }
