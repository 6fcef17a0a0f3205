"""Report floor: evaluation figures and atomically written JSON results."""

from __future__ import annotations

from liverfib.report.jsonio import write_json
from liverfib.report.plots import plot_evaluation

__all__ = ["plot_evaluation", "write_json"]
