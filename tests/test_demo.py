"""The shipped ultrasound staging model on the bundled demo images (demo/us): a regression test.

Each demo file name starts with its true stage (from the grouped test split). The stored reference
``tests/reference/demo_us_staging.json`` holds, for the exact shipped weights (SHA-256), every
image's stage probabilities and predicted stage. A change of weights, preprocessing or class order
fails here; after shipping a new model on purpose, check its demo predictions and rewrite the
reference with ``LIVERFIB_UPDATE_REFERENCE=1 pytest tests/test_demo.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

DEMO = Path(__file__).resolve().parents[1] / "demo" / "us"
REFERENCE = Path(__file__).resolve().parent / "reference" / "demo_us_staging.json"


def _predict(engine: str) -> dict[str, list[float]]:
    from liverfib.inference.predictor import load_predictor
    from liverfib.io import list_images

    predictor = load_predictor("default", engine=engine)
    out = predictor.predict_paths(list_images(DEMO))
    assert not out.errors and predictor.classes == ["F0", "F1", "F2", "F3", "F4"]
    return {p.name: [float(v) for v in row] for p, row in zip(out.paths, out.probs, strict=True)}


def _sha256(bundle: Path) -> str:
    """SHA-256 of the shipped bundle's weights (``weights.safetensors``)."""
    return hashlib.sha256((bundle / "weights.safetensors").read_bytes()).hexdigest()


@pytest.mark.parametrize("engine", ["torch", "auto"])
def test_shipped_model_reproduces_the_demo_reference(engine: str) -> None:
    from liverfib.inference.predictor import DEFAULT_MODEL_PATH

    classes = ["F0", "F1", "F2", "F3", "F4"]
    probs = _predict(engine)
    if os.environ.get("LIVERFIB_UPDATE_REFERENCE") == "1" and engine == "torch":
        record = {
            "model_sha256": _sha256(DEFAULT_MODEL_PATH),
            "classes": classes,
            "images": {n: {"probabilities": [round(v, 5) for v in p], "stage": classes[int(np.argmax(p))]}
                       for n, p in sorted(probs.items())},
        }
        REFERENCE.write_text(json.dumps(record, indent=2) + "\n")
    ref = json.loads(REFERENCE.read_text())
    assert (DEFAULT_MODEL_PATH / "weights.safetensors").stat().st_size < 20 * 1024 * 1024
    assert _sha256(DEFAULT_MODEL_PATH) == ref["model_sha256"], (
        "the shipped staging weights changed; check the new demo predictions and regenerate the reference "
        "(see this module's docstring)"
    )
    assert sorted(probs) == sorted(ref["images"])
    for name, expected in ref["images"].items():
        np.testing.assert_allclose(probs[name], expected["probabilities"], atol=2e-3, err_msg=name)
        assert classes[int(np.argmax(probs[name]))] == expected["stage"], name
    # against the truth (the stage in the file name): the shipped model gets 3 of the 7 right (the demo
    # images were held out of training with their same-scan groups; nested-CV accuracy 0.600, see
    # benchmarks/results/us_staging_default.json)
    wrong = sorted(n for n in probs if classes[int(np.argmax(probs[n]))] != n.split("_")[0])
    assert wrong == ["F0_a1027.jpg", "F1_B7435.jpg", "F2_J6388.jpg", "F4_F3812.jpg"]
