"""Load floor: every file that enters liverfib is read here into an :class:`~liverfib.image.Image`.

Files are recognised by content (magic bytes), never by extension alone.
"""

from __future__ import annotations

from liverfib.io.batch import read_many
from liverfib.io.dicom import read_dicom
from liverfib.io.dicom_series import read_dicom_series
from liverfib.io.labelled import LabelledItem, list_labelled
from liverfib.io.links import read_link_stub, resolve_file
from liverfib.io.nifti import read_nifti, write_nifti
from liverfib.io.raster import DEFAULT_MAX_PIXELS, decode_raster, read_raster
from liverfib.io.reader import IMAGE_SUFFIXES, list_images, read_image, sniff_kind

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "LabelledItem",
    "decode_raster",
    "list_images",
    "list_labelled",
    "read_dicom",
    "read_dicom_series",
    "read_image",
    "read_link_stub",
    "read_many",
    "read_nifti",
    "read_raster",
    "resolve_file",
    "sniff_kind",
    "write_nifti",
]
