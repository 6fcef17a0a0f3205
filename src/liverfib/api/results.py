"""What every API function returns: frozen dataclasses with ``summary`` (the ``--json`` output) and ``text``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    """What every command returns: ``summary`` (the ``--json`` output) and ``text`` (the printout)."""

    summary: dict[str, Any] = field(repr=False)
    text: str = field(repr=False)

    @property
    def out(self) -> Path | None:
        """Where the command wrote, when it did."""
        for key in ("out", "out_dir", "out_csv", "run_dir"):
            if self.summary.get(key):
                return Path(self.summary[key])
        return None

    @property
    def errors(self) -> list[dict[str, str]]:
        """Inputs that were skipped, each ``{"path", "error"}`` (the reason)."""
        return list(self.summary.get("errors", []))

    def to_dict(self) -> dict[str, Any]:
        return self.summary


@dataclass(frozen=True)
class StagePrediction:
    """Stage of one ultrasound image; probabilities per METAVIR class (sum to 1)."""

    path: str | None
    stage: str
    probabilities: dict[str, float]
    p_ge_f2: float | None
    p_ge_f3: float | None
    p_f4: float | None
    warning: str | None = None


@dataclass(frozen=True)
class PredictResult(Result):
    predictions: list[StagePrediction] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SegmentResult(Result):
    """``masks``: one record per input (mask file, area or ``volume_ml``)."""

    masks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class MreResult(Result):
    """Liver stiffness of one exam (kPa) and its stage."""

    mean_stiffness_kpa: float | None = None
    stage: str | None = None


@dataclass(frozen=True)
class AuditResult(Result):
    pass


@dataclass(frozen=True)
class SplitResult(Result):
    pass


@dataclass(frozen=True)
class EvaluateResult(Result):
    pass


@dataclass(frozen=True)
class ExplainResult(Result):
    pass


@dataclass(frozen=True)
class TrainResult(Result):
    pass


@dataclass(frozen=True)
class ReportResult(Result):
    pass


@dataclass(frozen=True)
class DeidentifyResult(Result):
    pass


def _wrap(cls: type[Result], pair: tuple[dict[str, Any], str], **fields: Any) -> Any:
    summary, text = pair
    return cls(summary=summary, text=text, **fields)
