"""MRE liver stiffness -> METAVIR-like stage: a configurable, cited cut-off table.

Default table (kPa, 2D GRE MRE at 60 Hz, magnitude of the complex shear modulus):

* ``F1 >= 2.5``: upper limit of normal liver stiffness, Venkatesh SK, Yin M, Ehman RL. *Magnetic
  resonance elastography of liver: technique, analysis, and clinical applications.* J Magn Reson
  Imaging 2013;37(3):544-555 (interpretation table: < 2.5 normal; 2.5-2.9 normal or inflammation;
  2.9-3.5 stage 1-2; 3.5-4 stage 2-3; 4-5 stage 3-4; > 5 stage 4 / cirrhosis).
* ``F2 >= 2.8``: the significant-fibrosis threshold of the ResNeXt-UNet MRE study (319 patients)
  that liverfib issue 6 reproduces.
* ``F3 >= 4.0`` and ``F4 >= 5.0``: lower bounds of the "stage 3-4" and "stage 4" bands of the same
  Venkatesh 2013 table.

These cut-offs are population-level and vendor/frequency dependent; pass your own table
(``--cutoffs table.yaml``) for local use.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from liverfib.errors import ConfigError

__all__ = ["STAGES", "StageCutoffs", "DEFAULT_CUTOFFS", "stage_from_kpa", "load_cutoffs", "validation_message"]

STAGES = ("F0", "F1", "F2", "F3", "F4")


class StageCutoffs(BaseModel):
    """Lower stiffness bound (kPa) of each stage F1..F4; F0 is everything below ``f1_kpa``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    f1_kpa: float = 2.5
    f2_kpa: float = 2.8
    f3_kpa: float = 4.0
    f4_kpa: float = 5.0
    source: str = "F1/F3/F4: Venkatesh, Yin, Ehman, JMRI 2013;37:544-555; F2: 2.8 kPa (significant-fibrosis cut-off of the ResNeXt-UNet MRE study, 319 patients)"

    @model_validator(mode="after")
    def _increasing(self) -> StageCutoffs:
        values = [self.f1_kpa, self.f2_kpa, self.f3_kpa, self.f4_kpa]
        if values[0] <= 0 or not all(a < b for a, b in zip(values[:-1], values[1:], strict=True)):
            raise ValueError(f"cut-offs must be positive and strictly increasing F1<F2<F3<F4, got {values}")
        return self

    def bounds(self) -> tuple[float, float, float, float]:
        return (self.f1_kpa, self.f2_kpa, self.f3_kpa, self.f4_kpa)


DEFAULT_CUTOFFS = StageCutoffs()


def stage_from_kpa(stiffness_kpa: float, cutoffs: StageCutoffs = DEFAULT_CUTOFFS) -> str:
    """The stage ("F0".."F4") whose band holds ``stiffness_kpa`` (a bound belongs to the higher stage)."""
    stage = 0
    for k, bound in enumerate(cutoffs.bounds(), start=1):
        if stiffness_kpa >= bound:
            stage = k
    return STAGES[stage]


def validation_message(exc: ValueError) -> str:
    """One line from a pydantic ValidationError: ``field: problem; field: problem``."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return str(exc).splitlines()[0]
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in errors())


def load_cutoffs(path: str | Path | None) -> StageCutoffs:
    """Read a YAML cut-off table (keys of :class:`StageCutoffs`); ``None`` gives the default."""
    if path is None:
        return DEFAULT_CUTOFFS
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the cut-off table ({exc}); expected YAML with f1_kpa..f4_kpa") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping f1_kpa..f4_kpa, got {type(data).__name__}")
    try:
        return StageCutoffs(**data)
    except ValueError as exc:
        raise ConfigError(f"{path}: invalid cut-off table: {validation_message(exc)}") from None
