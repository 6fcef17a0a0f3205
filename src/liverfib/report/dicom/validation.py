"""Validation of written results with dicom3tools' ``dciodvfy`` (Debian package dicom3tools)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["run_dciodvfy"]


def run_dciodvfy(path: str | Path) -> tuple[bool | None, list[str]]:
    """Validate a file with dicom3tools' ``dciodvfy``.

    Returns ``(None, [])`` when dciodvfy is not installed, else ``(no errors, error lines)``.
    """
    exe = shutil.which("dciodvfy")
    if exe is None:
        return None, []
    proc = subprocess.run([exe, "-new", str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    errors = [ln.strip() for ln in lines if ln.startswith("Error")]
    return not errors, errors
