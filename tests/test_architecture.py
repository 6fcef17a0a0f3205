"""The architecture rules of ARCHITECTURE.md, measured with ``ast`` by ``tools/arch_metrics.py``
(no liverfib import: fast, and a broken module cannot hide an arrow)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "liverfib"


def _arch_metrics():
    spec = importlib.util.spec_from_file_location("arch_metrics", ROOT / "tools" / "arch_metrics.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("arch_metrics", module)
    spec.loader.exec_module(module)
    return module


am = _arch_metrics()


@pytest.fixture(scope="module")
def sites() -> dict[str, list[str]]:
    return am.measure(SRC)


#: figure -> the most it may be (issue 15's targets; 0 means none at all).
CEILINGS = {
    "upward_imports": 0,
    "files_over_400": 0,
    "functions_over_60": 5,
    "import_cycles": 0,
    "metric_definitions": 5,
    "import_module_uses": 0,
    "dcmread_outside_io": 0,
    "torch_load_sites": 1,
    "backward_sites": 1,
    "packages_without_init": 0,
}
#: figure -> exactly this many (one atomic write; one bundle save, one bundle load).
EXACT = {"atomic_write_helpers": 1, "bundle_save_load_functions": 2}


@pytest.mark.parametrize("figure", sorted(CEILINGS))
def test_figure_stays_under_its_ceiling(sites, figure: str) -> None:
    found = sites[figure]
    assert len(found) <= CEILINGS[figure], f"{figure}: {len(found)} > {CEILINGS[figure]}:\n" + "\n".join(found)


@pytest.mark.parametrize("figure", sorted(EXACT))
def test_figure_is_exact(sites, figure: str) -> None:
    assert len(sites[figure]) == EXACT[figure], f"{figure}:\n" + "\n".join(sites[figure])


def test_every_package_has_a_floor() -> None:
    """A new top-level package must be placed in the floor map, or nothing checks its arrows."""
    tops = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    tops |= {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    assert tops - set(am.FLOORS) - am.BASE == set()


def test_floor_order_is_the_documented_one() -> None:
    """Modality packages sit just below pipeline; evaluation (metrics) below training; servers on top."""
    f = am.FLOORS
    assert f["io"] < f["preprocess"] < f["models"] == f["inference"] < f["evaluation"] < f["training"]
    assert f["training"] < f["explain"] < f["report"] < f["pipeline"] < f["clinical"] == f["api"] == f["cli"]
    assert all(f["report"] < f[m] < f["pipeline"] for m in ("mre", "mri", "radiomics"))
    assert f["dataset"] < f["pipeline"]


def test_upward_detects_an_arrow_up_and_a_base_module_importing_a_floor() -> None:
    graph = {
        "liverfib.io.jsonio": {"liverfib.report.plots", "liverfib.errors"},
        "liverfib.errors": {"liverfib.io.atomic"},
        "liverfib.mre.exam": {"liverfib.pipeline.mre"},
        "liverfib.mri.staging": {"liverfib.training.trainer", "liverfib.image"},
        "liverfib.clinical.serve": {"liverfib.pipeline.clinical"},
    }
    assert am._upward(graph) == ["errors -> io.atomic", "io.jsonio -> report.plots", "mre.exam -> pipeline.mre"]


def test_measure_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    pkg = tmp_path / "liverfib"
    for sub in ("io", "pipeline"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "pipeline" / "run.py").write_text("def run():\n    return 1\n")
    (pkg / "io" / "reader.py").write_text("def read():\n    from liverfib.pipeline.run import run\n    return run()\n")
    assert am.measure(pkg)["upward_imports"] == ["io.reader -> pipeline.run"]
