"""Liver segmentation: segment, train_seg."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from liverfib.api._device import _resolve_device
from liverfib.api._inputs import Inputs, PathLike, _as_images, _as_paths, _opt, _write_temp
from liverfib.api.results import SegmentResult, TrainResult, _wrap


def segment(
    inputs: Inputs,
    *,
    out: PathLike,
    modality: str = "us",
    model: str = "default",
    device: str = "cpu",
    **options: Any,
) -> SegmentResult:
    """Liver masks: ``us`` 2D images -> PNG masks + overlays in folder ``out``; ``mr``/``ct`` volumes
    -> ``mask.nii.gz`` (one input) or a folder. In-memory arrays are written to a temporary file first
    (2D -> PNG, 3D ``(D, H, W)`` -> NIfTI with the image's spacing)."""
    _resolve_device(device, "segment")
    from liverfib.pipeline.segment import run_segment

    images = _as_images(inputs)
    with tempfile.TemporaryDirectory(prefix="liverfib-api-") as tmp:
        paths = _write_temp(images, Path(tmp)) if images is not None else _as_paths(inputs)
        summary, text = run_segment(paths, modality=modality, out=Path(out), model=model, **options)
    masks = summary.get("images") or summary.get("volumes") or summary.get("results") or []
    return SegmentResult(summary=summary, text=text, masks=list(masks))



def train_seg(task: str, *, data: PathLike, out: PathLike, config: PathLike | None = None,
              val_fraction: float = 0.0, threads: int | None = None, device: str = "cpu",
              **overrides: Any) -> TrainResult:
    """Train a segmentation network for ``task`` (see ``liverfib train-seg --list``)."""
    _resolve_device(device, "train-seg")
    from liverfib.pipeline.segment import run_train_seg

    return _wrap(TrainResult, run_train_seg(task, Path(data), out_dir=Path(out), config=_opt(config),
                                            overrides={k: v for k, v in overrides.items() if v is not None},
                                            val_fraction=val_fraction, threads=threads))
