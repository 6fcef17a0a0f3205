"""Masks as binary DICOM SEG (one frame or a series of slices), and reading them back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib._version import __version__
from liverfib.errors import InputError
from liverfib.report.dicom.codes import MANUFACTURER, SEGMENT_KINDS
from liverfib.report.dicom.source import complete_source, save_dataset, type2_empty

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["Segment", "read_seg_masks", "write_seg", "write_seg_series"]


@dataclass(frozen=True)
class Segment:
    """One segment of a SEG: a ``(H, W)`` bool mask on the source frame and what it shows."""

    label: str
    mask: np.ndarray
    kind: str = "liver"


def write_seg(
    source: Dataset,
    segments: Sequence[Segment],
    path: str | Path,
    *,
    series_number: int = 901,
    algorithm: str = "liverfib",
) -> Dataset:
    """Write a binary DICOM SEG of one or more ``(H, W)`` masks on a single-frame source image.

    Raises:
        InputError: no segments, a mask whose shape differs from the source, an unknown kind.
    """
    if not segments:
        raise InputError("write_seg: no segments given")
    source = complete_source(source)
    rows, cols = int(source.Rows), int(source.Columns)
    if int(source.get("NumberOfFrames", 1) or 1) != 1:
        raise InputError("write_seg: multi-frame sources are not supported yet; pass one frame")
    planes = []
    descriptions = []
    for number, seg in enumerate(segments, start=1):
        _check_kind(seg.kind)
        if seg.mask.shape != (rows, cols):
            raise InputError(
                f"segment {seg.label!r}: mask shape {seg.mask.shape} differs from the source image {(rows, cols)}"
            )
        planes.append(seg.mask.astype(bool))
        descriptions.append(_segment_description(number, seg.label, seg.kind, algorithm))
    pixel_array = np.stack(planes, axis=-1)[None]  # (1, H, W, S)
    seg_ds = _binary_segmentation([source], pixel_array, descriptions, series_number)
    type2_empty(seg_ds, "PatientOrientation")
    save_dataset(seg_ds, path)
    return seg_ds


def write_seg_series(
    sources: Sequence[Dataset],
    frames: np.ndarray,
    path: str | Path,
    *,
    label: str = "Liver",
    kind: str = "liver",
    series_number: int = 901,
    algorithm: str = "liverfib",
) -> Dataset:
    """Write a binary DICOM SEG of one segment over a series of single-frame source slices.

    Args:
        sources: the source slices (pixel data not needed), one per frame.
        frames: ``(N, Rows, Columns)`` mask, frame ``i`` on ``sources[i]``.

    Raises:
        InputError: frame count or size differs from the sources, unknown kind.
    """
    _check_kind(kind)
    if not sources or frames.shape != (len(sources), int(sources[0].Rows), int(sources[0].Columns)):
        raise InputError(f"write_seg_series: mask {frames.shape} does not match {len(sources)} source slices")
    description = _segment_description(1, label, kind, algorithm)
    seg_ds = _binary_segmentation([complete_source(s) for s in sources], frames.astype(bool), [description],
                                  series_number)
    save_dataset(seg_ds, path)
    return seg_ds


def read_seg_masks(path: str | Path) -> dict[str, np.ndarray]:
    """Read a SEG written by :func:`write_seg`: ``{segment label: (H, W) bool mask}``."""
    import highdicom as hd

    seg = hd.seg.segread(str(path))
    sop_uid = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    numbers = seg.get_segment_numbers()
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[sop_uid], segment_numbers=numbers, assert_missing_frames_are_empty=True
    )  # (1, H, W, S)
    return {
        seg.get_segment_description(n).segment_label: pixels[0, :, :, i].astype(bool)
        for i, n in enumerate(numbers)
    }


def _check_kind(kind: str) -> None:
    if kind not in SEGMENT_KINDS:
        raise InputError(f"unknown segment kind {kind!r}; valid: {', '.join(SEGMENT_KINDS)}")


def _segment_description(number: int, label: str, kind: str, algorithm: str) -> Any:
    """The highdicom ``SegmentDescription`` of an automatic segment of ``kind``."""
    import highdicom as hd

    category, prop = SEGMENT_KINDS[kind]
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=hd.sr.CodedConcept(*category),
        segmented_property_type=hd.sr.CodedConcept(*prop),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=algorithm, version=__version__, family=hd.sr.CodedConcept("123109", "DCM", "Artificial Intelligence")
        ),
    )


def _binary_segmentation(sources: list[Dataset], pixel_array: np.ndarray, descriptions: list[Any],
                         series_number: int) -> Any:
    """A highdicom BINARY ``Segmentation`` of ``sources`` with liverfib's device and series fields."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="liverfib",
        software_versions=__version__,
        device_serial_number="0",
        omit_empty_frames=False,
        series_description="liverfib segmentation (research use)",
    )
