"""Deep features for ``radiomics train --fuse``: an ImageNet backbone's pooled features of each
distinct ultrasound image (and its horizontal flip, averaged), one Parquet row per image."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError, LiverfibError
from liverfib.pipeline.radiomics import distinct_files, expand_inputs

__all__ = ["run_deep_features"]


def _flush(net: Any, batch: list[tuple[int, Any]], paths: list[Path], shas: list[str] | None,
           n_copies: list[int] | None, backbone: str, rows: list[dict[str, Any]]) -> None:
    """Features of the images in ``batch`` (flip-averaged) appended to ``rows``; ``batch`` is emptied."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.stack([a for _, a in batch]))
    with torch.inference_mode():
        f = net.pooled_features(torch.cat([x, x.flip(-1)]))
    feats = (0.5 * (f[: len(batch)] + f[len(batch):])).numpy()
    for (i, _), v in zip(batch, feats, strict=True):
        row: dict[str, Any] = {"path": str(paths[i])}
        if shas is not None and n_copies is not None:
            row.update(sha256=shas[i], n_copies=n_copies[i])
        row.update({f"dl_{backbone}_{j:04d}": float(x_) for j, x_ in enumerate(v)})
        rows.append(row)
    batch.clear()


def _extract(net: Any, pre: Any, paths: list[Path], shas: list[str] | None, n_copies: list[int] | None,
             backbone: str, batch_size: int, strict: bool) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Rows of every readable image, and the skipped files with their errors."""
    from liverfib.inference.predictor import check_bmode
    from liverfib.io import read_image
    from liverfib.progress import Progress

    rows: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    batch: list[tuple[int, Any]] = []
    with Progress(len(paths), "deep-features", "img") as bar:
        for i, p in enumerate(paths):
            try:
                image = read_image(p)
                if image.ndim != 2:
                    raise InputError(f"{p}: expected a 2D ultrasound image, got shape {image.shape}")
                check_bmode(image)  # the check of `predict`: a CT/MR DICOM or a blank image is refused
            except LiverfibError as exc:
                if strict:
                    raise
                errors.append({"path": str(p), "error": str(exc)})
                bar.update()
                continue
            batch.append((i, pre(image.array)))
            if len(batch) == batch_size:
                _flush(net, batch, paths, shas, n_copies, backbone, rows)
            bar.update()
        if batch:
            _flush(net, batch, paths, shas, n_copies, backbone, rows)
    return rows, errors


def run_deep_features(
    images: Sequence[Path],
    out: Path,
    *,
    backbone: str = "tf_efficientnet_lite0",
    img_size: int = 224,
    stages: Sequence[int] = (1, 2, 3),
    fan: bool = True,
    keep_copies: bool = False,
    batch_size: int = 16,
    strict: bool = False,
) -> tuple[dict[str, Any], str]:
    """Deep features for ``radiomics train --fuse``: the ImageNet backbone's pooled features (final
    + ``stages``) of each distinct image and its horizontal flip, averaged, one Parquet row per image.

    The backbone is ImageNet-pretrained and never saw a fibrosis label, so stacking these features
    under the nested grouped CV of ``radiomics train`` leaks nothing (a fine-tuned checkpoint would:
    it was fit on some of the rows being scored). Unreadable files are skipped and listed.
    """
    import yaml

    from liverfib.io.outputs import check_output_file
    from liverfib.models.staging import StagingNet
    from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess
    from liverfib.radiomics.table import write_feature_table

    check_output_file(Path(out), (".parquet",))
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    pre = UltrasoundPreprocess(PreprocessConfig(img_size=img_size, fan_mask=fan, fan_crop=fan))
    paths = expand_inputs(images, "images")
    shas: list[str] | None = None
    n_copies: list[int] | None = None
    if not keep_copies:
        paths, shas, n_copies = distinct_files(paths)
    net = StagingNet(backbone, feature_stages=list(stages)).eval()
    t0 = time.perf_counter()
    rows, errors = _extract(net, pre, paths, shas, n_copies, backbone, batch_size, strict)
    if not rows:
        raise InputError("no image could be read: " + "; ".join(e["error"] for e in errors[:3]))
    settings = {"kind": "deep-features", "backbone": backbone, "weights": "ImageNet (no fibrosis labels)",
                "img_size": img_size, "stages": list(stages), "fan_crop": fan, "flip_average": True}
    write_feature_table(rows, out, yaml.safe_dump(settings, sort_keys=False))
    seconds = time.perf_counter() - t0
    n_feat = len([k for k in rows[0] if k.startswith("dl_")])
    summary = {"out": str(out), "n_images": len(rows), "n_features": n_feat, "backbone": backbone,
               "seconds": round(seconds, 2), "n_skipped": len(errors), "errors": errors}
    lines = [f"wrote {n_feat} deep features ({backbone}, ImageNet weights) of {len(rows)} distinct images to {out}"]
    lines += [f"skipped: {e['error']}" for e in errors]
    lines.append(f"use: liverfib radiomics train ... --split FOLDS.csv --fuse {out}")
    return summary, "\n".join(lines)
