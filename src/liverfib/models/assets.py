"""Where the shipped model bundles live (``liverfib/assets``) and how ``--model default`` resolves
(each task's bundle folder is in its :data:`liverfib.models.tasks.TASKS` row)."""

from __future__ import annotations

from pathlib import Path

from liverfib.errors import ModelError, unknown_choice
from liverfib.models.tasks import TASKS

__all__ = ["ASSETS_DIR", "default_bundle_path", "resolve_model"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


def default_bundle_path(task: str) -> Path:
    """Where the shipped bundle of ``task`` (its registry row's ``shipped``) lives; it may be missing."""
    shipped = {t.name: t.default_bundle for t in TASKS.values() if t.default_bundle}
    if task not in shipped:
        raise unknown_choice("task with a shipped model", task, shipped)
    return ASSETS_DIR / shipped[task]


def resolve_model(model: str | Path, task: str) -> Path:
    """``"default"`` -> the shipped bundle of ``task``; anything else -> ``Path(model)``."""
    if str(model) != "default":
        return Path(model)
    path = default_bundle_path(task)
    if not path.is_dir():
        raise ModelError(f"the shipped '{task}' model is missing ({path}); reinstall liverfib or pass --model PATH")
    return path
