"""Radiomics extraction: pyradiomics features of every image (in a mask or an automatic ROI) into a
Parquet table with its settings, and the per-feature robustness file (ICC over perturbations).

Training, evaluation and deep features: :mod:`.radiomics_train`, :mod:`.radiomics_evaluate`,
:mod:`.deep_features`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._common import progress_bar

__all__ = ["run_radiomics_extract", "write_robustness"]


def expand_inputs(paths: Sequence[Path], what: str) -> list[Path]:
    """Image (or mask) files of ``paths``: folders are listed (a DICOM series folder is one input)."""
    from liverfib.io import list_images

    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not _is_dicom_series(p):
            out.extend(list_images(p))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: {what} not found")
    if not out:
        raise InputError(f"no {what} found in {[str(p) for p in paths]}")
    return out


def _is_dicom_series(folder: Path) -> bool:
    from liverfib.io import sniff_kind

    files = [f for f in sorted(folder.iterdir())[:5] if f.is_file()]
    return bool(files) and all(sniff_kind(f) == "dicom" for f in files)


def distinct_files(paths: list[Path]) -> tuple[list[Path], list[str], list[int]]:
    """First path per byte-identical content, its sha256 and the number of copies."""
    from liverfib.dataset.fingerprint import file_sha256
    from liverfib.io import resolve_file

    first: dict[str, Path] = {}
    copies: dict[str, int] = {}
    for p in paths:
        sha = file_sha256(resolve_file(p))
        first.setdefault(sha, p)
        copies[sha] = copies.get(sha, 0) + 1
    shas = list(first)
    return [first[s] for s in shas], shas, [copies[s] for s in shas]


def _jobs(images: Sequence[Path], masks: Sequence[Path] | None, roi: str | None,
          keep_copies: bool) -> tuple[list[Any], list[str] | None, list[int] | None]:
    """Extraction jobs, and (automatic ROI, distinct images) each image's sha256 and number of copies."""
    from liverfib.radiomics.extract import ExtractionJob

    image_paths = expand_inputs(images, "images")
    shas: list[str] | None = None
    n_copies: list[int] | None = None
    if masks is not None:
        mask_paths = expand_inputs(masks, "masks")
        if len(mask_paths) != len(image_paths):
            raise InputError(
                f"got {len(image_paths)} images but {len(mask_paths)} masks; pass one mask per image "
                "(paired in sorted order)"
            )
        return [ExtractionJob(i, mask_path=m) for i, m in zip(image_paths, mask_paths, strict=True)], None, None
    if not keep_copies:
        image_paths, shas, n_copies = distinct_files(image_paths)
    return [ExtractionJob(i, roi=roi) for i in image_paths], shas, n_copies


def _with_copies(rows: list[dict[str, Any]], jobs: list[Any], errors: list[dict[str, Any]], shas: list[str] | None,
                 n_copies: list[int] | None) -> tuple[list[dict[str, Any]], list[Any]]:
    """Rows with ``sha256``/``n_copies`` after ``path`` (distinct images only), and the jobs that succeeded."""
    if errors and shas is not None and n_copies is not None:
        bad = {e["index"] for e in errors}
        shas = [h for i, h in enumerate(shas) if i not in bad]
        n_copies = [c for i, c in enumerate(n_copies) if i not in bad]
        jobs = [j for i, j in enumerate(jobs) if i not in bad]
    if shas is not None and n_copies is not None:
        rows = [
            {"path": r["path"], "sha256": s, "n_copies": c, **{k: v for k, v in r.items() if k != "path"}}
            for r, s, c in zip(rows, shas, n_copies, strict=True)
        ]
    return rows, jobs


def _report(out: Path, rows: list[dict[str, Any]], errors: list[dict[str, Any]], seconds: float, config: Any,
            roi: str | None, icc_file: Path | None) -> tuple[dict[str, Any], str]:
    n_feat = len(rows[0]) - len(
        [k for k in rows[0] if k in ("path", "sha256", "n_copies", "roi", "roi_pixels")]
    )
    summary = {
        "out": str(out),
        "config": str(Path(out).with_suffix(".yaml")),
        "n_images": len(rows),
        "n_features": n_feat,
        "seconds": round(seconds, 2),
        "images_per_second": round(len(rows) / seconds, 3) if seconds > 0 else None,
        "workers": config.workers,
        "roi": roi if roi is not None else "masks",
        "robustness_file": str(icc_file) if icc_file else None,
        "n_skipped": len(errors),
        "errors": [{"path": e["path"], "error": e["error"]} for e in errors],
    }
    text = (
        f"wrote {out}: {len(rows)} images x {n_feat} features "
        f"({summary['images_per_second']} images/s, {config.workers} process(es)); settings in {summary['config']}"
    )
    text += "".join(f"\nskipped: {e['error']}" for e in errors)
    if errors:
        text += f"\n{len(errors)} file(s) skipped, reasons above (--strict stops at the first)"
    return summary, text


