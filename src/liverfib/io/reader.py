"""Read any supported image file by content (raster, DICOM file or series, NIfTI), and list image files."""

from __future__ import annotations

from pathlib import Path

from liverfib.errors import InputError
from liverfib.image import Image
from liverfib.io.links import resolve_file
from liverfib.io.raster import DEFAULT_MAX_PIXELS, read_raster, sniff_format

__all__ = ["IMAGE_SUFFIXES", "list_images", "read_image", "sniff_kind"]

#: Suffixes considered when listing a folder (content decides how a file is read).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".gz", "")


def sniff_kind(path: str | Path) -> str | None:
    """Return ``"raster"``, ``"dicom"``, ``"nifti"`` or ``None`` from a file's first bytes."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(352)
    except OSError:
        return None
    if sniff_format(head) is not None:
        return "raster"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:2] == b"\x1f\x8b" and path.name.endswith((".nii.gz", ".gz")):
        return "nifti"
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
        return "nifti"
    return None


def read_image(
    path: str | Path,
    *,
    frame: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image:
    """Read any supported image file (raster, DICOM file, NIfTI) into an :class:`Image`.

    Args:
        path: the file; a folder is read as a DICOM series.
        frame: for multi-frame DICOM, the frame to keep (``None`` keeps all frames as ``(T, H, W)``).
        max_pixels: decompression-bomb guard for raster images.
    """
    path = Path(path)
    if path.is_dir():
        from liverfib.io.dicom_series import read_dicom_series

        return read_dicom_series(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    target = resolve_file(path)
    image = _read_file(target, frame=frame, max_pixels=max_pixels)
    if target != path:
        image = image.with_array(image.array, path=path, meta={**image.meta, "link_target": str(target)})
    return image


def _read_file(path: Path, *, frame: int | None, max_pixels: int) -> Image:
    kind = sniff_kind(path)
    if kind == "raster":
        return read_raster(path, max_pixels=max_pixels)
    if kind == "dicom":
        from liverfib.io.dicom import read_dicom

        return read_dicom(path, frame=frame)
    if kind == "nifti":
        from liverfib.io.nifti import read_nifti

        return read_nifti(path)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    raise InputError(f"{path}: not a readable image (expected PNG, JPEG, BMP, TIFF, DICOM or NIfTI content)")


def list_images(root: str | Path) -> list[Path]:
    """All files under ``root`` (recursively, sorted) that look like images by suffix.

    Hidden files are skipped. Raises :class:`InputError` for a missing or empty folder.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: file or folder not found")
    if root.is_file():
        return [root]
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise InputError(
            f"{root}: no image files found (looked for {', '.join(s for s in IMAGE_SUFFIXES if s)})"
        )
    return files
