"""One scan, one liver: the shipped MR/CT segmenter on the DICOM series and on the NIfTI of the same
CT (../shared/data/mr-ct-liver, every case that keeps its DICOM). Masks are compared in world
coordinates: each written mask is resampled (nearest neighbour, nibabel, by its own affine) onto the
reference mask's grid. Writes benchmarks/results/dicom_vs_nifti_masks.json.

    PYTHONPATH=src python benchmarks/dicom_vs_nifti.py [--data ../shared/data/mr-ct-liver]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from nibabel.processing import resample_from_to

from liverfib.evaluation.results import device_string, metric, write_result
from liverfib.pipeline import run_segment


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mr-ct-liver")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [r for r in csv.DictReader((args.data / "manifest.csv").open()) if r["dicom_series"]]
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in rows:
            case = r["case_id"]
            ref = nib.load(args.data / r["mask"])
            truth = np.asarray(ref.dataobj) > 0
            masks, seconds = {}, {}
            for kind, src in (("dicom", args.data / r["dicom_series"]), ("nifti", args.data / r["image"])):
                t0 = time.time()
                out = Path(tmp) / f"{case}_{kind}.nii.gz"
                run_segment([src], modality="ct", out=out)
                seconds[kind] = round(time.time() - t0, 1)
                masks[kind] = np.asarray(resample_from_to(nib.load(out), ref, order=0).dataobj) > 0
            cases[case] = {
                "dice_dicom_vs_nifti": round(_dice(masks["dicom"], masks["nifti"]), 4),
                "dice_dicom_vs_reference": round(_dice(masks["dicom"], truth), 4),
                "dice_nifti_vs_reference": round(_dice(masks["nifti"], truth), 4),
                "reference": r["mask_origin"],
                "seconds": seconds,
            }
            print(case, cases[case], flush=True)
    agreement = [c["dice_dicom_vs_nifti"] for c in cases.values()]
    write_result(
        "dicom_vs_nifti_masks",
        title="Shipped MR/CT liver segmenter: Dice between the masks from a CT's DICOM series and from its NIfTI",
        metrics={"min_dice_dicom_vs_nifti": metric(min(agreement))},
        n=len(cases),
        unit="CT scan (DICOM series + NIfTI of the same scan)",
        command="PYTHONPATH=src python benchmarks/dicom_vs_nifti.py",
        synthetic=False,
        test_scored_count=0,
        device=device_string(args.threads),
        extra={"cases": cases, "ci_method": "none (3 scans; per-case values in cases)",
               "note": "before the reader reoriented DICOM to the NIfTI axes, amos_ct_0013 gave 0.67 vs 0.85"},
    )


if __name__ == "__main__":
    main()
