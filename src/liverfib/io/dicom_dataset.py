"""Open a DICOM file as a pydicom ``Dataset`` (headers, tags): the one place outside ``io/dicom.py``'s
image readers where liverfib reads DICOM. Errors are pydicom's (callers name the file in theirs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["read_dataset"]


def read_dataset(path: str | Path | Any, *, stop_before_pixels: bool = False) -> Any:
    """``pydicom.dcmread(path)``: a ``Dataset`` (``stop_before_pixels``: headers only, faster)."""
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
