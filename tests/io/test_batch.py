"""read_many: good images come back, every bad file is listed with a one-line reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.image import Image
from liverfib.io import list_images, read_dicom, read_many


@pytest.fixture
def mixed_folder(tmp_path: Path, make: SimpleNamespace) -> Path:
    """Two PNGs and one DICOM that read, plus four bad files."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    make.png(folder / "a_good.png", make.pattern)
    make.png(folder / "b_good.jpg", make.pattern)  # PNG bytes behind a .jpg name
    make.us(folder / "c_good.dcm", make.pattern)
    (folder / "d_empty.png").touch()
    (folder / "e_notes.png").write_text("not an image")
    good = (folder / "a_good.png").read_bytes()
    (folder / "f_cut.png").write_bytes(good[: len(good) // 2])
    make.png(folder / "g_line.png", np.zeros((1, 50), np.uint8))
    return folder


def test_bad_files_are_listed_not_dropped(mixed_folder: Path) -> None:
    paths = list_images(mixed_folder)
    images, failures = read_many(paths)
    assert [im.name for im in images] == ["a_good.png", "b_good.jpg", "c_good.dcm"]
    assert [p.name for p, _ in failures] == ["d_empty.png", "e_notes.png", "f_cut.png", "g_line.png"]
    assert len(images) + len(failures) == len(paths)
    reasons = dict((p.name, msg) for p, msg in failures)
    assert reasons["d_empty.png"].endswith("d_empty.png: empty file (0 bytes)")
    assert "e_notes.png: not a readable image" in reasons["e_notes.png"]
    assert "f_cut.png: corrupt or truncated PNG" in reasons["f_cut.png"]
    assert "need at least 8 pixels on each side" in reasons["g_line.png"]
    assert all("\n" not in msg for msg in reasons.values())


def test_keywords_reach_the_reader(mixed_folder: Path) -> None:
    paths = [mixed_folder / "a_good.png", mixed_folder / "b_good.jpg"]
    images, failures = read_many(paths, max_pixels=100)
    assert images == []
    assert all("exceeds the limit of 100" in msg for _, msg in failures)


def test_custom_reader_and_str_paths(tmp_path: Path, us_cine: Path, make: SimpleNamespace) -> None:
    png = make.png(tmp_path / "x.png", make.pattern)
    images, failures = read_many([str(us_cine), str(png)], reader=read_dicom, frame=2)
    assert len(images) == 1 and images[0].shape == (24, 32)
    assert failures[0][0] == png and "not a DICOM file" in failures[0][1]


def test_bugs_are_not_swallowed(tmp_path: Path) -> None:
    def broken(path: Path) -> Image:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        read_many([tmp_path / "x.png"], reader=broken)


def test_user_errors_from_custom_reader_are_collected(tmp_path: Path) -> None:
    def picky(path: Path) -> Image:
        raise InputError(f"{path.name}: line one\nline two")

    images, failures = read_many([tmp_path / "x.png"], reader=picky)
    assert images == [] and failures == [(tmp_path / "x.png", "x.png: line one line two")]


def test_importing_io_stays_light() -> None:
    code = (
        "import sys, liverfib.io; "
        "heavy = [m for m in ('pydicom', 'SimpleITK', 'nibabel', 'torch') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
