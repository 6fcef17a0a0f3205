"""The CLI twins of the clinical tools that run once: de-identify, report on one image (the servers'
twins are in :mod:`liverfib.clinical.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline.clinical.config import ClinicalConfig, ModelCache
from liverfib.pipeline.clinical.ultrasound import analyse_file

__all__ = ["run_deidentify", "run_report"]


def run_deidentify(
    src: Path, out_dir: Path, *, salt: str | None = None, mask_burned_in: bool = True, strict: bool = False
) -> tuple[dict[str, Any], str]:
    """De-identify a DICOM file or folder into ``out_dir`` (Basic Profile; see pipeline.clinical.deidentify).

    Files that are not DICOM are skipped and listed; none de-identified (or any skipped with
    ``strict``) raises :class:`InputError`."""
    import os

    from liverfib.io.outputs import check_output_dir
    from liverfib.pipeline.clinical.deidentify import deidentify_path

    if not Path(src).exists():
        raise InputError(f"{src}: file or folder not found")
    check_output_dir(out_dir, option="OUT")

    salt = salt or os.environ.get("LIVERFIB_DEID_SALT")
    if not salt:
        raise ConfigError(
            "no salt: pass --salt SECRET or set LIVERFIB_DEID_SALT (the same secret keeps UIDs of one "
            "study consistent across runs; keep it private)"
        )
    rows = deidentify_path(src, out_dir, salt=salt, mask_burned_in=mask_burned_in)
    ok = [r for r in rows if r["status"] == "ok"]
    refused = [f"{r['input']}: {r['reason']}" for r in rows if r["status"] != "ok"]
    if not ok:
        raise InputError(f"de-identified none of {len(rows)} file(s): " + "; ".join(refused[:3]))
    if strict and refused:
        raise InputError(f"--strict: {len(refused)} file(s) not de-identified, first: {refused[0]}")
    summary = {"out": str(out_dir), "n_ok": len(ok), "n_skipped_or_failed": len(rows) - len(ok), "files": rows}
    lines = [f"de-identified {len(ok)} of {len(rows)} files into {out_dir}"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"  {r['status']}: {r['input']}: {r['reason']}")
        elif r.get("pixels_masked_fraction") is not None:
            lines.append(f"  {Path(r['output']).name}: {r['pixels_masked_fraction']:.0%} of pixels outside the fan blanked")
    return summary, "\n".join(lines)


def run_report(
    image_path: Path, out_dir: Path, *, model: str = "default", cam: bool = True, deidentified: bool = False
) -> tuple[dict[str, Any], str]:
    """Analyse one image (DICOM or raster) and write DICOM SEG/SR/SC and an HTML/PDF report."""
    if not image_path.is_file():
        raise InputError(f"{image_path}: file not found; pass one ultrasound image (DICOM, PNG or JPEG)")
    cfg = ClinicalConfig(model=model, with_cam=cam, deidentified_report=deidentified)
    result = analyse_file(image_path, out_dir, models=ModelCache(cfg))
    probs = " ".join(f"{k}={v:.2f}" for k, v in result["probabilities"].items())
    text = "\n".join(
        [
            f"{image_path.name}: stage {result['stage']} ({probs})  (research use only)",
            *(f"note: {n}" for n in result["notes"]),
            f"wrote {', '.join(result['files'])} and result.json into {out_dir}",
        ]
    )
    return result, text
