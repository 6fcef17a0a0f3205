"""Codes of liverfib's DICOM results: SNOMED CT / DCM / UCUM where a standard code exists, else the
private coding scheme ``99LIVERFIB`` (METAVIR stage, stage probabilities, model attention region)."""

from __future__ import annotations

__all__ = ["BINARY_CODES", "BINARY_MEANINGS", "MANUFACTURER", "SCHEME", "SEGMENT_KINDS"]

#: Private coding scheme for concepts without a standard code.
SCHEME = "99LIVERFIB"
MANUFACTURER = "liverfib (research use only)"
#: SR codes of the binary-task probabilities -> findings key.
BINARY_CODES = {"GE_F2": "p_ge_f2", "GE_F3": "p_ge_f3", "IS_F4": "p_f4"}
BINARY_MEANINGS = {
    "p_ge_f2": "Probability of METAVIR >= F2",
    "p_ge_f3": "Probability of METAVIR >= F3",
    "p_f4": "Probability of METAVIR F4 (cirrhosis)",
}

#: Segment kind -> (category (code, scheme, meaning), property type (code, scheme, meaning)).
SEGMENT_KINDS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "liver": (("123037004", "SCT", "Anatomical Structure"), ("10200004", "SCT", "Liver")),
    "cam": (
        ("309825002", "SCT", "Spatial and Relational Concept"),
        ("CAM", SCHEME, "Model attention region (Grad-CAM, not anatomy)"),
    ),
    "fov": (
        ("309825002", "SCT", "Spatial and Relational Concept"),
        ("FOV", SCHEME, "Ultrasound field of view (analysed region)"),
    ),
}
