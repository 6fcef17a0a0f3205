"""What a clinical analysis produces, and the models it shares across jobs."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict

from liverfib.errors import LiverfibError

__all__ = ["ClinicalConfig", "ModelCache"]


class ClinicalConfig(BaseModel):
    """What an analysis produces (frozen; unknown keys rejected)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "default"
    with_cam: bool = True
    with_liver: bool = True
    deidentified_report: bool = False
    pdf: bool = True


class ModelCache:
    """Models loaded once per process and shared by the worker (loaded lazily, thread-safe)."""

    def __init__(self, cfg: ClinicalConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._predictor: Any = None
        self._segmenter: Any = None
        self._segmenter_note: str | None = None

    def derive(self, **changes: Any) -> ModelCache:
        """A cache with some settings changed that shares the models already loaded."""
        other = ModelCache(self.cfg.model_copy(update=changes))
        if other.cfg.model == self.cfg.model:
            other._predictor = self._predictor
            other._segmenter, other._segmenter_note = self._segmenter, self._segmenter_note
        return other

    def predictor(self) -> Any:
        with self._lock:
            if self._predictor is None:
                from liverfib.inference.predictor import load_predictor

                self._predictor = load_predictor(self.cfg.model)
            return self._predictor

    def segmenter(self) -> tuple[Any, str | None]:
        with self._lock:
            if self._segmenter is None and self._segmenter_note is None:
                try:
                    from liverfib.inference.segmenter import load_segmenter

                    self._segmenter = load_segmenter("default")
                except (ImportError, LiverfibError) as exc:
                    self._segmenter_note = f"liver segmentation not available ({exc}); no liver mask"
            return self._segmenter, self._segmenter_note
