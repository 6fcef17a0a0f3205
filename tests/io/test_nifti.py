"""read_nifti / write_nifti: (z, y, x) LPS convention, round trip and bad inputs."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from liverfib.errors import ConfigError, InputError
from liverfib.image import Image
from liverfib.io import read_image, read_nifti, write_nifti

SHAPE_XYZ = (6, 5, 4)


def _ras(spacing: tuple[float, float, float] = (2.0, 3.0, 4.0)) -> np.ndarray:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [10.0, 20.0, 30.0]
    return affine


def _permuted_oblique() -> np.ndarray:
    """Voxel axes stored as (A, I, L) with a small rotation: a worst case for reorientation."""
    theta = np.deg2rad(10)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    axes = np.array([[0, 0, -1.5], [2.0, 0, 0], [0, -0.5, 0]])  # columns: voxel i, j, k in RAS
    affine = np.eye(4)
    affine[:3, :3] = rot @ axes
    affine[:3, 3] = [-5.0, 7.0, 1.0]
    return affine


AFFINES = {
    "RAS": _ras(),
    "LPS": np.diag([-2.0, -3.0, 4.0, 1.0]),
    "LAI": np.diag([-1.0, 1.0, -2.5, 1.0]),
    "permuted-oblique": _permuted_oblique(),
}


@pytest.mark.parametrize("name", AFFINES)
def test_every_voxel_keeps_its_world_position(name: str, nifti_factory: Callable[..., Path]) -> None:
    affine = AFFINES[name]
    data = np.arange(np.prod(SHAPE_XYZ), dtype=np.int32).reshape(SHAPE_XYZ)  # value = voxel id
    image = read_nifti(nifti_factory(f"{name}.nii.gz", data, affine))
    new_affine = image.meta["affine"]
    assert image.meta["axcodes"] == ("L", "P", "S")
    for k, j, i in np.ndindex(*image.shape):
        old_index = np.unravel_index(int(image.array[k, j, i]), SHAPE_XYZ)
        np.testing.assert_allclose(new_affine @ [i, j, k, 1], affine @ [*old_index, 1], atol=1e-4)
    zooms = np.linalg.norm(new_affine[:3, :3], axis=0)  # (x, y, z)
    assert image.spacing_mm == pytest.approx(tuple(zooms[::-1]), rel=1e-5)


def test_ras_volume_is_flipped_and_transposed(nifti_factory: Callable[..., Path]) -> None:
    data = np.random.default_rng(0).random(SHAPE_XYZ).astype(np.float32)
    image = read_nifti(nifti_factory("ras.nii", data, _ras()))
    assert image.shape == (4, 5, 6)  # (z, y, x)
    np.testing.assert_array_equal(image.array, data[::-1, ::-1, :].transpose(2, 1, 0))
    assert image.spacing_mm == pytest.approx((4.0, 3.0, 2.0))
    assert image.meta["original_axcodes"] == ("R", "A", "S")
    np.testing.assert_array_equal(image.meta["original_affine"], _ras())
    assert image.modality == "OT"
    assert image.array.dtype == np.float32


def test_lps_volume_is_only_transposed(nifti_factory: Callable[..., Path]) -> None:
    data = np.arange(np.prod(SHAPE_XYZ), dtype=np.uint16).reshape(SHAPE_XYZ)
    image = read_nifti(nifti_factory("lps.nii.gz", data, AFFINES["LPS"]))
    np.testing.assert_array_equal(image.array, data.transpose(2, 1, 0))
    assert image.array.dtype == np.uint16
    np.testing.assert_array_equal(image.meta["affine"], AFFINES["LPS"])


def test_2d_file_gives_hw(nifti_factory: Callable[..., Path]) -> None:
    data = np.arange(7 * 9, dtype=np.int16).reshape(7, 9)  # (x, y)
    image = read_nifti(nifti_factory("slice.nii", data, np.diag([0.5, 0.7, 1.0, 1.0])))
    assert image.shape == (9, 7)  # (y, x)
    np.testing.assert_array_equal(image.array, data[::-1, ::-1].T)
    assert image.spacing_mm == pytest.approx((0.7, 0.5))


def test_singleton_fourth_dim_is_squeezed(nifti_factory: Callable[..., Path]) -> None:
    data = np.ones((*SHAPE_XYZ, 1), np.float32)
    image = read_nifti(nifti_factory("t1.nii.gz", data, _ras()))
    assert image.shape == (4, 5, 6)
    assert image.meta["original_shape"] == (*SHAPE_XYZ, 1)


def test_real_4d_is_an_error(nifti_factory: Callable[..., Path]) -> None:
    path = nifti_factory("fmri.nii.gz", np.zeros((*SHAPE_XYZ, 3), np.float32))
    expected = r"fmri\.nii\.gz: 4D NIfTI of shape \(6, 5, 4, 3\) \(e\.g\. a time series\)"
    with pytest.raises(InputError, match=expected):
        read_nifti(path)


def test_modality_argument(nifti_factory: Callable[..., Path]) -> None:
    path = nifti_factory("mr.nii.gz", np.zeros(SHAPE_XYZ, np.float32))
    assert read_nifti(path, modality="MR").modality == "MR"
    expected = r"Unknown modality 'MRI'\. Valid choices: CT, MR, OT, US\. Did you mean 'MR'"
    with pytest.raises(ConfigError, match=expected):
        read_nifti(path, modality="MRI")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_is_an_error(bad: float, nifti_factory: Callable[..., Path]) -> None:
    data = np.zeros(SHAPE_XYZ, np.float32)
    data[1, 2, 3] = bad
    data[0, 0, 0] = bad
    path = nifti_factory("bad.nii.gz", data)
    with pytest.raises(InputError, match=r"bad\.nii\.gz: 2 of 120 voxels are NaN or infinite"):
        read_nifti(path)


def test_read_image_dispatches_nifti(nifti_factory: Callable[..., Path]) -> None:
    image = read_image(nifti_factory("vol.nii.gz", np.zeros(SHAPE_XYZ, np.uint8)))
    assert image.meta["format"] == "NIfTI-1"
    assert image.shape == (4, 5, 6)


def test_read_by_content_not_extension(nifti_factory: Callable[..., Path], tmp_path: Path) -> None:
    src = nifti_factory("vol.nii.gz", np.ones(SHAPE_XYZ, np.uint8))
    odd = tmp_path / "volume.gz"  # nibabel.load would refuse this name
    odd.write_bytes(src.read_bytes())
    assert read_image(odd).shape == (4, 5, 6)


def test_nifti2(tmp_path: Path) -> None:
    import nibabel as nib

    path = tmp_path / "v2.nii"
    nib.save(nib.Nifti2Image(np.ones(SHAPE_XYZ, np.float32), _ras()), path)
    image = read_nifti(path)
    assert image.meta["format"] == "NIfTI-2"
    assert image.shape == (4, 5, 6)


# --------------------------------------------------------------------------------------------------
# Corrupt input
# --------------------------------------------------------------------------------------------------


def test_truncated_gz(nifti_factory: Callable[..., Path]) -> None:
    data = np.random.default_rng(1).random((20, 20, 20)).astype(np.float32)  # incompressible
    path = nifti_factory("cut.nii.gz", data)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cut\.nii\.gz: corrupt or truncated NIfTI \(") as err:
        read_nifti(path)
    assert "\n" not in str(err.value)


def test_truncated_uncompressed(nifti_factory: Callable[..., Path]) -> None:
    path = nifti_factory("cut.nii", np.ones((20, 20, 20), np.float32))
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(InputError, match=r"cut\.nii: corrupt or truncated NIfTI \("):
        read_nifti(path)


def test_truncated_header(nifti_factory: Callable[..., Path]) -> None:
    path = nifti_factory("short.nii", np.ones(SHAPE_XYZ, np.float32))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"short\.nii: truncated NIfTI header \(100 of 348 bytes\)"):
        read_nifti(path)


def test_corrupt_gz_stream(tmp_path: Path) -> None:
    path = tmp_path / "garbage.nii.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match=r"garbage\.nii\.gz: corrupt or truncated NIfTI \("):
        read_nifti(path)
    with pytest.raises(InputError, match=r"garbage\.nii\.gz: corrupt or truncated NIfTI"):
        read_image(path)


def test_gz_of_something_else(tmp_path: Path) -> None:
    path = tmp_path / "notes.nii.gz"
    path.write_bytes(gzip.compress(b"just some text, not a header" * 20))
    with pytest.raises(InputError, match=r"notes\.nii\.gz: not a NIfTI file \(header size field is"):
        read_nifti(path)


def test_zero_byte_nifti(tmp_path: Path) -> None:
    path = tmp_path / "empty.nii"
    path.touch()
    with pytest.raises(InputError, match=r"empty\.nii: empty file \(0 bytes\)"):
        read_nifti(path)


# --------------------------------------------------------------------------------------------------
# write_nifti round trip
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
@pytest.mark.parametrize("name", ["RAS", "permuted-oblique"])
def test_round_trip(
    name: str, dtype: type, suffix: str, nifti_factory: Callable[..., Path], tmp_path: Path
) -> None:
    data = (np.arange(np.prod(SHAPE_XYZ)) % 200).astype(dtype).reshape(SHAPE_XYZ)
    first = read_nifti(nifti_factory("src.nii.gz", data, AFFINES[name]))
    again = read_nifti(write_nifti(first, tmp_path / f"out{suffix}"))
    np.testing.assert_array_equal(again.array, first.array)
    assert again.array.dtype == first.array.dtype
    assert again.spacing_mm == pytest.approx(first.spacing_mm, rel=1e-6)
    np.testing.assert_allclose(again.meta["affine"], first.meta["affine"], atol=1e-5)


def test_round_trip_2d(nifti_factory: Callable[..., Path], tmp_path: Path) -> None:
    first = read_nifti(nifti_factory("slice.nii", np.arange(63, dtype=np.int16).reshape(7, 9)))
    again = read_nifti(write_nifti(first, tmp_path / "slice_out.nii"))
    np.testing.assert_array_equal(again.array, first.array)
    assert again.spacing_mm == pytest.approx(first.spacing_mm)


def test_write_image_without_affine(tmp_path: Path) -> None:
    array = np.random.default_rng(2).integers(0, 1000, (3, 4, 5)).astype(np.uint16)  # (z, y, x)
    image = Image(array, spacing_mm=(3.0, 1.0, 0.5), modality="MR")
    back = read_nifti(write_nifti(image, tmp_path / "plain.nii.gz"))
    np.testing.assert_array_equal(back.array, array)
    assert back.spacing_mm == pytest.approx((3.0, 1.0, 0.5))
    assert back.meta["original_axcodes"] == ("L", "P", "S")


def test_write_uses_new_spacing_over_stale_affine(nifti_factory: Callable[..., Path], tmp_path: Path) -> None:
    first = read_nifti(nifti_factory("src.nii.gz", np.zeros(SHAPE_XYZ, np.float32), _ras()))
    changed = first.with_array(first.array, spacing_mm=(1.0, 1.5, 1.0))
    back = read_nifti(write_nifti(changed, tmp_path / "resampled.nii.gz"))
    assert back.spacing_mm == pytest.approx((1.0, 1.5, 1.0))
    np.testing.assert_allclose(back.meta["affine"][:3, 3], first.meta["affine"][:3, 3], atol=1e-5)


def test_write_bad_suffix(tmp_path: Path) -> None:
    image = Image(np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"out\.png: expected a path ending in \.nii or \.nii\.gz"):
        write_nifti(image, tmp_path / "out.png")
