"""The 3D volume viewer: the NiiVue bundle served from the package (no CDN), its licences and its
manifest; the pages and the browser run are below."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = resources.files("liverfib.clinical").joinpath("static")


def test_bundle_matches_its_manifest() -> None:
    js = STATIC.joinpath("niivue-viewer.js").read_bytes()
    manifest = json.loads(STATIC.joinpath("niivue-viewer.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(js).hexdigest() and manifest["bytes"] == len(js)
    assert len(js) < 5_000_000  # a few MB at most
    assert manifest["bundled"]["@niivue/niivue"]["license"] == "BSD-2-Clause"
    lock = json.loads((ROOT / "webviewer" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@niivue/niivue"]["version"] == manifest["bundled"]["@niivue/niivue"]["version"]
    assert b"LiverfibViewer" in js and b"nv-canvas" in js  # the global and the page hook


def test_every_bundled_package_has_its_licence() -> None:
    manifest = json.loads(STATIC.joinpath("niivue-viewer.manifest.json").read_text())
    text = STATIC.joinpath("NIIVUE-LICENSES.txt").read_text()
    for name, info in manifest["bundled"].items():
        assert f"{name} {info['version']} ({info['license']})" in text
    assert "Copyright (c) 2021, Niivue" in text


@pytest.mark.skipif(not (ROOT / "webviewer" / "node_modules").is_dir() or not shutil.which("node"),
                    reason="webviewer/node_modules absent: run `make viewer` (node + npm registry)")
def test_committed_bundle_is_a_rebuild(tmp_path: Path) -> None:
    subprocess.run(["node", str(ROOT / "webviewer" / "build.mjs"), str(tmp_path)], check=True, capture_output=True)
    for name in ("niivue-viewer.js", "niivue-viewer.manifest.json", "NIIVUE-LICENSES.txt"):
        assert (tmp_path / name).read_bytes() == STATIC.joinpath(name).read_bytes(), f"{name}: run make viewer"
