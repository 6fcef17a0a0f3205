"""Every uploaded image is decoded before it is accepted; DICOM is de-identified in place."""

from __future__ import annotations

from pathlib import Path

from liverfib.clinical.web.config import UploadRejected, WebConfig
from liverfib.clinical.web.volume import NIFTI_KINDS, check_nifti
from liverfib.errors import InputError

__all__ = ["validate_member"]


def _check_raster(path: Path, kind: str, max_pixels: int) -> None:
    """Decode a raster file from disk (never read whole into memory first); 413 above
    ``max_pixels`` (checked on the header, before decoding), 400 when truncated or corrupt."""
    import warnings

    from PIL import Image as PILImage

    name = kind.upper()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise UploadRejected(
                        413, f"{name} of {width}x{height} pixels is above the limit of {max_pixels} (decompression bomb?)"
                    )
                img.load()
    except UploadRejected:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise UploadRejected(413, f"{name} is above the decompression-bomb limit") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).split(" <_io.")[0].replace(str(path), "upload")
        raise UploadRejected(400, f"corrupt or truncated {name} ({reason})") from None
    if min(width, height) < 8:
        raise UploadRejected(400, f"{name} is {width}x{height} pixels; need at least 8 on each side")


def validate_member(path: Path, kind: str, cfg: WebConfig, salt: str) -> tuple[str, str]:
    """Decode one uploaded image; DICOM and NIfTI are de-identified in place. Returns ``(route, series
    key)``; a NIfTI volume goes to 3D liver segmentation (``segment-3d``).

    Raises:
        UploadRejected: 400 corrupt/truncated, 413 too many pixels, 415 not analysed, 422 no pixels.
    """
    if kind in NIFTI_KINDS:
        check_nifti(path, kind, cfg)
        return "segment-3d", ""
    if kind != "dicom":
        _check_raster(path, kind, cfg.max_image_pixels)
        return "us-staging", ""
    from liverfib.io.dicom_dataset import read_dataset
    from liverfib.pipeline.clinical.deidentify import deidentify_on_intake
    from liverfib.pipeline.clinical.routing import route_dataset
    from liverfib.report.dicom import save_dataset

    try:
        ds = read_dataset(path)
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise UploadRejected(400, f"corrupt DICOM header ({type(exc).__name__}: {exc})") from None
    route, reason = route_dataset(ds)
    if route == "unknown":
        raise UploadRejected(415, reason)
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise UploadRejected(422, "DICOM file without pixel data: nothing to analyse")
    try:
        n_pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise UploadRejected(400, "DICOM file without valid Rows/Columns") from None
    if n_pixels > cfg.max_image_pixels:
        raise UploadRejected(413, f"DICOM image has {n_pixels} pixels, above the limit of {cfg.max_image_pixels}")
    try:
        _ = ds.pixel_array
        deidentify_on_intake(ds, salt=salt)
    except InputError as exc:
        raise UploadRejected(400, str(exc)) from None
    except Exception as exc:  # pixel decoders raise many types on truncated or corrupt data
        raise UploadRejected(400, f"cannot decode the DICOM pixel data ({type(exc).__name__}: {exc})") from None
    save_dataset(ds, path)
    return route, str(ds.get("SeriesInstanceUID", ""))

