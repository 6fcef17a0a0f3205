"""Python twin of the CLI.

Each ``run_*`` function wires the floors together (io -> preprocess -> models -> explain ->
quantify -> report) and returns ``(json_summary, human_text)``; ``cli.py`` only parses options and
calls these. One module per workflow; only this package (and ``training/``) crosses floors.
"""

from __future__ import annotations

from liverfib.pipeline.staging import run_audit, run_evaluate, run_predict, run_split, run_train

__all__ = ["run_audit", "run_split", "run_evaluate", "run_predict", "run_train"]
