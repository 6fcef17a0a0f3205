"""The audit HTML page: tables, thumbnails of near-duplicate clusters, written atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from liverfib.dataset import audit_folder
from liverfib.report.audit_html import write_audit_html


def test_page_lists_labels_clusters_and_unreadable(tmp_path: Path, build_dataset) -> None:
    ds = build_dataset(tmp_path / "us")
    summary = audit_folder(ds.root).summary
    out_dir = tmp_path / "out"
    out = write_audit_html(summary, ds.root, out_dir / "audit.html")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    for lab in summary["labels"]:
        assert f"<td>{lab}</td>" in page
    assert page.count("data:image/png;base64,") >= 2  # cluster thumbnails
    assert "Unreadable files" in page
    assert [p.name for p in out_dir.iterdir()] == ["audit.html"]  # no temporary left behind


def test_failed_page_keeps_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "audit.html"
    out.write_text("old page")
    with pytest.raises(KeyError):
        write_audit_html({"verdict": "ok"}, tmp_path, out)
    assert out.read_text() == "old page"
    assert [p.name for p in tmp_path.iterdir()] == ["audit.html"]
