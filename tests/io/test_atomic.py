"""``atomic_write``: whole new file or the old one; a failed write leaves no temporary behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from liverfib.io.atomic import atomic_write


def test_data_form_writes_bytes_and_text(tmp_path: Path) -> None:
    assert atomic_write(tmp_path / "a.bin", data=b"\x00\x01") == tmp_path / "a.bin"
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    atomic_write(tmp_path / "sub" / "b.txt", data="é\r\nx")  # parent created, no newline translation
    assert (tmp_path / "sub" / "b.txt").read_bytes() == "é\r\nx".encode()


def test_context_form_replaces_on_clean_exit(tmp_path: Path) -> None:
    target = tmp_path / "c.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    with atomic_write(target, mode="wb") as fh:
        fh.write(b"new")
        assert target.read_bytes() == b"old"  # nothing visible until the rename
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.bin"]


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "d.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.txt"]


def test_failed_rename_keeps_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "e.bin"
    target.write_bytes(b"old")

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, data=b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.bin"]


def test_rejects_bad_mode_and_data(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "f", mode="a"):
        pass
    with pytest.raises(TypeError, match="bytes or str"):
        atomic_write(tmp_path / "f", data=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="data="), atomic_write(tmp_path / "f", b"content"):  # type: ignore[arg-type]
        pass
    assert list(tmp_path.iterdir()) == []
