"""Radiomics extraction: first-order features against numpy, shape against geometry, Parquet round
trip, and failures that name the feature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from liverfib.errors import ConfigError, InputError
from liverfib.image import Image
from liverfib.radiomics import RadiomicsConfig, extract_features, read_feature_table, write_feature_table

BIN_WIDTH = 10.0


@pytest.fixture(scope="module")
def hand_made() -> tuple[Image, np.ndarray]:
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 120, size=(24, 30)).astype(np.float32)
    mask = np.zeros(arr.shape, bool)
    mask[3:20, 4:27] = True
    mask[10:14, 8:12] = False  # a hole: only ROI pixels may count
    return Image(arr, spacing_mm=(2.0, 0.5)), mask


def test_firstorder_matches_numpy(hand_made: tuple[Image, np.ndarray]) -> None:
    image, mask = hand_made
    cfg = RadiomicsConfig(bin_width=BIN_WIDTH, feature_classes=("firstorder",))
    f = extract_features(image, mask, cfg)
    x = image.array[mask].astype(np.float64)
    mean = x.mean()
    var = x.var()  # population variance, as pyradiomics/IBSI define it
    # Discretisation with a fixed bin width: edges at multiples of the bin width from floor(min).
    lo = math.floor(x.min() / BIN_WIDTH) * BIN_WIDTH
    counts = np.bincount(np.floor((x - lo) / BIN_WIDTH).astype(int))
    p = counts[counts > 0] / x.size
    expected = {
        "Mean": mean,
        "Variance": var,
        "Energy": np.sum(x**2),
        "TotalEnergy": np.sum(x**2) * 2.0 * 0.5,  # x pixel area in mm^2
        "RootMeanSquared": np.sqrt(np.mean(x**2)),
        "Minimum": x.min(),
        "Maximum": x.max(),
        "Median": np.median(x),
        "Range": np.ptp(x),
        "10Percentile": np.percentile(x, 10),
        "MeanAbsoluteDeviation": np.mean(np.abs(x - mean)),
        "Skewness": np.mean((x - mean) ** 3) / var**1.5,
        "Kurtosis": np.mean((x - mean) ** 4) / var**2,
        "Entropy": -np.sum(p * np.log2(p)),
        "Uniformity": np.sum(p**2),
    }
    for name, value in expected.items():
        assert f[f"original_firstorder_{name}"] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_bin_width_changes_entropy_only_through_the_histogram(hand_made: tuple[Image, np.ndarray]) -> None:
    image, mask = hand_made
    coarse = extract_features(image, mask, RadiomicsConfig(bin_width=40.0, feature_classes=("firstorder",)))
    fine = extract_features(image, mask, RadiomicsConfig(bin_width=5.0, feature_classes=("firstorder",)))
    assert coarse["original_firstorder_Mean"] == pytest.approx(fine["original_firstorder_Mean"])
    assert coarse["original_firstorder_Entropy"] < fine["original_firstorder_Entropy"]


def test_shape2d_of_a_disk() -> None:
    r = 20
    yy, xx = np.mgrid[:64, :64]
    mask = (yy - 32) ** 2 + (xx - 31) ** 2 <= r**2
    image = Image(np.full(mask.shape, 50.0, np.float32) + mask, spacing_mm=(1.0, 1.0))
    f = extract_features(image, mask, RadiomicsConfig(feature_classes=("shape",)))
    assert f["original_shape2D_PixelSurface"] == pytest.approx(mask.sum())
    assert f["original_shape2D_MeshSurface"] == pytest.approx(math.pi * r**2, rel=0.02)
    # the marching-squares outline of a pixelated circle runs ~7 % longer than the true circle
    assert 2 * math.pi * r < f["original_shape2D_Perimeter"] < 1.1 * 2 * math.pi * r
    assert f["original_shape2D_MaximumDiameter"] == pytest.approx(2 * r, rel=0.05)
    assert 0.9 < f["original_shape2D_Sphericity"] <= 1.0
    assert f["original_shape2D_Elongation"] == pytest.approx(1.0, abs=0.02)


def test_shape3d_of_an_anisotropic_ellipsoid() -> None:
    a, b, c = 16.0, 12.0, 10.0  # semi-axes in mm along (slice, row, col)
    spacing = (2.0, 1.0, 1.0)
    z, yy, xx = np.mgrid[:20, :32, :28].astype(float)
    z, yy, xx = (z - 9.5) * spacing[0], yy - 15.5, xx - 13.5
    mask = (z / a) ** 2 + (yy / b) ** 2 + (xx / c) ** 2 <= 1.0
    image = Image(np.where(mask, 80.0, 20.0).astype(np.float32), spacing_mm=spacing, modality="MR")
    f = extract_features(image, mask, RadiomicsConfig(feature_classes=("shape",)))
    assert f["original_shape_MeshVolume"] == pytest.approx(4 / 3 * math.pi * a * b * c, rel=0.04)
    # principal axis length = 4 * sqrt(eigenvalue); a solid ellipsoid has variance a^2 / 5
    assert f["original_shape_MajorAxisLength"] == pytest.approx(4 * a / math.sqrt(5), rel=0.03)
    assert f["original_shape_LeastAxisLength"] == pytest.approx(4 * c / math.sqrt(5), rel=0.04)
    assert "original_shape2D_PixelSurface" not in f


def test_parquet_round_trip_keeps_names_values_and_settings(tmp_path, hand_made) -> None:
    image, mask = hand_made
    cfg = RadiomicsConfig(bin_width=BIN_WIDTH, feature_classes=("firstorder", "glcm"))
    rows = []
    for k in range(3):
        feats = extract_features(image.with_array(image.array + 10 * k), mask, cfg)
        rows.append({"path": f"img{k}.png", "roi": "mask", "roi_pixels": int(mask.sum()), **feats})
    path = write_feature_table(rows, tmp_path / "f.parquet", yaml.safe_dump(cfg.model_dump(mode="json")))
    table = read_feature_table(path)
    assert table.paths == ["img0.png", "img1.png", "img2.png"]
    assert "original_firstorder_Mean" in table.names and "original_glcm_Contrast" in table.names
    assert all(n.startswith("original_") for n in table.names)
    j = table.names.index("original_firstorder_Mean")
    np.testing.assert_allclose(table.values[:, j], [r["original_firstorder_Mean"] for r in rows])
    assert RadiomicsConfig(**yaml.safe_load(table.config_yaml)) == cfg
    assert not (tmp_path / "f.parquet.tmp").exists()


def test_non_finite_row_is_refused_when_writing(tmp_path) -> None:
    rows = [
        {"path": "a.png", "original_firstorder_Mean": 1.0},
        {"path": "b.png", "original_firstorder_Mean": np.nan},
    ]
    with pytest.raises(InputError, match="b.png.*original_firstorder_Mean"):
        write_feature_table(rows, tmp_path / "f.parquet")
    assert not (tmp_path / "f.parquet").exists()


def test_failed_feature_is_an_error_naming_it(monkeypatch, hand_made) -> None:
    from radiomics import firstorder

    def broken(self):  # pyradiomics catches this, logs it and would store NaN
        raise ArithmeticError("synthetic failure")

    monkeypatch.setattr(firstorder.RadiomicsFirstOrder, "getSkewnessFeatureValue", broken)
    image, mask = hand_made
    with pytest.raises(InputError, match="original_firstorder_Skewness"):
        extract_features(image, mask, RadiomicsConfig(feature_classes=("firstorder",)))


def test_bad_masks_and_options_are_clear_errors(hand_made) -> None:
    image, mask = hand_made
    cfg = RadiomicsConfig(feature_classes=("firstorder",))
    with pytest.raises(InputError, match="mask shape"):
        extract_features(image, mask[:-1], cfg)
    with pytest.raises(InputError, match="ROI has 0 pixels"):
        extract_features(image, np.zeros_like(mask), cfg)
    with pytest.raises(ConfigError, match="Did you mean 'glcm'"):
        RadiomicsConfig(feature_classes=("glcn",))
    from liverfib.radiomics.config import load_config

    with pytest.raises(ConfigError, match="bin_widht"):
        load_config(None, {"bin_widht": 3})


def test_volumes_with_nifti_masks_and_mre_maps(tmp_path) -> None:
    """3D MR/CT: image + mask NIfTI pairs through the extract workflow; MRE: a float kPa map."""
    from liverfib.io.nifti import write_nifti
    from liverfib.pipeline.radiomics import run_radiomics_extract

    rng = np.random.default_rng(0)
    z, yy, xx = np.mgrid[:12, :28, :28]
    liver = ((z - 6) / 5.0) ** 2 + ((yy - 14) / 10.0) ** 2 + ((xx - 14) / 9.0) ** 2 <= 1.0
    for k in range(2):
        vol = (300 + 40 * k + 20 * rng.normal(size=liver.shape)).astype(np.float32)
        write_nifti(Image(vol, spacing_mm=(3.0, 1.0, 1.0), modality="MR"), tmp_path / f"img{k}.nii.gz")
        write_nifti(
            Image(liver.astype(np.uint8), spacing_mm=(3.0, 1.0, 1.0)), tmp_path / f"img{k}_liver.nii.gz"
        )
    summary, _ = run_radiomics_extract(
        [tmp_path / "img0.nii.gz", tmp_path / "img1.nii.gz"],
        tmp_path / "mr.parquet",
        masks=[tmp_path / "img0_liver.nii.gz", tmp_path / "img1_liver.nii.gz"],
        overrides={"bin_width": 5.0, "feature_classes": ["firstorder", "shape", "glcm"], "workers": 1},
    )
    table = read_feature_table(tmp_path / "mr.parquet")
    assert summary["n_images"] == 2 and "original_shape_MeshVolume" in table.names
    vol_mm3 = table.values[:, table.names.index("original_shape_VoxelVolume")]
    np.testing.assert_allclose(vol_mm3, liver.sum() * 3.0)
    mean = table.values[:, table.names.index("original_firstorder_Mean")]
    assert mean[1] - mean[0] == pytest.approx(40.0, abs=3.0)

    stiffness_kpa = np.clip(2.5 + 0.4 * rng.normal(size=(40, 40)), 0.5, None)
    roi = np.zeros((40, 40), bool)
    roi[10:30, 8:32] = True
    cfg = RadiomicsConfig(bin_width=0.25, feature_classes=("firstorder", "glcm"))
    f = extract_features(Image(stiffness_kpa, spacing_mm=(1.5, 1.5), modality="MR"), roi, cfg)
    assert f["original_firstorder_Mean"] == pytest.approx(stiffness_kpa[roi].mean(), rel=1e-6)
