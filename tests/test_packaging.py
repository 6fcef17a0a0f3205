"""`pip install .` must bring everything liverfib imports (issue 20.7): every third-party import in
src/ is declared in pyproject.toml, in the core dependencies or in the extra of its feature."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Imports that belong to an optional feature, and the extra that must declare them.
OPTIONAL = {
    "fastapi": "server", "starlette": "server", "uvicorn": "server", "multipart": "server",
    "markupsafe": "server", "pynetdicom": "server",
    "radiomics": "radiomics", "shap": "radiomics", "pyarrow": "radiomics", "pandas": "radiomics",
    "onnxruntime": "scale", "onnx": "scale", "ray": "scale",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "liverfib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("liverfib", "__future__")}


def test_every_import_is_declared() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = lambda reqs: {_norm(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in reqs}  # noqa: E731
    core = names(meta["dependencies"])
    extras = {k: names(v) for k, v in meta["optional-dependencies"].items()}
    dists = packages_distributions()
    missing = []
    for module in sorted(_imports()):
        dist = {_norm(d) for d in dists.get(module, [module])}
        where = extras.get(OPTIONAL[module], set()) if module in OPTIONAL else core
        if not dist & where:
            missing.append(f"{module} ({'/'.join(sorted(dist))}) not in {OPTIONAL.get(module, 'dependencies')}")
    assert not missing, missing
    assert {"server", "radiomics", "scale"} <= set(extras)


def test_pip_resolves_the_declared_dependencies(tmp_path: Path) -> None:
    """pip's own resolver reads the metadata (offline: every requirement is already installed here)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
         "--report", str(tmp_path / "r.json"), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Would install liverfib-" in proc.stdout
