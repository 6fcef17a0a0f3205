"""Report floor: evaluation figures, overlays, HTML/PDF reports and DICOM SEG/SR/SC writers.

Names load on first use so that ``write_json`` (kept here for callers; it lives in
``liverfib.io.jsonio``) does not pull in matplotlib/sklearn (``plots``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["plot_evaluation", "write_json"]


def __getattr__(name: str) -> Any:
    if name == "write_json":
        from liverfib.io.jsonio import write_json

        return write_json
    if name == "plot_evaluation":
        from liverfib.report.plots import plot_evaluation

        return plot_evaluation
    raise AttributeError(f"module 'liverfib.report' has no attribute {name!r}")
