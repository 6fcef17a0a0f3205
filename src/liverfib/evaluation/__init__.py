"""Evaluate stage predictions: metrics with group-bootstrap CIs, validation-fitted thresholds, CSV input."""

from __future__ import annotations

from liverfib.evaluation.metrics import (
    BINARY_TASKS,
    N_CALIBRATION_BINS,
    binary_tasks,
    evaluate_probabilities,
    fit_thresholds,
    read_predictions_csv,
)

__all__ = [
    "BINARY_TASKS",
    "N_CALIBRATION_BINS",
    "binary_tasks",
    "evaluate_probabilities",
    "fit_thresholds",
    "read_predictions_csv",
]
