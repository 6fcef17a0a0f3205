"""Dataset floor: audit (copies, near-duplicates, confounding) and leakage-free splits."""

from liverfib.dataset.audit import DEFAULT_NEAR_THRESHOLD, AuditResult, audit_folder, audit_items, cramers_v
from liverfib.dataset.split import make_folds, make_split, read_split_csv, write_split_csv

__all__ = [
    "make_folds",
    "make_split",
    "read_split_csv",
    "write_split_csv",
    "DEFAULT_NEAR_THRESHOLD",
    "AuditResult",
    "audit_folder",
    "audit_items",
    "cramers_v",
]
