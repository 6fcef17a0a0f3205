"""Raster images (PNG, JPEG, BMP, TIFF) via read_image: content decides, bad files fail readably."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.io import read_image, read_raster


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_jpg_suffix_with_png_bytes_is_read_as_png(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.png(tmp_path / "scan.jpg", make.pattern)
    image = read_image(path)
    assert image.meta["format"] == "PNG"
    np.testing.assert_array_equal(image.array, make.pattern)  # lossless: it really was PNG
    assert image.modality == "OT"
    assert image.spacing_mm is None


def test_png_16_bit_keeps_uint16(tmp_path: Path, make: SimpleNamespace) -> None:
    arr = (np.arange(24 * 32, dtype=np.uint32).reshape(24, 32) * 80).astype(np.uint16)
    image = read_image(make.png(tmp_path / "deep.png", arr))
    assert image.array.dtype == np.uint16
    assert image.meta["bit_depth"] == 16
    np.testing.assert_array_equal(image.array, arr)
    assert int(image.array.max()) > 255


def test_rgba_with_equal_channels_is_gray(tmp_path: Path, make: SimpleNamespace) -> None:
    rgba = np.dstack([make.pattern] * 3 + [np.full_like(make.pattern, 255)])
    image = read_image(make.png(tmp_path / "gray_rgba.png", rgba))
    assert image.shape == (24, 32)
    np.testing.assert_array_equal(image.array, make.pattern)
    assert image.meta["colour"] is False
    assert image.meta["channels"] == 4


def test_rgba_real_colour_is_flagged(tmp_path: Path, make: SimpleNamespace) -> None:
    rgba = np.dstack([make.pattern] * 3 + [np.full_like(make.pattern, 255)])
    rgba[2:10, 2:10, :3] = (255, 0, 0)  # a red Doppler-like patch
    image = read_image(make.png(tmp_path / "doppler.png", rgba))
    assert image.meta["colour"] is True
    assert image.array[5, 5] == round(0.299 * 255)
    assert image.array[20, 20] == make.pattern[20, 20]


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(InputError, match=r"empty\.png: empty file \(0 bytes\)"):
        read_image(path)
    with pytest.raises(InputError, match=r"empty\.png: empty file \(0 bytes\)"):
        read_raster(path)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "readme.png"
    path.write_text("this is not an image")
    with pytest.raises(
        InputError, match=r"readme\.png: not a readable image \(expected PNG, JPEG, BMP, TIFF, DICOM or NIfTI"
    ):
        read_image(path)
    with pytest.raises(InputError, match=r"readme\.png: not a PNG, JPEG, BMP or TIFF image"):
        read_raster(path)


def test_truncated_png(tmp_path: Path, make: SimpleNamespace) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    path = make.png(tmp_path / "cut.png", noise)
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(InputError, match=r"cut\.png: corrupt or truncated PNG \(image file is truncated\)"):
        read_image(path)


def test_corrupt_png_bytes(tmp_path: Path, make: SimpleNamespace) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    path = make.png(tmp_path / "garbled.png", noise)
    data = bytearray(path.read_bytes())
    data[60:400] = bytes(340)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"garbled\.png: corrupt or truncated PNG \("):
        read_image(path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    PILImage.fromarray(noise).save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[:300])
    with pytest.raises(InputError, match=r"cut\.jpg: corrupt or truncated JPEG"):
        read_image(path)


def test_zero_size_png(tmp_path: Path) -> None:
    # A structurally valid PNG whose header says width 0; Pillow refuses to open it.
    header = struct.pack(">IIBBBBB", 0, 10, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )
    path = tmp_path / "zero.png"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"zero\.png: corrupt or truncated PNG") as err:
        read_image(path)
    assert "\n" not in str(err.value)


def test_line_image_1x50(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.png(tmp_path / "line.png", np.zeros((1, 50), np.uint8))
    expected = r"line\.png: image is 50x1 pixels; need at least 8 pixels on each side"
    with pytest.raises(InputError, match=expected):
        read_image(path)


def test_above_max_pixels(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.png(tmp_path / "big.png", make.pattern)  # 32 x 24 = 768 pixels
    assert read_image(path, max_pixels=768).shape == (24, 32)
    with pytest.raises(
        InputError, match=r"big\.png: 32x24 = 768 pixels exceeds the limit of 500; raise --max-pixels"
    ):
        read_image(path, max_pixels=500)
