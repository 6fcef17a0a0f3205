"""Explain workflow: CAM heatmaps/overlays with statistics and faithfulness; CAM pseudo-masks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.pipeline._common import collect_files, read_2d_images, unique_stems

__all__ = ["run_explain", "run_pseudo_masks"]


def _liver_masks(arrays: list[np.ndarray], liver_model: str | None) -> list[np.ndarray | None]:
    if liver_model is None:
        return [None] * len(arrays)
    from liverfib.inference.segmenter import load_segmenter

    return list(load_segmenter(liver_model).predict_arrays(arrays))


def run_explain(
    paths: Sequence[Path],
    *,
    out_dir: Path,
    model: str = "default",
    method: str = "gradcam",
    target: str = "predicted",
    layers: str = "all",
    liver_model: str | None = "default",
    faithfulness: bool = False,
) -> tuple[dict[str, Any], str]:
    """Per image: ``<stem>_cam.png`` (heatmap), ``<stem>_overlay.png`` (input | overlay + colour bar),
    CAM statistics (mass inside the fan / liver), optionally ROAD faithfulness vs a random map;
    ``explain.json`` sums it up."""
    from liverfib.explain.cam import compute_cams
    from liverfib.inference.predictor import check_bmode, load_predictor
    from liverfib.io.jsonio import write_json

    good, images, errors = read_2d_images(collect_files(paths), check=check_bmode, what="explained")
    arrays = [im.array for im in images]
    predictor = load_predictor(model)
    cams = compute_cams(predictor, arrays, method=method, target=target, layers=layers)
    livers = _liver_masks(arrays, liver_model)
    road = None
    if faithfulness:
        from liverfib.explain.faithfulness import road_scores

        road = road_scores(predictor, arrays, cams)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (f, a, c, liver, stem) in enumerate(zip(good, arrays, cams, livers, unique_stems(good), strict=True)):
        rec = _write_cam_files(f, a, c, liver, out_dir / stem, method)
        if road is not None:
            rec["road"] = {k: round(float(v[i]), 4) for k, v in road.items()}
        records.append(rec)
    summary: dict[str, Any] = {
        "model": predictor.describe()["name"],
        "method": method,
        "layers": layers,
        "n": len(records),
        "images": records,
        "errors": errors,
    }
    fan_share = [r["cam"]["mass_in_fan"] for r in records if r["cam"]["mass_in_fan"] is not None]
    liver_share = [r["cam"]["mass_in_liver"] for r in records if r["cam"]["mass_in_liver"] is not None]
    summary["mean_mass_in_fan"] = round(float(np.mean(fan_share)), 4) if fan_share else None
    summary["mean_mass_in_liver"] = round(float(np.mean(liver_share)), 4) if liver_share else None
    if road is not None:
        summary["road"] = {k: round(float(np.mean(v)), 4) for k, v in road.items()}
    write_json(summary, out_dir / "explain.json")
    return summary, _format_explain(records, errors, out_dir)


def _write_cam_files(path: Path, array: np.ndarray, cam: Any, liver: np.ndarray | None, prefix: Path, method: str) -> dict[str, Any]:
    """``<prefix>_cam.png`` and ``<prefix>_overlay.png`` of one image; returns its record with CAM statistics."""
    from liverfib.explain.cam import cam_statistics
    from liverfib.preprocess.fan import detect_fan, to_uint8
    from liverfib.report.overlay import write_cam_figure, write_heatmap_png

    fan = detect_fan(to_uint8(array)).mask
    heatmap_png, overlay_png = Path(f"{prefix}_cam.png"), Path(f"{prefix}_overlay.png")
    write_heatmap_png(cam.heatmap, heatmap_png)
    title = f"{method}: {cam.target} (p={cam.probability:.2f})"
    write_cam_figure(array, cam.heatmap, overlay_png, title)
    return {
        "path": str(path),
        "target": cam.target,
        "probability": round(cam.probability, 4),
        "probabilities": {k: round(v, 4) for k, v in cam.probabilities.items()},
        "cam": cam_statistics(cam.heatmap, fan_mask=fan, liver_mask=liver),
        "heatmap_png": str(heatmap_png),
        "overlay_png": str(overlay_png),
    }


def _format_explain(records: list[dict[str, Any]], errors: list[dict[str, str]], out_dir: Path) -> str:
    lines = [f"{'file':32s} {'target':6s} {'p':>5s} {'in fan':>7s} {'in liver':>8s}"]
    for r in records:
        liv = r["cam"]["mass_in_liver"]
        lines.append(
            f"{Path(r['path']).name[:32]:32s} {r['target']:6s} {r['probability']:5.2f} "
            f"{r['cam']['mass_in_fan'] or 0:7.2f} {'-' if liv is None else f'{liv:.2f}':>8s}"
        )
    lines += [f"skipped: {e['error']}" for e in errors]
    lines.append(f"wrote {len(records)} heatmaps and overlays to {out_dir}")
    return "\n".join(lines)


def run_pseudo_masks(
    data_dir: Path,
    *,
    out_dir: Path,
    model: str = "default",
    method: str = "gradcam",
    threshold: str = "0.5",
    layers: str = "all",
) -> tuple[dict[str, Any], str]:
    """CAM pseudo-masks for every distinct image of a labelled folder (copies once).

    Writes ``masks/<name>.png`` (0/255) and ``manifest.csv`` (``file,mask,subject,label,source``
    with ``subject`` = the audit's near-duplicate cluster, so training on the masks can split by it).
    """
    from liverfib.dataset.audit import audit_folder
    from liverfib.errors import InputError
    from liverfib.explain.cam import compute_cams
    from liverfib.explain.pseudo_masks import cam_to_mask, parse_threshold
    from liverfib.inference.predictor import load_predictor
    from liverfib.io.jsonio import write_json
    from liverfib.io.masks import write_mask_png
    from liverfib.pipeline._common import progress_bar, write_rows
    from liverfib.preprocess.fan import detect_fan, to_uint8

    parse_threshold(threshold)  # fail before the long part
    distinct: dict[str, dict[str, Any]] = {}
    for row in audit_folder(data_dir).files:
        distinct.setdefault(row["sha256"], row)  # copies once
    rows = list(distinct.values())
    predictor = load_predictor(model)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    update = progress_bar("pseudo-masks")
    manifest, fractions, errors = [], [], []
    chunk = 32
    for start in range(0, len(rows), chunk):
        part, arrays = _bmode_rows(data_dir, rows[start : start + chunk], errors)
        cams = compute_cams(predictor, arrays, method=method, layers=layers) if arrays else []
        for r, a, c in zip(part, arrays, cams, strict=True):
            mask = cam_to_mask(c.heatmap, detect_fan(to_uint8(a)).mask, threshold)
            name = r["path"].replace("/", "_").rsplit(".", 1)[0] + ".png"
            write_mask_png(mask, out_dir / "masks" / name)
            fractions.append(float(mask.mean()))
            manifest.append({"file": str((data_dir / r["path"]).resolve()), "mask": f"masks/{name}",
                             "subject": r["cluster"], "label": r["label"], "source": r["source"]})
        update(min(start + chunk, len(rows)), len(rows))
    if not manifest:
        raise InputError("no image could be masked: " + "; ".join(e["error"] for e in errors[:3]))
    write_rows(manifest, out_dir / "manifest.csv", ["file", "mask", "subject", "label", "source"])
    summary = {"n": len(manifest), "method": method, "threshold": threshold, "model": predictor.describe()["name"],
               "mean_mask_fraction": round(float(np.mean(fractions)), 4), "out": str(out_dir),
               "n_skipped": len(errors), "errors": errors}
    write_json(summary, out_dir / "pseudo_masks.json")
    return summary, "".join(f"skipped: {e['error']}\n" for e in errors) + (
        f"wrote {len(manifest)} pseudo-masks ({method}, threshold {threshold}; mean foreground "
        f"{summary['mean_mask_fraction']:.1%}) to {out_dir}")


def _bmode_rows(data_dir: Path, rows: list[dict[str, Any]], errors: list[dict[str, str]]) -> tuple[list[Any], list[Any]]:
    """The rows whose image passes ``predict``'s check, with their arrays; the others go to ``errors`` (reason)."""
    from liverfib.errors import LiverfibError
    from liverfib.inference.predictor import check_bmode
    from liverfib.io import read_image

    kept, arrays = [], []
    for r in rows:
        try:
            image = read_image(data_dir / r["path"])
            check_bmode(image)  # a CT/MR DICOM, a volume or a blank image is refused
        except LiverfibError as exc:
            errors.append({"path": str(data_dir / r["path"]), "error": str(exc)})
            continue
        kept.append(r)
        arrays.append(image.array)
    return kept, arrays
