"""One scan, one liver: the shipped MR/CT segmenter gives the same mask from a CT's DICOM series as
from its NIfTI (../shared/data/mr-ct-liver amos_ct_0013, whose slices are stored in the reverse z
order of the NIfTI and whose columns point anterior). Masks are compared in world coordinates:
each is resampled (nearest neighbour, nibabel, from the written file's own affine) onto the grid of
the reference mask, so the comparison does not depend on liverfib's reader."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from liverfib.mri import segmentation as seg_mod

# ../shared/data beside the repository; LIVERFIB_SHARED_DATA overrides it (e.g. from a git worktree)
DATA = Path(os.environ.get("LIVERFIB_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")) / "mr-ct-liver"
CASE = DATA / "amos_ct_0013"
ASSET = Path(seg_mod.__file__).resolve().parent.parent / "assets" / "mri_seg_default" / "bundle.yaml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CASE.is_dir() or not ASSET.is_file(), reason="needs ../shared/data/mr-ct-liver and the shipped model"),
]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))


def _on_grid(mask_path: Path, reference: nib.Nifti1Image) -> np.ndarray:
    from nibabel.processing import resample_from_to

    return np.asarray(resample_from_to(nib.load(mask_path), reference, order=0).dataobj) > 0


def test_dicom_and_nifti_of_one_ct_give_one_liver(tmp_path: Path) -> None:
    import torch

    from liverfib.pipeline import run_segment

    torch.set_num_threads(2)
    # the study-level folder: the series lies in dicom/image/
    from_dicom, _ = run_segment([CASE / "dicom"], modality="ct", out=tmp_path / "dicom_mask.nii.gz", dicom_seg=True)
    from_nifti, _ = run_segment([CASE / "image.nii.gz"], modality="ct", out=tmp_path / "nifti_mask.nii.gz")
    reference = nib.load(CASE / "liver_mask.nii.gz")
    truth = np.asarray(reference.dataobj) > 0
    dicom_mask = _on_grid(tmp_path / "dicom_mask.nii.gz", reference)
    nifti_mask = _on_grid(tmp_path / "nifti_mask.nii.gz", reference)
    agreement = _dice(dicom_mask, nifti_mask)
    dice_dicom, dice_nifti = _dice(dicom_mask, truth), _dice(nifti_mask, truth)
    print(f"\namos_ct_0013: Dice DICOM vs NIfTI mask {agreement:.4f}; vs reference: DICOM {dice_dicom:.4f}, "
          f"NIfTI {dice_nifti:.4f}; volume {from_dicom['volume_ml']} / {from_nifti['volume_ml']} ml")
    assert agreement >= 0.99
    assert dice_dicom == pytest.approx(dice_nifti, abs=0.01)
    assert dice_dicom > 0.75  # the shipped model on this case: 0.854 (a flipped input gave 0.67)
    assert from_dicom["volume_ml"] == pytest.approx(from_nifti["volume_ml"], rel=0.01)
    r = from_dicom["results"][0]
    assert Path(r["qc_png"]).is_file() and Path(r["dicom_seg"]).is_file()
