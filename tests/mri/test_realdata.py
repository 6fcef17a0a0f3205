"""Real volumes from ../shared/data/mr-ct-liver (marked slow): masks land on the input grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from liverfib.mri import segmentation as seg_mod

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mr-ct-liver"
ASSET = Path(seg_mod.__file__).resolve().parent.parent / "assets" / "mri_seg_default"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.is_dir() or not ASSET.is_dir(), reason="needs ../shared/data/mr-ct-liver and the shipped model"),
]


@pytest.mark.parametrize("case", ["totalseg_mr", "amos_ct_0013"])
def test_nifti_mask_has_input_grid(tmp_path: Path, case: str) -> None:
    from liverfib.pipeline.segment_volume import run_segment_volume

    src = DATA / case / "image.nii.gz"
    summary, _ = run_segment_volume([src], out=tmp_path / "mask.nii.gz")
    ref, out = nib.load(src), nib.load(tmp_path / "mask.nii.gz")
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.affine, ref.affine, atol=1e-4)
    assert summary["volume_ml"] > 0


def test_dicom_series_gives_volume_mask(tmp_path: Path) -> None:
    from liverfib.io.nifti import read_nifti
    from liverfib.pipeline.segment_volume import run_segment_volume

    summary, _ = run_segment_volume([DATA / "dcmqi_ct" / "dicom" / "image"], out=tmp_path / "m.nii.gz")
    mask = read_nifti(tmp_path / "m.nii.gz")
    truth = read_nifti(DATA / "dcmqi_ct" / "liver_mask.nii.gz")
    assert mask.shape == truth.shape
    np.testing.assert_allclose(mask.meta["affine"], truth.meta["affine"], atol=1e-2)
    assert summary["results"][0]["kind"] == "volume"
