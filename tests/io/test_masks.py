"""Binary mask I/O and pair collections."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.io.masks import list_mask_pairs, read_mask, write_mask_png


def test_mask_round_trip_is_0_255_and_exact(tmp_path: Path) -> None:
    m = np.zeros((30, 40), bool)
    m[5:20, 10:30] = True
    p = write_mask_png(m, tmp_path / "m.png")
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint8 and set(np.unique(raw)) == {0, 255}
    assert np.array_equal(read_mask(p), m)


def test_mask_of_0_1_values_reads_as_foreground(tmp_path: Path) -> None:
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 1
    cv2.imwrite(str(tmp_path / "m.png"), m)
    assert read_mask(tmp_path / "m.png").sum() == 4


def test_mask_shape_mismatch_is_named(tmp_path: Path) -> None:
    write_mask_png(np.ones((10, 12), bool), tmp_path / "m.png")
    with pytest.raises(InputError, match="mask is"):
        read_mask(tmp_path / "m.png", shape=(10, 13))


def test_pairs_from_folders_and_manifest(tmp_path: Path) -> None:
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / "images" / f"{name}.png"), np.full((8, 8), 100, np.uint8))
        write_mask_png(np.eye(8, dtype=bool), tmp_path / "masks" / f"{name}.png")
    pairs = list_mask_pairs(tmp_path)
    assert [p.group for p in pairs] == ["a", "b"]
    (tmp_path / "manifest.csv").write_text("file,mask,subject\nimages/a.png,masks/a.png,S1\nimages/b.png,masks/b.png,S1\n")
    assert {p.group for p in list_mask_pairs(tmp_path)} == {"S1"}


def test_pairs_bad_layouts_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected manifest.csv or images/"):
        list_mask_pairs(tmp_path)
    (tmp_path / "manifest.csv").write_text("image,label\nx.png,F0\n")
    with pytest.raises(InputError, match="expected columns file,mask"):
        list_mask_pairs(tmp_path)
    (tmp_path / "manifest.csv").write_text("file,mask\nimages/x.png,masks/x.png\n")
    with pytest.raises(InputError, match="does not exist"):
        list_mask_pairs(tmp_path)
