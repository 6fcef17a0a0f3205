"""Read 2D raster images (PNG, JPEG, BMP, TIFF) by content, not by extension."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.image import Image

__all__ = ["RASTER_FORMATS", "DEFAULT_MAX_PIXELS", "sniff_format", "read_raster", "decode_raster"]

#: Magic bytes -> format name. Checked in order.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
RASTER_FORMATS = ("PNG", "JPEG", "BMP", "TIFF")

#: Default limit on pixels per image (decompression-bomb guard); 100 megapixels.
DEFAULT_MAX_PIXELS = 100_000_000

#: Smallest side accepted: a 1xN "image" is a line, not an image.
MIN_SIDE = 8


def sniff_format(head: bytes) -> str | None:
    """Return the raster format named by the first bytes of a file, or ``None``.

    DICOM (``DICM`` at byte 128) and NIfTI are recognised by :func:`liverfib.io.sniff_kind`.
    """
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def read_raster(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read a PNG/JPEG/BMP/TIFF file into a gray :class:`Image` of modality ``"OT"``.

    Colour is reduced to one channel: RGB(A) with three equal channels is taken as gray; a real
    colour image (e.g. Doppler) is converted with ITU-R 601 luma and flagged with
    ``meta["colour"] = True``. 16-bit images keep their ``uint16`` values.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected an image file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror})") from None
    return decode_raster(data, path=path, max_pixels=max_pixels)


def decode_raster(data: bytes, *, path: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Decode raster bytes (see :func:`read_raster`)."""
    where = str(path) if path is not None else "<bytes>"
    if len(data) == 0:
        raise InputError(f"{where}: empty file (0 bytes)")
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise InputError(f"{where}: not a PNG, JPEG, BMP or TIFF image (unrecognised content {data[:8]!r})")
    pil = _open_pil(data, where, fmt, max_pixels)
    mode = pil.mode
    arr = np.asarray(pil)
    if arr.size == 0 or min(arr.shape[:2]) == 0:
        raise InputError(f"{where}: image has zero size {arr.shape}")
    if min(arr.shape[:2]) < MIN_SIDE:
        raise InputError(
            f"{where}: image is {arr.shape[1]}x{arr.shape[0]} pixels; need at least "
            f"{MIN_SIDE} pixels on each side"
        )
    meta: dict[str, object] = {"format": fmt, "mode": mode, "channels": 1, "colour": False}
    if arr.ndim == 3:
        meta["channels"] = int(arr.shape[2])
        rgb = arr[..., :3].astype(np.int32)
        if arr.shape[2] == 2:  # LA
            arr = arr[..., 0]
        elif np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            arr = arr[..., 0]
        else:
            meta["colour"] = True
            meta["colour_fraction"] = float(
                np.mean((np.abs(rgb[..., 0] - rgb[..., 1]) > 8) | (np.abs(rgb[..., 1] - rgb[..., 2]) > 8))
            )
            luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
            arr = np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype not in (np.uint8, np.uint16):
        if arr.dtype == np.int32 and arr.min() >= 0 and arr.max() <= 65535:  # PIL "I" mode 16-bit
            arr = arr.astype(np.uint16)
        else:
            arr = arr.astype(np.float32)
            if not np.isfinite(arr).all():
                raise InputError(f"{where}: image contains NaN or infinite values")
    meta["bit_depth"] = 16 if arr.dtype == np.uint16 else 8 if arr.dtype == np.uint8 else 32
    return Image(array=np.ascontiguousarray(arr), spacing_mm=None, modality="OT", path=path, meta=meta)

def _open_pil(data: bytes, where: str, fmt: str, max_pixels: int) -> Any:
    """The decoded PIL image, refused above ``max_pixels`` or PIL's decompression-bomb limit."""
    import io as _io

    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            pil = PILImage.open(_io.BytesIO(data))
            width, height = pil.size
            if width * height > max_pixels:
                raise InputError(
                    f"{where}: {width}x{height} = {width * height} pixels exceeds the limit of "
                    f"{max_pixels}; raise --max-pixels if the image is genuine"
                )
            pil.load()
    except InputError:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise InputError(f"{where}: image is larger than the decompression-bomb limit") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).split(" <_io.")[0]  # PIL appends the buffer's memory address
        raise InputError(f"{where}: corrupt or truncated {fmt} ({reason})") from None
    return pil
