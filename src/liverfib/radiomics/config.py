"""Typed, frozen settings of a radiomics extraction, saved as YAML beside every feature table.

The settings map one-to-one onto pyradiomics' (``binWidth``, ``resampledPixelSpacing``,
``normalize``, ...); :meth:`RadiomicsConfig.pyradiomics_settings` does the translation, so the YAML
reads in liverfib's naming (units in names) while the extractor gets what it expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from liverfib.config import ResolvableConfig
from liverfib.errors import ConfigError, unknown_choice

__all__ = [
    "FEATURE_CLASSES",
    "IMAGE_FILTERS",
    "RadiomicsConfig",
    "RadiomicsTrainConfig",
    "load_config",
    "load_train_config",
    "save_config",
]

#: Feature classes liverfib enables. "shape" means shape2D for 2D images and 3D shape for volumes.
FEATURE_CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
#: Optional filtered images beside the original (pyradiomics image types).
IMAGE_FILTERS = ("log", "wavelet")


class RadiomicsConfig(ResolvableConfig):
    """Extraction settings (defaults < YAML < CLI flags).

    Attributes:
        bin_width: gray-level bin width in image units (8 for 8-bit ultrasound: 32 bins; ~25 HU
            for CT; ~5 for MR after ``normalize``; ~0.25 kPa for MRE stiffness maps).
        resampled_spacing_mm: resample image and mask to this spacing first (``None`` = keep);
            one value per array axis of the input, like :attr:`liverfib.image.Image.spacing_mm`.
        normalize: z-score the whole image (pyradiomics ``normalize``) and scale by
            ``normalize_scale``; for MR, whose intensities have no absolute unit.
        feature_classes: subset of :data:`FEATURE_CLASSES`.
        filters: subset of :data:`IMAGE_FILTERS` (adds ``log-sigma-...`` / ``wavelet-...`` features).
        log_sigma_mm: LoG kernel widths when ``log`` is in ``filters``.
        force_2d: compute texture per slice for volumes (2D images always are).
        min_roi_pixels: masks with fewer pixels are an error, not a silent NaN.
        workers: processes for :func:`liverfib.radiomics.extract.extract_many` (at most 2 here).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bin_width: float = Field(8.0, gt=0)
    resampled_spacing_mm: tuple[float, ...] | None = None
    normalize: bool = False
    normalize_scale: float = Field(100.0, gt=0)
    feature_classes: tuple[str, ...] = FEATURE_CLASSES
    filters: tuple[str, ...] = ()
    log_sigma_mm: tuple[float, ...] = (1.0, 2.0, 4.0)
    force_2d: bool = False
    min_roi_pixels: int = Field(16, ge=1)
    workers: int = Field(1, ge=1, le=2)
    interpolator: Literal["sitkBSpline", "sitkLinear", "sitkNearestNeighbor"] = "sitkBSpline"

    @field_validator("feature_classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in FEATURE_CLASSES:
                raise unknown_choice("radiomics feature class", name, FEATURE_CLASSES)
        if not value:
            raise ConfigError(f"feature_classes is empty; pick some of {', '.join(FEATURE_CLASSES)}")
        return value

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in IMAGE_FILTERS:
                raise unknown_choice("radiomics filter", name, IMAGE_FILTERS)
        return value

    @field_validator("resampled_spacing_mm", "log_sigma_mm")
    @classmethod
    def _positive(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and any(v <= 0 for v in value):
            raise ValueError(f"expected positive values, got {list(value)}")
        return value

    def pyradiomics_settings(self, ndim: int) -> dict[str, Any]:
        """Settings for ``RadiomicsFeatureExtractor`` on an ``ndim``-D image (2 or 3).

        2D images are passed to SimpleITK as one-slice volumes, so they always run with
        ``force2D`` along the slice axis (pyradiomics' ``force2Ddimension=0``).
        """
        settings: dict[str, Any] = {
            "binWidth": self.bin_width,
            "normalize": self.normalize,
            "normalizeScale": self.normalize_scale,
            "interpolator": self.interpolator,
            "force2D": ndim == 2 or self.force_2d,
            "force2Ddimension": 0,
            "minimumROISize": self.min_roi_pixels,
            "label": 1,
            "additionalInfo": False,
        }
        if self.resampled_spacing_mm is not None:
            if len(self.resampled_spacing_mm) != ndim:
                raise ConfigError(
                    f"resampled_spacing_mm has {len(self.resampled_spacing_mm)} values for a {ndim}D "
                    f"image; give one per axis ({'row, col' if ndim == 2 else 'slice, row, col'})"
                )
            xyz = tuple(reversed(self.resampled_spacing_mm))  # SimpleITK order (x, y[, z])
            settings["resampledPixelSpacing"] = list(xyz) + ([0.0] if ndim == 2 else [])
        return settings


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RadiomicsConfig:
    """Resolve defaults < YAML at ``path`` < ``overrides``; unknown keys are a ConfigError."""
    return RadiomicsConfig.resolve(path, overrides, what="radiomics config", hint="; see configs/radiomics_us.yaml")


def save_config(config: BaseModel, path: str | Path) -> Path:
    """Write a frozen config as YAML through :func:`liverfib.io.atomic.atomic_write`."""
    import yaml

    from liverfib.io.atomic import atomic_write

    return atomic_write(Path(path), data=yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


class RadiomicsTrainConfig(ResolvableConfig):
    """Model settings of ``liverfib radiomics train`` (defaults < YAML < CLI flags), saved as YAML.

    Attributes:
        model: registered model name (see :data:`liverfib.radiomics.models.MODELS`).
        icc_threshold: drop features with robustness ICC below this (when ICCs are available).
        corr_threshold: drop one of each feature pair with |Pearson r| above this.
        lasso_c: inverse L1 strength of the LASSO selector (``None``: no LASSO step).
        inner_folds: grouped inner folds for tuning (and for the stacker's training predictions).
        fuse_c_grid: C grid of the logistic-regression head on each fused feature table (the
            deep-learning recipe of benchmarks/cv_features.py).
        stacker_c: inverse L2 strength of the stacking logistic regression.
        n_boot: bootstrap resamples (over the split's groups) for the 95 % CIs.
        shap_images: how many images the SHAP summary explains (0: no SHAP plots).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "lr"
    icc_threshold: float = Field(0.75, ge=0.0, le=1.0)
    corr_threshold: float = Field(0.95, gt=0.0, le=1.0)
    lasso_c: float | None = Field(0.1, gt=0)
    inner_folds: int = Field(3, ge=2)
    fuse_c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
    fuse_inner_folds: int = Field(4, ge=2)
    stacker_c: float = Field(1.0, gt=0)
    n_boot: int = Field(1000, ge=0)
    shap_images: int = Field(100, ge=0)
    shap_background: int = Field(20, ge=1)
    seed: int = 0


def load_train_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> RadiomicsTrainConfig:
    """Resolve defaults < YAML < ``overrides`` for training; unknown keys are a ConfigError."""
    cfg = RadiomicsTrainConfig.resolve(
        path, overrides, what="radiomics train", hint="; see configs/radiomics_train.yaml"
    )
    from liverfib.radiomics.models import check_model_name

    check_model_name(cfg.model)
    return cfg
