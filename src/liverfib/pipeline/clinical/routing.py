"""Which analysis a received DICOM object goes to, read from its tags alone.

US -> ``us-staging``; MR whose ImageType or series description says elastography -> ``mre``;
other MR (multi-phase liver MRI) -> ``mri``; anything else -> ``unknown`` with a reason.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["ROUTES", "route_dataset"]

#: Route -> what it does.
ROUTES = {
    "us-staging": "B-mode ultrasound: METAVIR stage F0..F4",
    "mre": "MR elastography: liver stiffness (kPa)",
    "mri": "multi-phase liver MRI",
}

_MRE_WORDS = re.compile(r"(elasto|(?<![a-z])mre(?![a-z])|stiff|wave ?image|kpa)", re.IGNORECASE)
_RESULT_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "a DICOM SEG",
    "1.2.840.10008.5.1.4.1.1.88.33": "a Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "an Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.11": "a Basic Text SR",
}


def route_dataset(ds: Dataset) -> tuple[str, str]:
    """Return ``(route, reason)`` for a dataset (pixel data not needed)."""
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class in _RESULT_CLASSES:
        return "unknown", f"{_RESULT_CLASSES[sop_class]} is a result, not an image to analyse"
    modality = str(ds.get("Modality", "") or "").upper()
    if modality == "US":
        return "us-staging", "modality US"
    if modality == "MR":
        words = " ".join(
            [*(str(v) for v in (ds.get("ImageType") or [])), str(ds.get("SeriesDescription", ""))]
        )
        if _MRE_WORDS.search(words):
            return "mre", f"MR with elastography terms ({words.strip()[:60]})"
        return "mri", "MR without elastography terms"
    if modality == "OT" and "PixelData" in ds:
        return "us-staging", "secondary capture (treated as an ultrasound picture)"
    return "unknown", f"modality {modality or '(none)'} is not analysed (liverfib reads US and MR)"
