"""read_dicom / read_dicom_series on tiny DICOM files written with pydicom in tmp_path."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.io import read_dicom, read_dicom_series, read_image, read_nifti, write_nifti

# --------------------------------------------------------------------------------------------------
# Ultrasound
# --------------------------------------------------------------------------------------------------


def test_us_single_frame(us_file: Path, make: SimpleNamespace) -> None:
    image = read_dicom(us_file)
    assert image.shape == (24, 32)
    assert image.array.dtype == np.uint8
    np.testing.assert_array_equal(image.array, make.pattern)
    assert image.modality == "US"
    assert image.spacing_mm == pytest.approx((0.3, 0.2))  # PhysicalDeltaY/X 0.03/0.02 cm
    assert image.path == us_file
    meta = image.meta
    assert meta["spacing_source"] == "SequenceOfUltrasoundRegions"
    assert meta["is_sequence"] is False
    assert meta["colour"] is False
    assert meta["Modality"] == "US"
    assert meta["Manufacturer"] == "liverfib-test"
    assert meta["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
    assert meta["PhotometricInterpretation"] == "MONOCHROME2"
    assert meta["SeriesInstanceUID"] == "1.2.826.0.1.3680043.8.498.2"
    assert "PatientName" not in meta


def test_read_image_dispatches_dicom_by_content(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.us(tmp_path / "no_suffix", make.pattern)
    assert read_image(path).meta["format"] == "DICOM"


def test_us_cine_keeps_all_frames(us_cine: Path, make: SimpleNamespace) -> None:
    image = read_dicom(us_cine)
    assert image.shape == (5, 24, 32)
    assert image.meta["is_sequence"] is True
    assert image.meta["n_frames"] == 5
    assert image.meta["FrameTime"] == pytest.approx(33.3)
    assert image.spacing_mm == pytest.approx((0.0, 0.3, 0.2))  # no physical spacing along time
    for t in range(5):
        np.testing.assert_array_equal(image.array[t], make.pattern + np.uint8(10 * t))


def test_us_cine_one_frame(us_cine: Path, make: SimpleNamespace) -> None:
    image = read_dicom(us_cine, frame=3)
    assert image.shape == (24, 32)
    np.testing.assert_array_equal(image.array, make.pattern + np.uint8(30))
    assert image.spacing_mm == pytest.approx((0.3, 0.2))
    assert image.meta["frame"] == 3
    assert image.meta["is_sequence"] is False


def test_read_image_passes_frame(us_cine: Path) -> None:
    assert read_image(us_cine, frame=1).shape == (24, 32)


@pytest.mark.parametrize("frame", [5, 99, -1])
def test_frame_out_of_range_lists_frame_count(us_cine: Path, frame: int) -> None:
    expected = re.escape(f"frame {frame} out of range; the file has 5 frames (0..4)")
    with pytest.raises(InputError, match=expected):
        read_dicom(us_cine, frame=frame)


def test_frame_on_single_frame_file(us_file: Path) -> None:
    assert read_dicom(us_file, frame=0).shape == (24, 32)
    with pytest.raises(InputError, match=re.escape("the file has 1 frame (0..0)")):
        read_dicom(us_file, frame=1)


def test_rgb_with_equal_channels_is_gray(tmp_path: Path, make: SimpleNamespace) -> None:
    rgb = np.repeat(make.pattern[..., None], 3, axis=2)
    image = read_dicom(make.us(tmp_path / "rgb.dcm", rgb, photometric="RGB"))
    np.testing.assert_array_equal(image.array, make.pattern)
    assert image.meta["colour"] is False
    assert image.meta["channels"] == 3


def test_rgb_colour_becomes_luma(tmp_path: Path, make: SimpleNamespace) -> None:
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = 200  # red background
    rgb[4:12, 4:20] = (0, 0, 255)  # a blue box, like a Doppler overlay
    image = read_dicom(make.us(tmp_path / "doppler.dcm", rgb, photometric="RGB"))
    assert image.meta["colour"] is True
    assert image.array.dtype == np.uint8
    assert image.array[0, 0] == round(0.299 * 200)
    assert image.array[5, 5] == round(0.114 * 255)


def test_rgb_cine_to_gray(tmp_path: Path, make: SimpleNamespace) -> None:
    rgb = np.repeat(make.pattern[None, ..., None], 3, axis=3).repeat(2, axis=0)  # (T, H, W, 3)
    rgb[1, ..., 2] = 0
    image = read_dicom(make.us(tmp_path / "rgb_cine.dcm", rgb, photometric="RGB"))
    assert image.shape == (2, 24, 32)
    assert image.meta["colour"] is True


def test_ybr_full_native_converted(tmp_path: Path, make: SimpleNamespace) -> None:
    from pydicom.pixels import convert_color_space

    rgb = np.repeat(make.pattern[..., None], 3, axis=2)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    image = read_dicom(make.us(tmp_path / "ybr.dcm", ybr, photometric="YBR_FULL"))
    assert np.abs(image.array.astype(int) - make.pattern).max() <= 2


def test_jpeg_baseline_colour(tmp_path: Path, make: SimpleNamespace) -> None:
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[8:16, 8:24] = 230
    image = read_dicom(make.jpeg_us(tmp_path / "jpeg.dcm", rgb))  # decoded by pylibjpeg or Pillow
    assert image.meta["TransferSyntaxUID"] == "1.2.840.10008.1.2.4.50"
    assert image.meta["colour"] is True
    assert image.shape == (24, 32)
    assert abs(int(image.array[0, 0]) - round(0.299 * 200)) <= 4  # lossy
    assert abs(int(image.array[12, 16]) - 230) <= 4


def test_jpeg_baseline_multiframe(tmp_path: Path, make: SimpleNamespace) -> None:
    rgb = np.full((24, 32, 3), 90, np.uint8)
    path = make.jpeg_us(tmp_path / "jpeg_cine.dcm", rgb, n_frames=3)
    image = read_dicom(path)
    assert image.shape == (3, 24, 32)
    assert image.meta["is_sequence"] is True
    assert np.abs(image.array.astype(int) - 90).max() <= 2
    assert read_dicom(path, frame=2).shape == (24, 32)


# --------------------------------------------------------------------------------------------------
# MR / CT slices
# --------------------------------------------------------------------------------------------------


def test_mr_slice_spacing_modality_and_tags(tmp_path: Path, make: SimpleNamespace) -> None:
    arr = np.arange(16 * 12, dtype=np.uint16).reshape(16, 12) * 7
    image = read_dicom(make.slice(tmp_path / "mr.dcm", arr, position=(1.0, 2.0, 3.0)))
    np.testing.assert_array_equal(image.array, arr)
    assert image.array.dtype == np.uint16  # no rescale tags: stored values kept
    assert image.modality == "MR"
    assert image.spacing_mm == pytest.approx((0.8, 0.6))
    assert image.meta["spacing_source"] == "PixelSpacing"
    assert image.meta["ImagePositionPatient"] == pytest.approx([1.0, 2.0, 3.0])
    assert image.meta["ImageOrientationPatient"] == pytest.approx([1, 0, 0, 0, 1, 0])
    assert image.meta["SliceThickness"] == pytest.approx(2.5)
    assert image.meta["rescaled"] is False


def test_ct_monochrome1_inverted_then_rescaled(tmp_path: Path, make: SimpleNamespace) -> None:
    stored = (np.arange(16 * 12).reshape(16, 12) * 20).astype(np.uint16)  # 0..3820, 12-bit
    path = make.slice(
        tmp_path / "ct.dcm",
        stored,
        modality="CT",
        photometric="MONOCHROME1",
        BitsStored=12,
        HighBit=11,
        RescaleSlope=1,
        RescaleIntercept=-1024,
    )
    image = read_dicom(path)
    assert image.modality == "CT"
    assert image.array.dtype == np.float32
    np.testing.assert_array_equal(image.array, (4095 - stored).astype(np.float32) - 1024)
    assert image.meta["inverted"] is True
    assert image.meta["rescaled"] is True
    assert image.meta["RescaleIntercept"] == -1024


def test_signed_rescale(tmp_path: Path, make: SimpleNamespace) -> None:
    stored = np.linspace(-500, 500, 16 * 12).astype(np.int16).reshape(16, 12)
    path = make.slice(tmp_path / "ct.dcm", stored, modality="CT", RescaleSlope=0.5, RescaleIntercept=10)
    np.testing.assert_allclose(read_dicom(path).array, stored * 0.5 + 10)


def test_imager_pixel_spacing_fallback(tmp_path: Path, make: SimpleNamespace) -> None:
    arr = np.zeros((16, 12), np.uint16)
    path = make.slice(tmp_path / "dx.dcm", arr, pixel_spacing=None, ImagerPixelSpacing=[0.15, 0.25])
    image = read_dicom(path)
    assert image.spacing_mm == pytest.approx((0.15, 0.25))
    assert image.meta["spacing_source"] == "ImagerPixelSpacing"


def test_no_spacing_gives_none(tmp_path: Path, make: SimpleNamespace) -> None:
    image = read_dicom(make.us(tmp_path / "us.dcm", make.pattern, delta_cm=None))
    assert image.spacing_mm is None


def test_unknown_modality_is_ot(tmp_path: Path, make: SimpleNamespace) -> None:
    image = read_dicom(make.slice(tmp_path / "xa.dcm", np.zeros((16, 12), np.uint16), Modality="XA"))
    assert image.modality == "OT"
    assert image.meta["Modality"] == "XA"


def test_rescale_to_infinity_is_an_error(tmp_path: Path, make: SimpleNamespace) -> None:
    arr = np.full((16, 12), 1000, np.uint16)
    path = make.slice(tmp_path / "bad_slope.dcm", arr, RescaleSlope="1e39", RescaleIntercept=0)
    expected = r"bad_slope\.dcm: NaN or infinite values after applying RescaleSlope=1e\+39"
    with pytest.raises(InputError, match=expected):
        read_dicom(path)


def test_multiframe_mr_with_slice_spacing_is_a_volume(tmp_path: Path, make: SimpleNamespace) -> None:
    arr = np.stack([np.full((16, 12), z, np.uint16) for z in range(4)])
    image = read_dicom(make.slice(tmp_path / "enhanced.dcm", arr, SpacingBetweenSlices=3.0))
    assert image.shape == (4, 16, 12)
    assert image.meta["is_sequence"] is False
    assert image.spacing_mm == pytest.approx((3.0, 0.8, 0.6))


def test_palette_colour_to_gray(tmp_path: Path, make: SimpleNamespace) -> None:
    import pydicom

    indices = np.zeros((16, 16), np.uint8)
    indices[4:8, 4:8] = 1
    path = make.us(tmp_path / "palette.dcm", np.zeros((16, 16), np.uint8))
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.PixelData = indices.tobytes()
    lut = {"Red": [0, 65535], "Green": [0, 0], "Blue": [0, 0]}  # index 1 -> pure red
    for colour, values in lut.items():
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [2, 0, 16])
        ds[f"{colour}PaletteColorLookupTableDescriptor"].VR = "US"
        setattr(ds, f"{colour}PaletteColorLookupTableData", np.asarray(values, np.uint16).tobytes())
    ds.save_as(path)
    image = read_dicom(path)
    assert image.meta["colour"] is True
    assert image.array[0, 0] == 0
    assert image.array[5, 5] == round(0.299 * 65535)


# --------------------------------------------------------------------------------------------------
# Bad files: one readable line each
# --------------------------------------------------------------------------------------------------


def test_not_dicom_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("patient notes, not an image\n" * 10)
    with pytest.raises(InputError, match=r"notes\.dcm: not a DICOM file \(no 'DICM' marker at byte 128\)"):
        read_dicom(path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.touch()
    with pytest.raises(InputError, match=r"empty\.dcm: empty file \(0 bytes\)"):
        read_dicom(path)
    with pytest.raises(InputError, match=r"empty\.dcm: empty file \(0 bytes\)"):
        read_image(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_dicom(tmp_path / "nope.dcm")


def test_folder_given_to_read_dicom(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder; read a DICOM series folder with read_dicom_series"):
        read_dicom(tmp_path)


@pytest.mark.parametrize(
    ("keep", "detail"),
    [
        (0.97, r"DICOM \(element \(7FE0,0010\) needs bytes up to \d+, file has \d+\)"),  # in pixel data
        (0.5, r"DICOM \(element \(7FE0,0010\) needs bytes up to"),
        (0.2, r"DICOM"),  # in the data set header
        (200, r"DICOM header \(no Transfer Syntax UID in the file meta information\)"),
    ],
)
def test_truncated_file(us_file: Path, tmp_path: Path, keep: float, detail: str) -> None:
    data = us_file.read_bytes()
    n = int(len(data) * keep) if keep < 1 else int(keep)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:n])
    with pytest.raises(InputError, match=r"cut\.dcm: corrupt or truncated " + detail) as err:
        read_dicom(cut)
    assert "\n" not in str(err.value)


def test_corrupt_header_bytes(us_file: Path, tmp_path: Path) -> None:
    data = bytearray(us_file.read_bytes())
    data[132:300] = np.random.default_rng(0).integers(0, 256, 168, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbled.dcm"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"garbled\.dcm: corrupt or truncated DICOM"):
        read_dicom(bad)


def test_corrupt_compressed_pixel_data(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.jpeg_us(tmp_path / "jpeg.dcm", np.full((24, 32, 3), 90, np.uint8))
    data = bytearray(path.read_bytes())
    start = data.index(b"\xff\xd8\xff")  # the JPEG stream inside the encapsulated pixel data
    data[start + 2 : start + 200] = b"\x00" * 198
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"jpeg\.dcm: corrupt or truncated pixel data \("):
        read_dicom(path)


def test_no_pixel_data(tmp_path: Path) -> None:
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = uid.BasicTextSRStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = uid.generate_uid()
    ds.Modality = "SR"
    path = tmp_path / "report.dcm"
    ds.save_as(path, enforce_file_format=True)
    expected = r"report\.dcm: DICOM file has no pixel data \(SOP class: Basic Text SR"
    with pytest.raises(InputError, match=expected):
        read_dicom(path)


def test_zero_size_image(tmp_path: Path, make: SimpleNamespace) -> None:
    import pydicom

    path = make.us(tmp_path / "zero.dcm", make.pattern)
    ds = pydicom.dcmread(path)
    ds.Rows = 0
    ds.PixelData = b""
    ds.save_as(path)
    with pytest.raises(InputError, match=r"zero\.dcm: image has zero size \(0 rows x 32 columns\)"):
        read_dicom(path)


def test_line_image_too_small(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.us(tmp_path / "line.dcm", np.zeros((1, 50), np.uint8))
    expected = r"line\.dcm: image is 50x1 pixels; need at least 8 pixels on each side"
    with pytest.raises(InputError, match=expected):
        read_dicom(path)


def test_compressed_without_decoder_names_syntax_and_package(tmp_path: Path, make: SimpleNamespace) -> None:
    from pydicom.pixels import get_decoder

    htj2k = "1.2.840.10008.1.2.4.201"
    if get_decoder(htj2k).is_available:
        pytest.skip("an HTJ2K decoder (pylibjpeg-openjpeg) is installed here, so nothing is missing")
    path = make.encapsulated(tmp_path / "htj2k.dcm", htj2k)
    with pytest.raises(InputError) as err:
        read_dicom(path)
    msg = str(err.value)
    assert "High-Throughput JPEG 2000" in msg and htj2k in msg
    assert "pip install pylibjpeg-openjpeg" in msg


def test_video_syntax_not_decodable(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.encapsulated(tmp_path / "video.dcm", "1.2.840.10008.1.2.4.102")
    with pytest.raises(InputError, match=r"video\.dcm: transfer syntax 'MPEG-4 AVC/H.264.*cannot be decoded"):
        read_dicom(path)


# --------------------------------------------------------------------------------------------------
# Series folders
# --------------------------------------------------------------------------------------------------


def test_series_sorted_by_position(mr_series: Path) -> None:
    image = read_dicom_series(mr_series)
    assert image.shape == (5, 16, 12)
    np.testing.assert_array_equal(image.array[:, 0, 0], [0, 1, 2, 3, 4])  # per-slice markers
    np.testing.assert_array_equal(image.array[:, 5, 5], [100, 101, 102, 103, 104])
    assert image.spacing_mm == pytest.approx((2.0, 0.8, 0.6))
    assert image.modality == "MR"
    assert image.path == mr_series
    assert image.meta["sorted_by"] == "ImagePositionPatient"
    assert image.meta["n_slices"] == 5
    assert image.meta["files"] == ["IM0001", "IM0003", "IM0004", "IM0000", "IM0002"]
    assert image.meta["ImagePositionPatient"] == pytest.approx([-10.0, -20.0, 5.0])  # first slice


def test_series_affine_maps_voxels_to_patient_mm(mr_series: Path) -> None:
    affine = read_dicom_series(mr_series).meta["affine"]
    # voxel (x=col 3, y=row 2, z=slice 4) -> LPS (-10 + 3*0.6, -20 + 2*0.8, 5 + 4*2) -> RAS
    np.testing.assert_allclose(affine @ [3, 2, 4, 1], [10 - 1.8, 20 - 1.6, 13.0, 1.0])


def test_series_to_nifti_and_back(mr_series: Path, tmp_path: Path) -> None:
    image = read_dicom_series(mr_series)
    back = read_nifti(write_nifti(image, tmp_path / "mr.nii.gz"), modality="MR")
    np.testing.assert_array_equal(back.array, image.array)  # same (z, y, x) convention
    assert back.spacing_mm == pytest.approx(image.spacing_mm)
    np.testing.assert_allclose(back.meta["affine"], image.meta["affine"], atol=1e-5)


def test_read_image_on_folder_reads_series(mr_series: Path) -> None:
    assert read_image(mr_series).shape == (5, 16, 12)


def test_series_skips_and_lists_non_dicom(mr_series: Path) -> None:
    (mr_series / "README.txt").write_text("exported series")
    (mr_series / ".DS_Store").write_bytes(b"\x00\x01")
    image = read_dicom_series(mr_series)
    assert image.shape == (5, 16, 12)
    assert image.meta["skipped"] == [("README.txt", "not DICOM")]


def test_series_per_slice_rescale(tmp_path: Path, make: SimpleNamespace) -> None:
    folder = tmp_path / "philips"
    folder.mkdir()
    for z, slope in enumerate([1.0, 2.0, 0.5]):
        arr = np.full((16, 12), 100, np.uint16)
        make.slice(folder / f"s{z}.dcm", arr, position=(0, 0, z), RescaleSlope=slope, RescaleIntercept=0)
    image = read_dicom_series(folder)
    assert image.array.dtype == np.float32
    np.testing.assert_allclose(image.array[:, 0, 0], [100, 200, 50])


def test_series_without_positions_uses_instance_number(tmp_path: Path, make: SimpleNamespace) -> None:
    folder = tmp_path / "nopos"
    folder.mkdir()
    for n in [3, 1, 2]:
        make.slice(folder / f"f{n}.dcm", np.full((16, 12), n, np.uint16), position=None, InstanceNumber=n)
    image = read_dicom_series(folder)
    np.testing.assert_array_equal(image.array[:, 0, 0], [1, 2, 3])
    assert image.meta["sorted_by"] == "InstanceNumber"
    assert image.spacing_mm == pytest.approx((2.5, 0.8, 0.6))  # SliceThickness
    assert "affine" not in image.meta


def test_series_uneven_spacing_warns(tmp_path: Path, make: SimpleNamespace) -> None:
    folder = tmp_path / "gap"
    folder.mkdir()
    for z in [0.0, 2.0, 4.0, 8.0]:  # slice at 6 mm missing
        make.slice(folder / f"z{z:.0f}.dcm", np.zeros((16, 12), np.uint16), position=(0, 0, z))
    with pytest.warns(UserWarning, match="uneven slice spacing"):
        image = read_dicom_series(folder)
    assert image.meta["slice_spacing_uneven"] is True
    assert image.spacing_mm[0] == pytest.approx(2.0)


def test_series_of_one_multiframe_file(tmp_path: Path, us_cine: Path) -> None:
    folder = tmp_path / "cine_folder"
    folder.mkdir()
    us_cine.rename(folder / "cine.dcm")
    image = read_dicom_series(folder)
    assert image.shape == (5, 24, 32)
    assert image.meta["is_sequence"] is True


def test_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(InputError, match=r"empty: empty folder, expected the DICOM files of one series"):
        read_dicom_series(folder)


def test_folder_without_dicom(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    with pytest.raises(InputError, match=r"no DICOM images in folder \(1 files: a\.txt \(not DICOM\)\)"):
        read_dicom_series(folder)


def test_several_series_in_one_folder(mr_series: Path, make: SimpleNamespace) -> None:
    arr = np.zeros((16, 12), np.uint16)
    make.slice(mr_series / "other.dcm", arr, series_uid="9.9.9", SeriesDescription="T2")
    with pytest.raises(InputError) as err:
        read_dicom_series(mr_series)
    msg = str(err.value)
    assert "holds 2 DICOM image series, pass --series UID to pick one" in msg
    assert "9.9.9 'T2' (MR, 1 slice, in .)" in msg
    assert "1.2.826.0.1.3680043.8.498.2 (MR, 5 slices, in .)" in msg
    picked = read_dicom_series(mr_series, series_uid="9.9.9")
    assert picked.shape == (1, 16, 12)
    assert read_dicom_series(mr_series, series_uid="1.2.826.0.1.3680043.8.498.2").shape == (5, 16, 12)
    with pytest.raises(InputError, match=r"no series with UID 1\.2\.3; found 2: .*9\.9\.9 'T2'"):
        read_dicom_series(mr_series, series_uid="1.2.3")


def test_one_series_below_a_study_folder_is_found(mr_series: Path, tmp_path: Path) -> None:
    study = tmp_path / "study"
    (study / "DICOM" / "S0001").mkdir(parents=True)
    mr_series.rename(study / "DICOM" / "S0001" / "SER1")
    (study / "README.txt").write_text("export")
    (study / ".hidden").mkdir()
    (study / ".hidden" / "junk.dcm").write_bytes(b"x")
    image = read_dicom_series(study)
    assert image.shape == (5, 16, 12)
    np.testing.assert_array_equal(image.array[:, 0, 0], [0, 1, 2, 3, 4])
    assert image.meta["skipped"] == [("README.txt", "not DICOM")]
    assert image.meta["files"][0] == "DICOM/S0001/SER1/IM0001"
    assert read_image(study).shape == (5, 16, 12)


def test_series_in_two_subfolders_are_listed(mr_series: Path, tmp_path: Path, make: SimpleNamespace) -> None:
    study = tmp_path / "study"
    study.mkdir()
    mr_series.rename(study / "t1")
    (study / "t2").mkdir()
    for z in range(3):
        make.slice(study / "t2" / f"{z}.dcm", np.zeros((16, 12), np.uint16), position=(0, 0, z),
                   series_uid="9.9.9", SeriesDescription="T2 haste")
    with pytest.raises(InputError, match=r"holds 2 DICOM image series.*\(MR, 5 slices, in t1\); "
                       r"9\.9\.9 'T2 haste' \(MR, 3 slices, in t2\)"):
        read_dicom_series(study)
    assert read_dicom_series(study, series_uid="9.9.9").shape == (3, 16, 12)


def test_seg_object_beside_the_series_is_skipped(mr_series: Path, tmp_path: Path) -> None:
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = uid.SegmentationStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = uid.generate_uid()
    ds.SeriesInstanceUID = uid.generate_uid()
    ds.Modality = "SEG"
    ds.Rows, ds.Columns = 16, 12
    (mr_series / "seg").mkdir()
    ds.save_as(mr_series / "seg" / "liver.dcm", enforce_file_format=True)
    image = read_dicom_series(mr_series)
    assert image.shape == (5, 16, 12)
    assert ("seg/liver.dcm", "SEG, not an image") in image.meta["skipped"]


# A CT exported like the AMOS case: columns point anterior, the slice normal inferior, the files are
# named in the reverse of the slice order and InstanceNumber is shuffled.
_AMOS_IOP = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)


def _flipped_ct(folder: Path, make: SimpleNamespace) -> np.ndarray:
    """5 slices (16 rows x 12 cols) 5 mm apart, written as above; returns the stack in file order."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 1000, size=(5, 16, 12)).astype(np.int16)
    for k in range(5):
        make.slice(folder / f"slice{50 + k:04d}.dcm", stack[k], modality="CT", position=(-5.0, 6.0, 100.0 + 5 * k),
                   orientation=_AMOS_IOP, pixel_spacing=(0.8, 0.6), InstanceNumber=int([3, 1, 5, 2, 4][k]))
    return stack


