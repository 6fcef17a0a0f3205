"""The shipped models, converted to bundles, predict exactly what the old .pt checkpoints did.

``nets()`` opens each shipped model through its public loader; ``inputs()`` gives fixed inputs. The
stored reference outputs were made by running this file with the tree whose loaders read the old
``.pt`` assets (main 5b4f37e)::

    PYTHONPATH=<old tree>/src python tests/models/test_bundle_shipped.py tests/models/data/shipped_refs.npz

The tests recompute them from the bundles with today's loaders. The ``us_staging_default`` entry was
regenerated on 2026-12-03 when that model was retrained on purpose (all other entries unchanged).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REFS = Path(__file__).resolve().parent / "data" / "shipped_refs.npz"


def inputs() -> dict[str, tuple[Any, ...]]:
    import torch

    g = torch.Generator().manual_seed(0)
    return {
        "us_staging_default": (torch.randn(2, 3, 224, 224, generator=g),),
        "us_liver_seg_default": (torch.randn(2, 3, 256, 256, generator=g),),
        "mre_seg_default": (torch.rand(2, 1, 128, 128, generator=g),),
        "mri_seg_default": (torch.rand(2, 1, 256, 256, generator=g),),
        "mri_staging_synthetic": (torch.rand(2, 7, 3, 3, 48, 48, generator=g),
                                  torch.tensor([[True] * 7, [True, False, True, True, False, True, True]])),
    }


def nets() -> dict[str, Any]:
    from liverfib.inference.predictor import load_predictor
    from liverfib.inference.segmenter import load_segmenter
    from liverfib.pipeline._mri_common import liver_segmenter, staging_network
    from liverfib.pipeline.mre_exam import mre_segmenter  # load_bundle + the task table's network

    return {
        "us_staging_default": load_predictor("default").net,
        "us_liver_seg_default": load_segmenter("default").net,
        "mre_seg_default": mre_segmenter("default")[0],
        "mri_seg_default": liver_segmenter("default").net,
        "mri_staging_synthetic": staging_network("default")[0],
    }


def outputs() -> dict[str, np.ndarray]:
    """Name -> output array (dict outputs flattened to ``name.key``)."""
    import torch

    torch.set_num_threads(1)
    out: dict[str, np.ndarray] = {}
    ins = inputs()
    for name, net in nets().items():
        with torch.inference_mode():
            y = net.float().eval()(*[t.contiguous() for t in ins[name]])
        if isinstance(y, dict):
            out.update({f"{name}.{k}": v.float().numpy() for k, v in y.items()})
        else:
            out[name] = y.float().contiguous().numpy()
    return out


@pytest.fixture(scope="module")
def now() -> dict[str, np.ndarray]:
    return outputs()


def test_every_shipped_model_has_a_reference(now: dict[str, np.ndarray]) -> None:
    ref = np.load(REFS)
    assert sorted(ref.files) == sorted(now)


@pytest.mark.parametrize("key", sorted(np.load(REFS).files))
def test_shipped_predictions_unchanged(now: dict[str, np.ndarray], key: str) -> None:
    ref = np.load(REFS)[key]
    assert now[key].shape == ref.shape
    np.testing.assert_allclose(now[key], ref, rtol=0, atol=1e-6)


def test_shipped_bundles_record_provenance() -> None:
    from liverfib.models.assets import ASSETS_DIR, default_bundle_path
    from liverfib.models.bundle import load_bundle
    from liverfib.models.tasks import TASKS

    for task in (t for t in TASKS.values() if t.shipped):
        b = load_bundle(default_bundle_path(task.name), task=task.name)
        assert b.meta["synthetic"] is (task.name in ("mre-seg", "mri-staging")) is task.shipped.synthetic, task
        assert b.meta["metrics"].get("split"), task
    assert not list(ASSETS_DIR.glob("*.pt")), "old .pt assets left: run tools/convert_assets.py"


if __name__ == "__main__":
    np.savez_compressed(sys.argv[1], **outputs())
