"""The Python API (issue 20, item 8): top-level functions named after the CLI commands, typed results."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "us"


def test_import_is_light_and_exports_every_command() -> None:
    code = (
        "import sys, liverfib\n"
        "from liverfib import predict, segment, mre, evaluate, explain, audit, split, train, report, models\n"
        "assert all(callable(f) for f in (predict, segment, mre, evaluate, explain, audit, split, train, report, models))\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'timm', 'cv2') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_names_that_are_also_subpackages_stay_callable() -> None:
    import liverfib
    import liverfib.explain.cam  # noqa: F401  (importing a sub-package must not hide the function)
    import liverfib.models.registry  # noqa: F401
    import liverfib.mre.phantom  # noqa: F401
    import liverfib.report.overlay  # noqa: F401

    for name in ("mre", "explain", "report", "models"):
        assert callable(getattr(liverfib, name)), name
    assert liverfib.mre.phantom.__name__ == "liverfib.mre.phantom"
    assert "us_staging_default" in {m["name"] for m in liverfib.models().summary["shipped"]}


@pytest.fixture(scope="module")
def demo_predictions():
    import liverfib

    return liverfib.predict(str(DEMO / "F0_a1027.jpg"), engine="torch")


def test_predict_a_string_is_one_path(demo_predictions) -> None:
    from liverfib.api import PredictResult, StagePrediction

    assert isinstance(demo_predictions, PredictResult)
    assert len(demo_predictions.predictions) == 1  # not one per character of the string
    p = demo_predictions.predictions[0]
    assert isinstance(p, StagePrediction)
    assert p.stage in ("F0", "F1", "F2", "F3", "F4")
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert demo_predictions.summary["n"] == 1 and demo_predictions.text.startswith("model: ")


def test_predict_list_folder_and_array_agree(demo_predictions) -> None:
    import liverfib
    from liverfib.io import read_image

    by_list = liverfib.predict([DEMO / "F0_a1027.jpg", DEMO / "F4_F9024.jpg"], engine="torch")
    assert [Path(p.path).name for p in by_list.predictions] == ["F0_a1027.jpg", "F4_F9024.jpg"]
    array = read_image(DEMO / "F0_a1027.jpg").array
    by_array = liverfib.predict(array, engine="torch").predictions[0]
    assert by_array.probabilities == pytest.approx(demo_predictions.predictions[0].probabilities, abs=1e-4)
    image = read_image(DEMO / "F4_F9024.jpg")
    assert liverfib.predict([image], engine="torch").predictions[0].stage == by_list.predictions[1].stage


def test_api_errors_are_liverfib_errors(tmp_path: Path) -> None:
    import liverfib

    with pytest.raises(liverfib.InputError, match="file or folder not found"):
        liverfib.predict(tmp_path / "missing.png")
    with pytest.raises(liverfib.InputError, match="not ultrasound|blank"):
        liverfib.predict(np.zeros((64, 64), np.uint8))


def test_cli_calls_the_api_not_functions_by_name() -> None:
    import liverfib.cli as cli

    source = "\n".join(f.read_text() for f in Path(cli.__file__).parent.glob("*.py"))  # the cli package
    assert not hasattr(cli, "_run")
    assert "getattr(pipeline" not in source
    assert not re.search(r'_call\(\s*as_json,\s*"', source)  # no function named by a string


def test_readme_python_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[0] in ("F0", "F1", "F2", "F3", "F4")
    assert lines[-1].startswith("refused: no/such/file.png")