def test_series_volume_follows_dicom_geometry(tmp_path: Path, make: SimpleNamespace) -> None:
    stack = _flipped_ct(tmp_path / "ct", make)
    image = read_dicom_series(tmp_path / "ct")
    assert image.meta["axcodes"] == ("L", "P", "S")
    assert image.spacing_mm == pytest.approx((5.0, 0.8, 0.6))
    # superior is up the z axis (file order here), posterior down the rows: rows flipped, slices not
    np.testing.assert_array_equal(image.array, stack[:, ::-1, :])
    # every voxel sits where the DICOM geometry puts it: LPS = IPP + col * 0.6 * row_dir + row * 0.8 * col_dir
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    for k, j, i in [(0, 0, 0), (4, 15, 11), (2, 3, 7)]:
        src_row = 15 - j
        lps = np.array([-5.0 + 0.6 * i, 6.0 - 0.8 * src_row, 100.0 + 5 * k, 1.0])
        np.testing.assert_allclose(image.meta["affine"] @ [i, j, k, 1], lps_to_ras @ lps, atol=1e-6)


def test_series_matches_simpleitk(tmp_path: Path, make: SimpleNamespace) -> None:
    """Independent reference: SimpleITK's ImageSeriesReader (GDCM ordering, LPS physical points)."""
    sitk = pytest.importorskip("SimpleITK")
    _flipped_ct(tmp_path / "ct", make)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ct")))
    ref = reader.Execute()
    ref_array = sitk.GetArrayFromImage(ref)  # (z, y, x) in SimpleITK's own index order
    image = read_dicom_series(tmp_path / "ct")
    assert image.array.size == ref_array.size
    for k, j, i in np.ndindex(*image.shape):
        ras = image.meta["affine"] @ [i, j, k, 1]
        x, y, z = ref.TransformPhysicalPointToIndex((-ras[0], -ras[1], ras[2]))  # RAS -> LPS
        assert image.array[k, j, i] == ref_array[z, y, x]


