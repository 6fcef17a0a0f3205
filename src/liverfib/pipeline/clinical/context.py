"""Context a report reader needs beside the findings: study tags, model accuracy, overlay legend."""

from __future__ import annotations

from typing import Any

__all__ = ["accuracy_of", "overlay_legend", "study_tags"]


def study_tags(ds: Any) -> dict[str, str]:
    """The identifying study tags of a source dataset, as strings (empty when absent)."""
    keys = ("PatientName", "PatientID", "StudyDate", "Modality", "StudyInstanceUID", "SeriesInstanceUID")
    return {k: str(ds.get(k, "") or "") for k in keys}


def accuracy_of(shipped: str | None, model: Any) -> dict[str, Any]:
    """What a report reader needs about the model's measured accuracy (from the model catalogue)."""
    from liverfib.models.catalog import model_accuracy

    found = model_accuracy(shipped) if shipped else None
    if found is None:
        return {"model": str(model), "figure": "not measured by liverfib (a user-supplied model); validate it "
                "on your own data", "source": None, "synthetic": None, "caveat": ""}
    return found


def overlay_legend(masks: dict[str, Any], with_cam: bool) -> str:
    """The overlay colours actually drawn, in words (see ``report.clinical_report.overlay_rgba``)."""
    names = {"liver": "green outline = liver (segmenter)", "fov": "blue outline = ultrasound field of view (fan)"}
    parts = [names[k] for k in ("fov", "liver") if k in masks]
    if with_cam:
        parts.append("blue-to-red shading = Grad-CAM, where the model looked (red most; not anatomy)")
    return "; ".join(parts)
