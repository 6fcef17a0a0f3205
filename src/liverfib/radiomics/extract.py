"""Radiomics features of an image inside a mask, with pyradiomics (the ``pyradiomics-bhklab`` wheel).

Why pyradiomics-bhklab over mirp: it *is* pyradiomics (same feature definitions, same
``<filter>_<class>_<Feature>`` names such as ``original_firstorder_Mean`` that most radiomics papers
and the IBSI comparison tables use), and its wheel installs here, whereas pyradiomics 3.1.0 itself
does not build. mirp is IBSI-compliant too but names and defaults differ, so published feature lists
would not carry over.

Unlike plain pyradiomics, a feature that fails to compute is an :class:`InputError` that names the
feature and the image, never a silent NaN (pyradiomics logs the failure and stores NaN).

2D images ``(H, W)`` go to SimpleITK as one-slice volumes ``(1, H, W)`` and are computed with
``force2D``; the class ``shape`` becomes ``shape2D`` for them. Volumes ``(D, H, W)`` use 3D shape.
Spacing comes from :attr:`Image.spacing_mm`; without one (plain PNG/JPEG) it is 1 (pixel units).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ConfigError, InputError, ModelError
from liverfib.image import Image
from liverfib.radiomics.config import RadiomicsConfig

__all__ = ["ROI_SOURCES", "ExtractionJob", "extract_features", "extract_many", "roi_mask"]

#: Where a mask can come from when no mask file is given.
ROI_SOURCES = ("fan", "liver")
_FILTER_TYPES = {"log": "LoG", "wavelet": "Wavelet"}


@dataclass(frozen=True)
class ExtractionJob:
    """One image to extract: its file and either a mask file or an automatic ROI (``fan``/``liver``)."""

    image_path: Path
    mask_path: Path | None = None
    roi: str | None = None


# --------------------------------------------------------------------------------------- ROI masks
def roi_mask(image: Image, roi: str) -> np.ndarray:
    """Automatic ROI of a 2D ultrasound image: ``fan`` (echo sector) or ``liver`` (segmenter).

    Returns a bool mask with the image's shape.
    """
    if roi not in ROI_SOURCES:
        raise ConfigError(f"Unknown ROI '{roi}'. Valid choices: {', '.join(ROI_SOURCES)}, or pass --masks")
    if image.ndim != 2:
        raise InputError(f"{image.name}: --roi {roi} needs a 2D ultrasound image, got shape {image.shape}")
    from liverfib.inference.predictor import check_bmode

    check_bmode(image)  # the check of `predict`: a CT/MR DICOM or a blank image is refused, with the reason
    if roi == "fan":
        from liverfib.preprocess.fan import detect_fan

        return detect_fan(image.array).mask
    mask = np.asarray(_liver_segmenter().predict(image), dtype=bool)
    if mask.shape != image.shape:
        raise ModelError(
            f"{image.name}: liver segmenter returned a {mask.shape} mask for a {image.shape} image"
        )
    return mask


@functools.lru_cache(maxsize=1)
def _liver_segmenter() -> Any:
    """The shipped ultrasound liver segmenter, loaded once per process (imported lazily)."""
    try:
        from liverfib.inference.segmenter import load_segmenter
    except ImportError:
        raise ConfigError(
            "--roi liver needs the ultrasound liver segmenter (liverfib.inference.segmenter), which is "
            "not installed in this version; use --roi fan or pass --masks"
        ) from None
    return load_segmenter("default")


# ------------------------------------------------------------------------------------- extraction
def _to_sitk(array: np.ndarray, spacing_mm: tuple[float, ...] | None) -> Any:
    import SimpleITK as sitk

    vol = array[None] if array.ndim == 2 else array
    img = sitk.GetImageFromArray(vol)
    spacing = tuple(spacing_mm) if spacing_mm is not None else (1.0,) * array.ndim
    xyz = tuple(float(s) for s in reversed(spacing))
    img.SetSpacing(xyz + ((1.0,) if array.ndim == 2 else ()))
    return img


def _extractor(config: RadiomicsConfig, ndim: int) -> Any:
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.CRITICAL)
    ex = featureextractor.RadiomicsFeatureExtractor(**config.pyradiomics_settings(ndim))
    ex.disableAllFeatures()
    for name in config.feature_classes:
        if name == "shape":
            name = "shape2D" if ndim == 2 else "shape"
        ex.enableFeatureClassByName(name)
    ex.enableImageTypeByName("Original")
    for name in config.filters:
        custom = {"sigma": list(config.log_sigma_mm)} if name == "log" else {}
        ex.enableImageTypeByName(_FILTER_TYPES[name], customArgs=custom)
    return ex


def _check_mask(image: Image, mask: np.ndarray, config: RadiomicsConfig) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != image.shape:
        raise InputError(
            f"{image.name}: mask shape {mask.shape} differs from image shape {image.shape}; "
            "pass a mask on the same grid"
        )
    mask = mask > 0
    n = int(mask.sum())
    if n < config.min_roi_pixels:
        raise InputError(
            f"{image.name}: ROI has {n} pixels, fewer than min_roi_pixels={config.min_roi_pixels}; "
            "check the mask (empty label?) or lower min_roi_pixels"
        )
    return mask


def extract_features(image: Image, mask: np.ndarray, config: RadiomicsConfig) -> dict[str, float]:
    """Features of ``image`` inside ``mask`` (same shape, nonzero = ROI), named the pyradiomics way.

    Returns ``{"original_firstorder_Mean": ..., ...}`` (diagnostics dropped). Raises InputError
    naming the feature when pyradiomics could not compute one (NaN or infinite value).
    """
    if not np.issubdtype(image.array.dtype, np.number):
        raise InputError(f"{image.name}: expected a numeric image, got dtype {image.array.dtype}")
    roi = _check_mask(image, mask, config)
    ex = _extractor(config, image.ndim)
    sitk_img = _to_sitk(image.array.astype(np.float32), image.spacing_mm)
    sitk_mask = _to_sitk(roi.astype(np.uint8), image.spacing_mm)
    try:
        raw = ex.execute(sitk_img, sitk_mask)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{image.name}: radiomics extraction failed: {first}") from None
    out: dict[str, float] = {}
    for name, value in raw.items():
        if name.startswith("diagnostics_"):
            continue
        v = float(np.asarray(value, dtype=np.float64))
        if not np.isfinite(v):
            raise InputError(
                f"{image.name}: feature '{name}' could not be computed (got {v}); the ROI may be too "
                "small or flat for it; drop its class from feature_classes or fix the mask"
            )
        out[name] = v
    if not out:
        raise InputError(f"{image.name}: no features computed; check feature_classes")
    return out


def _load_job(job: ExtractionJob) -> tuple[Image, np.ndarray]:
    from liverfib.io import read_image

    image = read_image(job.image_path)  # gray; colour files are converted on read
    if job.mask_path is not None:
        mask = read_image(job.mask_path).array
        return image, mask
    if job.roi is None:
        raise ConfigError(f"{job.image_path}: give a mask file or an ROI ({', '.join(ROI_SOURCES)})")
    return image, roi_mask(image, job.roi)


def _run_job(job: ExtractionJob, config: RadiomicsConfig) -> dict[str, Any]:
    image, mask = _load_job(job)
    feats = extract_features(image, mask, config)
    meta = {
        "path": str(job.image_path),
        "roi": str(job.mask_path) if job.mask_path is not None else str(job.roi),
        "roi_pixels": int((np.asarray(mask) > 0).sum()),
    }
    return {**meta, **feats}


def extract_many(
    jobs: Sequence[ExtractionJob],
    config: RadiomicsConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Extract every job (in ``config.workers`` processes, at most 2); rows in job order.

    Each row holds ``path``, ``roi``, ``roi_pixels`` and the feature columns. With ``errors`` (a
    list), an image that cannot be used is skipped and recorded there as ``{"index", "path",
    "error"}``; without it the first failing image stops the run (no half-filled table).
    """
    total = len(jobs)
    rows: list[dict[str, Any] | None] = [None] * total

    def failed(i: int, exc: InputError) -> None:
        if errors is None:
            raise exc
        errors.append({"index": i, "path": str(jobs[i].image_path), "error": str(exc)})

    if config.workers == 1 or total < 2:
        for i, job in enumerate(jobs):
            try:
                rows[i] = _run_job(job, config)
            except InputError as exc:  # a bad image; a bad option or model still stops the run
                failed(i, exc)
            if progress:
                progress(i + 1, total)
    else:
        from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

        with ProcessPoolExecutor(max_workers=min(2, config.workers)) as pool:
            futures = {pool.submit(_run_job, job, config): i for i, job in enumerate(jobs)}
            done_count = 0
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION, timeout=1.0)
                for fut in done:
                    exc = fut.exception()
                    if exc is not None:
                        if errors is not None and isinstance(exc, InputError):
                            failed(futures[fut], exc)
                            done_count += 1
                            continue
                        for other in pending:
                            other.cancel()
                        raise exc
                    rows[futures[fut]] = fut.result()
                    done_count += 1
                if progress and done:
                    progress(done_count, total)
    done_rows = [r for r in rows if r is not None]
    names = list(done_rows[0].keys()) if done_rows else []
    for row in done_rows:
        if list(row.keys()) != names:
            missing = sorted(set(names) ^ set(row.keys()))
            raise InputError(f"{row['path']}: feature set differs from the first image's: {missing[:5]}")
    return done_rows
