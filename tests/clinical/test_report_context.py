"""A report explains itself (issue 20.9): measured accuracy with CI and the device caveat, overlay legend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def test_report_states_accuracy_caveat_and_legend(make_us_image, tmp_path: Path, fast_models) -> None:
    from PIL import Image

    from liverfib.pipeline.clinical import analyse_file

    png = tmp_path / "scan.png"
    Image.fromarray(make_us_image(np.random.default_rng(0), "B")).save(png)
    analyse_file(png, tmp_path / "r", models=fast_models.derive(pdf=True), name="scan.png")
    html = (tmp_path / "r" / "report.html").read_text()
    assert "How accurate is this model?" in html
    from liverfib.models.catalog import model_accuracy

    figure = model_accuracy("us_staging_default")["figure"]
    stored = json.loads((Path(__file__).resolve().parents[2] / "benchmarks/results/us_staging_default.json").read_text())
    acc = stored["metrics"]["accuracy"]
    assert f"accuracy {acc['value']:.3f} [{acc['ci'][0]:.3f}, {acc['ci'][1]:.3f}]" in figure  # the JSON's figure
    assert stored["split"]["subset"] in figure  # and how it was measured
    assert figure in html  # the measured figure, with its CI, in the report itself
    assert "confounded with the scanner" in html
    assert "Overlay colours:</b> blue outline = ultrasound field of view" in html
    assert "See MODEL_CARD.md" not in html  # a report reader does not have the repository
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["model_accuracy"]["model"] == "us_staging_default"


def test_report_of_a_user_model_says_it_is_unmeasured() -> None:
    from liverfib.pipeline.clinical.context import accuracy_of

    acc = accuracy_of(None, "runs/my/model.pt")
    assert "not measured by liverfib" in acc["figure"] and acc["source"] is None
