"""MRE agreement: two measurement CSVs (e.g. automatic vs manual or truth) -> Pearson r, ICC,
Bland-Altman, stage kappa and, when both list masks, Dice/IoU; ``liverfib agreement``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import InputError

__all__ = ["run_agreement"]


def _read_measurements(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        raise InputError(f"{path}: CSV not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if "exam" not in cols or "mean_stiffness_kpa" not in cols:
            raise InputError(f"{path}: expected columns exam,mean_stiffness_kpa[,stage][,mask], found "
                             f"{','.join(cols) or 'no header'}")
        rows = {}
        for r in reader:
            if r["exam"] in rows:
                raise InputError(f"{path}: exam '{r['exam']}' appears twice")
            rows[r["exam"]] = r
    return rows


def _float(value: str, path: Path, exam: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: exam '{exam}' has mean_stiffness_kpa '{value}', expected a number") from None
    if not np.isfinite(v):
        raise InputError(f"{path}: exam '{exam}' has a non-finite stiffness")
    return v


def _mask_scores(common: list[str], stages_b: list[str], ra: dict[str, dict[str, str]], rb: dict[str, dict[str, str]],
                 a_csv: Path, b_csv: Path, n_boot: int, seed: int) -> dict[str, Any]:
    """Dice/IoU of the A and B masks per exam (the ``mask`` columns), summarised by stage."""
    from liverfib.evaluation.segmentation import overlap_scores
    from liverfib.mre.agreement import mask_agreement

    rows = []
    for e, st in zip(common, stages_b, strict=True):
        ma = _load_any_mask(Path(a_csv).parent / ra[e]["mask"])
        mb = _load_any_mask(Path(b_csv).parent / rb[e]["mask"])
        if ma.shape != mb.shape:
            raise InputError(f"exam '{e}': masks differ in shape {ma.shape} vs {mb.shape}")
        rows.append({"exam": e, "stage": st, **overlap_scores(ma, mb)})
    return mask_agreement(rows, n_boot=n_boot, seed=seed)


def _lines(summary: dict[str, Any], a_csv: Path, b_csv: Path) -> list[str]:
    p, ic, ba, st = summary["pearson"], summary["icc"], summary["bland_altman"]["kpa"], summary["stage"]
    lines = [
        f"Agreement of {a_csv} (A) with {b_csv} (B) over {summary['n']} exams",
        f"Pearson r       {p['r']:.4f}  (95% CI {p['ci_low']:.4f}-{p['ci_high']:.4f})",
        f"ICC(2,1)        {ic['icc2_1']['icc']:.4f}  (95% CI {ic['icc2_1']['ci_low']:.4f}-{ic['icc2_1']['ci_high']:.4f})",
        f"ICC(3,1)        {ic['icc3_1']['icc']:.4f}  (95% CI {ic['icc3_1']['ci_low']:.4f}-{ic['icc3_1']['ci_high']:.4f})",
        f"Bland-Altman    bias {ba['bias']:+.3f} kPa (95% CI {ba['bias_ci_low']:+.3f} to {ba['bias_ci_high']:+.3f}), "
        f"LoA {ba['loa_low']:+.3f} to {ba['loa_high']:+.3f} kPa",
        f"stage kappa     {_fmt(st['kappa'])}, quadratic {_fmt(st['kappa_quadratic'])}, "
        f"agreement {st['percent_agreement']:.1f} %",
    ]
    if "masks" in summary:
        m = summary["masks"]["overall"]
        lines.append(f"mask Dice       {m['dice']:.4f} (95% CI {m['dice_ci_low']:.4f}-{m['dice_ci_high']:.4f}), "
                     f"IoU {m['iou']:.4f}")
    return lines


def run_agreement(
    a_csv: Path,
    b_csv: Path,
    *,
    out_dir: Path | None = None,
    cutoffs: Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[dict[str, Any], str]:
    """Agreement of A (e.g. automatic) with B (e.g. manual or truth) over the exams both list."""
    from liverfib.evaluation.agreement import bland_altman, icc, pearson_ci
    from liverfib.mre.agreement import stage_agreement
    from liverfib.mre.stages import load_cutoffs, stage_from_kpa

    table = load_cutoffs(cutoffs)
    ra, rb = _read_measurements(Path(a_csv)), _read_measurements(Path(b_csv))
    common = sorted(set(ra) & set(rb))
    if len(common) < 3:
        raise InputError(f"{a_csv} and {b_csv} share {len(common)} exam ids (need >= 3); "
                         f"e.g. A has {sorted(ra)[:3]}, B has {sorted(rb)[:3]}")
    a = np.array([_float(ra[e]["mean_stiffness_kpa"], Path(a_csv), e) for e in common])
    b = np.array([_float(rb[e]["mean_stiffness_kpa"], Path(b_csv), e) for e in common])

    def stages(rows: dict[str, dict[str, str]], vals: np.ndarray) -> list[str]:
        return [rows[e].get("stage") or stage_from_kpa(v, table) for e, v in zip(common, vals, strict=True)]

    sa, sb = stages(ra, a), stages(rb, b)
    summary: dict[str, Any] = {
        "n": len(common),
        "only_in_a": sorted(set(ra) - set(rb)),
        "only_in_b": sorted(set(rb) - set(ra)),
        "pearson": pearson_ci(a, b),
        "icc": {f"icc{f[0]}_1": icc(np.column_stack([a, b]), form=f) for f in ("3,1", "2,1")},
        "bland_altman": bland_altman(a, b),
        "stage": stage_agreement(sa, sb, n_boot=n_boot, seed=seed),
    }
    if all(ra[e].get("mask") and rb[e].get("mask") for e in common):
        summary["masks"] = _mask_scores(common, sb, ra, rb, Path(a_csv), Path(b_csv), n_boot, seed)
    if out_dir is not None:
        from liverfib.io.jsonio import write_json
        from liverfib.mre.plots import write_agreement_plot

        out_dir = Path(out_dir)
        summary["plot"] = str(write_agreement_plot(out_dir / "bland_altman.png", a, b, summary["bland_altman"]))
        write_json(summary, out_dir / "agreement.json")
    return summary, "\n".join(_lines(summary, a_csv, b_csv))


def _fmt(k: dict[str, Any]) -> str:
    if k["value"] is None:
        return "undefined"
    ci = f" (95% CI {k['ci_low']:.3f}-{k['ci_high']:.3f})" if k["ci_low"] is not None else ""
    return f"{k['value']:.3f}{ci}"


def _load_any_mask(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: mask file not found")
    if path.suffix == ".npy":
        return np.load(path) > 0
    from liverfib.io.nifti import read_nifti

    return read_nifti(path).array > 0