def run_radiomics_extract(
    images: Sequence[Path],
    out: Path,
    *,
    masks: Sequence[Path] | None = None,
    roi: str | None = None,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    keep_copies: bool = False,
    robustness_images: int = 0,
    strict: bool = False,
) -> tuple[dict[str, Any], str]:
    """Extract radiomics features of every image into ``out`` (Parquet) + ``<out>.yaml`` settings.

    With ``robustness_images`` > 0, that many images (evenly spaced) are re-extracted under mask
    erosion/dilation and noise and the per-feature ICC(2,1) goes to ``<out>.robustness.json``,
    which ``run_radiomics_train`` uses to drop unstable features.

    Either ``masks`` (one per image, same order; folders are listed sorted) or ``roi`` (``fan`` or
    ``liver``). With an automatic ROI, byte-identical copies are extracted once (``keep_copies``
    keeps them all).
    """
    import yaml

    from liverfib.radiomics.config import load_config, save_config
    from liverfib.radiomics.extract import ROI_SOURCES, extract_many
    from liverfib.radiomics.table import write_feature_table

    if (masks is None) == (roi is None):
        raise ConfigError(f"pass exactly one of --masks PATHS or --roi {{{','.join(ROI_SOURCES)}}}")
    if roi is not None and roi not in ROI_SOURCES:
        raise ConfigError(f"Unknown --roi '{roi}'. Valid choices: {', '.join(ROI_SOURCES)}")
    if Path(out).suffix != ".parquet":
        raise ConfigError(f"--out must end in .parquet, got {out}")
    config = load_config(config_path, overrides)
    jobs, shas, n_copies = _jobs(images, masks, roi, keep_copies)
    t0 = time.perf_counter()
    errors: list[dict[str, Any]] = []
    rows = extract_many(jobs, config, progress=progress_bar("radiomics", "img"), errors=None if strict else errors)
    seconds = time.perf_counter() - t0
    if not rows:
        raise InputError(f"no image could be extracted ({len(errors)} refused): "
                         + "; ".join(e["error"] for e in errors[:3]))
    rows, jobs = _with_copies(rows, jobs, errors, shas, n_copies)
    config_yaml = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    write_feature_table(rows, out, config_yaml)
    save_config(config, Path(out).with_suffix(".yaml"))
    icc_file = None
    if robustness_images > 0:
        icc_file = write_robustness(
            jobs, config, robustness_images, Path(out).with_suffix(".robustness.json")
        )
    return _report(out, rows, errors, seconds, config, roi, icc_file)


def write_robustness(
    jobs: Sequence[Any], config: Any, n_images: int, out_json: Path, *, seed: int = 0
) -> Path:
    """ICC(2,1) per feature over ``n_images`` evenly spaced jobs -> ``out_json`` (atomic)."""
    import numpy as np

    from liverfib.io.jsonio import write_json
    from liverfib.radiomics.extract import _load_job
    from liverfib.radiomics.robustness import PERTURBATIONS, feature_robustness

    if n_images < 2:
        raise ConfigError(f"--robustness needs at least 2 images, got {n_images}")
    pick = np.unique(np.linspace(0, len(jobs) - 1, min(n_images, len(jobs))).round().astype(int))
    pairs = [_load_job(jobs[i]) for i in pick]
    icc = feature_robustness(pairs, config, seed=seed)
    write_json(
        {
            "method": "ICC(2,1) over perturbations",
            "perturbations": list(PERTURBATIONS),
            "radius_px": 2,
            "noise_fraction": 0.1,
            "images": [str(jobs[i].image_path) for i in pick],
            "icc": icc,
        },
        out_json,
    )
    return out_json
