"""Synthetic DICOM / NIfTI / raster files written into ``tmp_path`` for the io tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

#: A small 2D test pattern (H=24, W=32) with a known gradient, uint8.
PATTERN = (np.add.outer(np.arange(24) * 4, np.arange(32) * 2) % 256).astype(np.uint8)


def _dataset(sop_class: str, modality: str, transfer_syntax: str | None = None) -> Any:
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax or uid.ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid.generate_uid()
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Modality = modality
    ds.Manufacturer = "liverfib-test"
    return ds


def _save(ds: Any, path: Path) -> Path:
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def _us_region(delta_x_cm: float, delta_y_cm: float) -> Any:
    from pydicom.dataset import Dataset

    region = Dataset()
    region.RegionSpatialFormat = 1
    region.RegionDataType = 1
    region.PhysicalUnitsXDirection = 3  # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = delta_x_cm
    region.PhysicalDeltaY = delta_y_cm
    return region


def write_us(
    path: Path,
    arr: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    delta_cm: tuple[float, float] | None = (0.02, 0.03),
    **tags: Any,
) -> Path:
    """Ultrasound DICOM: ``arr`` is (H, W), (T, H, W), (H, W, 3) or (T, H, W, 3) uint8."""
    from pydicom import uid

    multi = arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] != 3)
    sop = uid.UltrasoundMultiFrameImageStorage if multi else uid.UltrasoundImageStorage
    ds = _dataset(sop, "US")
    ds.set_pixel_data(arr, photometric, 8, generate_instance_uid=False)
    if multi:
        ds.FrameTime = 33.3
    if delta_cm is not None:
        ds.SequenceOfUltrasoundRegions = [_us_region(*delta_cm)]
    for key, value in tags.items():
        setattr(ds, key, value)
    return _save(ds, path)


def write_slice(
    path: Path,
    arr: np.ndarray,
    *,
    modality: str = "MR",
    photometric: str = "MONOCHROME2",
    position: tuple[float, float, float] | None = (0.0, 0.0, 0.0),
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    pixel_spacing: tuple[float, float] | None = (0.8, 0.6),
    series_uid: str | None = None,
    **tags: Any,
) -> Path:
    """MR/CT single-frame slice (uint16/int16/uint8 arr (H, W)); extra ``tags`` set last."""
    from pydicom import uid

    sop = uid.MRImageStorage if modality == "MR" else uid.CTImageStorage
    ds = _dataset(sop, modality)
    bits = 8 if arr.dtype == np.uint8 else 16
    ds.set_pixel_data(arr, photometric, bits, generate_instance_uid=False)
    if pixel_spacing is not None:
        ds.PixelSpacing = list(pixel_spacing)
    ds.ImageOrientationPatient = list(orientation)
    if position is not None:
        ds.ImagePositionPatient = list(position)
    ds.SliceThickness = 2.5
    if series_uid is not None:
        ds.SeriesInstanceUID = series_uid
    for key, value in tags.items():
        setattr(ds, key, value)
    return _save(ds, path)


def write_jpeg_us(path: Path, rgb: np.ndarray, *, n_frames: int = 1) -> Path:
    """JPEG-baseline (lossy) RGB ultrasound: frames encoded by Pillow, encapsulated by pydicom."""
    from PIL import Image as PILImage
    from pydicom import uid
    from pydicom.encaps import encapsulate

    frames = []
    for _ in range(n_frames):
        buf = io.BytesIO()
        PILImage.fromarray(rgb).save(buf, format="JPEG", quality=95)
        frames.append(buf.getvalue())
    sop = uid.UltrasoundMultiFrameImageStorage if n_frames > 1 else uid.UltrasoundImageStorage
    ds = _dataset(sop, "US", uid.JPEGBaseline8Bit)
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if n_frames > 1:
        ds.NumberOfFrames = n_frames
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    return _save(ds, path)


def write_encapsulated(path: Path, transfer_syntax: str) -> Path:
    """A gray US file claiming a compressed transfer syntax (content is a dummy fragment)."""
    from pydicom import uid
    from pydicom.encaps import encapsulate

    ds = _dataset(uid.UltrasoundImageStorage, "US", transfer_syntax)
    ds.Rows, ds.Columns = 16, 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    return _save(ds, path)


def write_png(path: Path, arr: np.ndarray) -> Path:
    """PNG of ``arr`` (uint8 gray/RGB/RGBA or uint16 gray) at ``path`` whatever its suffix."""
    from PIL import Image as PILImage

    PILImage.fromarray(arr).save(path, format="PNG")
    return path


@pytest.fixture
def make() -> SimpleNamespace:
    """The file writers above: ``make.us``, ``make.slice``, ``make.jpeg_us``, ``make.encapsulated``,
    ``make.png``; and ``make.pattern`` (the (24, 32) uint8 test pattern)."""
    return SimpleNamespace(
        us=write_us,
        slice=write_slice,
        jpeg_us=write_jpeg_us,
        encapsulated=write_encapsulated,
        png=write_png,
        pattern=PATTERN.copy(),
    )


@pytest.fixture
def us_file(tmp_path: Path) -> Path:
    """Single-frame gray ultrasound, PATTERN, 0.3 x 0.2 mm pixels."""
    return write_us(tmp_path / "us.dcm", PATTERN)


@pytest.fixture
def us_cine(tmp_path: Path) -> Path:
    """5-frame gray ultrasound cine loop; frame t is PATTERN + 10 t."""
    frames = np.stack([PATTERN + np.uint8(10 * t) for t in range(5)])
    return write_us(tmp_path / "cine.dcm", frames)


@pytest.fixture
def mr_series(tmp_path: Path) -> Path:
    """5 MR slices 2 mm apart along z, written in shuffled order; slice z holds value 100 + z."""
    folder = tmp_path / "mr_series"
    folder.mkdir()
    for name_index, z in enumerate([3, 0, 4, 1, 2]):
        arr = np.full((16, 12), 100 + z, dtype=np.uint16)
        arr[0, 0] = z  # a marker per slice
        write_slice(
            folder / f"IM{name_index:04d}",
            arr,
            position=(-10.0, -20.0, 5.0 + 2.0 * z),
            InstanceNumber=10 - z,  # reversed on purpose: position must win
        )
    return folder


@pytest.fixture
def nifti_factory(tmp_path: Path) -> Callable[..., Path]:
    """Write ``data`` (x, y, z[, t]) with ``affine`` to ``tmp_path/name``."""
    import nibabel as nib

    def make(name: str, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
        path = tmp_path / name
        nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
        return path

    return make
