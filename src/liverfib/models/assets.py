"""The shipped model bundles (folders under ``liverfib/assets``) and how ``"default"`` resolves."""

from __future__ import annotations

from pathlib import Path

from liverfib.errors import ModelError, unknown_choice

__all__ = ["ASSETS_DIR", "SHIPPED", "resolve_model"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"

#: task -> its shipped bundle (folder name under ``liverfib/assets``)
SHIPPED: dict[str, str] = {
    "us-staging": "us_staging_default",
    "us-liver-seg": "us_liver_seg_default",
    "mre-seg": "mre_seg_default",
    "mri-seg": "mri_seg_default",
    "mri-staging": "mri_staging_synthetic",
}


def resolve_model(model: str | Path, task: str) -> Path:
    """``"default"`` -> the shipped bundle of ``task``; anything else -> ``Path(model)``."""
    if str(model) != "default":
        return Path(model)
    if task not in SHIPPED:
        raise unknown_choice("task with a shipped model", task, SHIPPED)
    path = ASSETS_DIR / SHIPPED[task]
    if not path.is_dir():
        raise ModelError(f"the shipped '{task}' model is missing ({path}); reinstall liverfib or pass --model PATH")
    return path