def test_dicom_and_nifti_of_one_scan_read_alike(tmp_path: Path, make: SimpleNamespace) -> None:
    """The NIfTI a converter would write for the series (LAI voxel axes) reads to the same volume."""
    import nibabel as nib

    stack = _flipped_ct(tmp_path / "ct", make)
    # file-order stack -> NIfTI (x = col, y = row, z = file index); columns go L, rows A, files S
    affine = np.array([[-0.6, 0, 0, 5.0], [0, 0.8, 0, -6.0], [0, 0, 5.0, 100.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(stack.transpose(2, 1, 0).copy(), affine), tmp_path / "ct.nii.gz")
    from_nifti = read_nifti(tmp_path / "ct.nii.gz")
    from_dicom = read_dicom_series(tmp_path / "ct")
    np.testing.assert_array_equal(from_dicom.array, from_nifti.array)
    np.testing.assert_allclose(from_dicom.meta["affine"], from_nifti.meta["affine"], atol=1e-5)


def test_to_source_frames_undoes_the_reorientation(tmp_path: Path, make: SimpleNamespace) -> None:
    from liverfib.io.dicom_series import to_source_frames

    stack = _flipped_ct(tmp_path / "ct", make)
    image = read_dicom_series(tmp_path / "ct")
    frames = to_source_frames(image.array, image)
    order = [int(f[5:9]) - 50 for f in image.meta["files"]]
    np.testing.assert_array_equal(frames, stack[order])
    with pytest.raises(InputError, match="differs from the volume shape"):
        to_source_frames(image.array[:2], image)


def test_inconsistent_sizes(mr_series: Path, make: SimpleNamespace) -> None:
    make.slice(mr_series / "big.dcm", np.zeros((32, 12), np.uint16), position=(0, 0, 50))
    expected = r"slices do not share one grid \(5 files 12x16 .*; 1 files 12x32 .*big\.dcm"
    with pytest.raises(InputError, match=expected):
        read_dicom_series(mr_series)


def test_inconsistent_orientation(mr_series: Path, make: SimpleNamespace) -> None:
    make.slice(mr_series / "sag.dcm", np.zeros((16, 12), np.uint16), orientation=(0, 1, 0, 0, 0, -1))
    expected = r"do not share one grid.*orientation \[0\.0, 1\.0, 0\.0, 0\.0, 0\.0, -1\.0\]"
    with pytest.raises(InputError, match=expected):
        read_dicom_series(mr_series)


def test_duplicate_positions(mr_series: Path, make: SimpleNamespace) -> None:
    make.slice(mr_series / "echo2.dcm", np.zeros((16, 12), np.uint16), position=(-10.0, -20.0, 9.0))
    with pytest.raises(InputError, match=r"lie at the same slice position \(9\.000 mm; 1 duplicate in all\)"):
        read_dicom_series(mr_series)


def test_series_with_a_truncated_file_names_it(mr_series: Path) -> None:
    victim = mr_series / "IM0002"
    victim.write_bytes(victim.read_bytes()[:-40])
    with pytest.raises(InputError, match=r"IM0002: corrupt or truncated DICOM"):
        read_dicom_series(mr_series)


def test_series_not_a_folder(us_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a folder holding one DICOM series, got a file"):
        read_dicom_series(us_file)
    with pytest.raises(InputError, match="folder not found"):
        read_dicom_series(tmp_path / "missing")
