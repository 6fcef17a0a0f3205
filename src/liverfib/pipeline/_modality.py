"""Which modality an input may be segmented as: shared by ``segment`` (ultrasound) and the MR/CT
volume segmentation, so neither workflow imports the other for it."""

from __future__ import annotations

from typing import Any

__all__ = ["check_segment_modality"]


def check_segment_modality(image: Any, modality: str) -> str | None:
    """Why ``image`` cannot be segmented as ``modality`` ('us', 'mr', 'ct' or 'mr/ct'), else ``None``.

    The DICOM Modality tag must agree (files that do not say, e.g. PNG or NIfTI, pass); MR/CT needs a
    gray image, ultrasound one 2D frame.
    """
    said = image.modality  # US/MR/CT from DICOM; OT when the file does not say
    if modality == "us":
        if said in ("MR", "CT"):
            return f"DICOM modality {said}, not ultrasound; use --modality {said.lower()}"
        if image.ndim != 2:
            return f"expected one 2D ultrasound frame, got shape {image.shape}; for a volume use --modality mr|ct"
        return None
    if said == "US":
        return "DICOM modality US, not MR/CT; use --modality us"
    if said in ("MR", "CT") and modality in ("mr", "ct") and said.lower() != modality:
        return f"DICOM modality {said} but --modality {modality} was given; use --modality {said.lower()}"
    if image.meta.get("colour"):
        return "colour image (RGB content); MR/CT liver segmentation needs a gray slice or volume"
    return None
