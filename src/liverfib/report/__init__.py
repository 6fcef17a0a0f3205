"""Report floor: evaluation figures and atomically written JSON results.

Names load on first use: ``liverfib.report.jsonio`` is imported by nearly every command and must
not pull in matplotlib/sklearn (``plots``), which would add seconds to every bad-input error.
"""

from __future__ import annotations

from typing import Any

__all__ = ["plot_evaluation", "write_json"]


def __getattr__(name: str) -> Any:
    if name == "write_json":
        from liverfib.report.jsonio import write_json

        return write_json
    if name == "plot_evaluation":
        from liverfib.report.plots import plot_evaluation

        return plot_evaluation
    raise AttributeError(f"module 'liverfib.report' has no attribute {name!r}")
