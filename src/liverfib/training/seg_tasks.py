"""Registry of segmentation training tasks behind ``liverfib train-seg --task NAME``.

Plain data: :data:`SEG_TASKS` maps a task name to ``("module:function", one-line help)``. The
function is imported only when the task runs (``liverfib --help`` stays instant) and is called as::

    summary, text = function(data_dir, out_dir=..., config=..., overrides={...},
                             val_fraction=..., threads=...)

returning the JSON summary dict and the human-readable text, like every ``liverfib.pipeline.run_*``.
``overrides`` holds only the CLI flags the user gave (``arch``, ``epochs``, ``batch_size``, ``lr``,
``img_size``, ``seed``); a task rejects keys it does not know with ``ConfigError``.

To add a task (e.g. ``mri``): write such a function in your own pipeline module and add one line
to :data:`SEG_TASKS` (or call ``register_seg_task("mri", "liverfib.pipeline.mri:run_train_seg_mri",
"help")`` from a module the CLI imports). ``train-seg --task`` and ``train-seg --list`` read this dict.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from liverfib.errors import ConfigError, unknown_choice

__all__ = ["SEG_TASKS", "SegTask", "register_seg_task", "list_seg_tasks", "seg_task_runner"]

SEG_TASKS: dict[str, tuple[str, str]] = {
    "us-liver": ("liverfib.pipeline.segment:run_train_us_liver", "ultrasound liver masks (image/mask pairs)"),
    "cam-us": ("liverfib.pipeline.segment:run_train_cam_us", "ultrasound CAM pseudo-masks (image/mask pairs)"),
    "mre": ("liverfib.pipeline.mre:train_seg_mre", "MRE liver on the magnitude image (exam folders with truth.json)"),
    "mri": ("liverfib.pipeline.mri:run_train_seg_mri", "MR/CT liver, 2D slice-wise (manifest.csv slices/volumes or LiQA root)"),
}


@dataclass(frozen=True)
class SegTask:
    name: str
    target: str
    help: str


def register_seg_task(name: str, target: str, help: str = "") -> None:
    """Register ``name`` -> ``"module:function"``; re-registering the same target is a no-op."""
    if ":" not in target:
        raise ConfigError(f"segmentation task target must be 'module:function', got '{target}'")
    if name in SEG_TASKS and SEG_TASKS[name][0] != target:
        raise ConfigError(f"segmentation task '{name}' is already registered to {SEG_TASKS[name][0]}")
    SEG_TASKS[name] = (target, help)


def list_seg_tasks() -> list[SegTask]:
    return [SegTask(n, t, h) for n, (t, h) in sorted(SEG_TASKS.items())]


def seg_task_runner(name: str) -> Callable[..., tuple[dict[str, Any], str]]:
    """Import and return the training function of task ``name``."""
    if name not in SEG_TASKS:
        raise unknown_choice("segmentation task", name, SEG_TASKS)
    module, func = SEG_TASKS[name][0].split(":")
    return getattr(importlib.import_module(module), func)
