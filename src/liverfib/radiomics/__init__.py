"""Radiomics beside deep learning: pyradiomics features in an ROI, robustness filtering,
selection, classical models with nested grouped CV, SHAP explanations and stacking fusion."""

from __future__ import annotations

from liverfib.radiomics.config import RadiomicsConfig, load_config, save_config
from liverfib.radiomics.extract import ExtractionJob, extract_features, extract_many, roi_mask
from liverfib.radiomics.table import FeatureTable, read_feature_table, write_feature_table

__all__ = [
    "RadiomicsConfig",
    "load_config",
    "save_config",
    "ExtractionJob",
    "extract_features",
    "extract_many",
    "roi_mask",
    "FeatureTable",
    "read_feature_table",
    "write_feature_table",
]
