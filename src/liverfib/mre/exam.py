"""One MRE exam as the readers return it (:mod:`liverfib.mre.dicom`, :mod:`liverfib.mre.nifti`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from liverfib.errors import ConfigError
from liverfib.image import Image

__all__ = ["MreExam", "STIFFNESS_UNITS", "check_stiffness_units"]

#: stiffness unit name (upper case) -> factor to kPa
STIFFNESS_UNITS = {"KPA": 1.0, "PA": 1e-3}


def check_stiffness_units(stiffness_units: str | None) -> None:
    """Raise :class:`ConfigError` unless ``stiffness_units`` is ``None``, kPa or Pa (any case)."""
    if stiffness_units is not None and stiffness_units.upper() not in STIFFNESS_UNITS:
        raise ConfigError(f"--stiffness-units must be kPa or Pa, got '{stiffness_units}'")


@dataclass(frozen=True)
class MreExam:
    """One exam, slices matched by location. Arrays are ``(D, H, W)`` float32.

    ``stiffness_kpa`` in kPa, ``confidence_pct`` in percent (0-100), ``magnitude`` as stored
    (``None`` if the exam has no magnitude series). ``layout`` names how kPa and confidence were
    found; ``series`` lists every series seen (number, description, role, images).
    """

    stiffness_kpa: Image
    confidence_pct: Image
    magnitude: Image | None
    layout: str
    series: list[dict[str, Any]]
    slice_locations_mm: list[float]
    warnings: list[str] = field(default_factory=list)
    exam_id: str = ""
    synthetic: bool = False

    @property
    def pixel_spacing_mm(self) -> tuple[float, float]:
        sp = self.stiffness_kpa.spacing_mm
        return (float(sp[1]), float(sp[2])) if sp is not None else (1.0, 1.0)

    @property
    def n_slices(self) -> int:
        return int(self.stiffness_kpa.shape[0])
