"""The Python API: one function per CLI command, same names, same options, typed results.

    >>> import liverfib
    >>> result = liverfib.predict("demo/us/F0_a1027.jpg")          # a path, a list of paths,
    >>> result.predictions[0].stage, result.predictions[0].p_ge_f2  # a folder or a numpy array
    ('F4', 0.5936)

(The file's name carries its reference stage, F0; the shipped model gets this image wrong, as it
gets about half of unseen images wrong: see BENCHMARKS.md.)

Every function takes what its command takes (a path, a list of paths, or for ``predict`` and
``segment`` an in-memory ``numpy`` array / :class:`liverfib.Image`) and returns a frozen dataclass:
the fields a caller needs most, plus ``summary`` (exactly the JSON ``--json`` prints) and ``text``
(what the command prints). Problems the caller can fix raise :class:`liverfib.LiverfibError`.
The CLI (``liverfib.cli``) calls these functions and only parses and prints.

Heavy libraries (torch, sklearn) load inside the functions, so ``import liverfib`` stays light.
"""

from liverfib.api._inputs import Inputs, PathLike  # noqa: F401  (type aliases for callers)
from liverfib.api.mr import agreement, mre, mri_inspect, phantom_mre, phantom_mri, predict_mri, train_mri
from liverfib.api.radiomics import (
    radiomics_deep_features,
    radiomics_evaluate,
    radiomics_extract,
    radiomics_train,
)
from liverfib.api.results import (  # noqa: F401  (every result type stays importable from here)
    AuditResult,
    DeidentifyResult,
    EvaluateResult,
    ExplainResult,
    MreResult,
    PredictResult,
    ReportResult,
    Result,
    SegmentResult,
    SplitResult,
    StagePrediction,
    TrainResult,
)
from liverfib.api.segmentation import segment, train_seg
from liverfib.api.services import batch, deidentify, models, report, serve, serve_dicom
from liverfib.api.ultrasound import audit, evaluate, explain, predict, pseudo_masks, split, train

__all__ = [
    "Result", "StagePrediction", "PredictResult", "SegmentResult", "MreResult",
    "predict", "segment", "mre", "evaluate", "explain", "audit", "split", "train", "report",
    "deidentify", "pseudo_masks", "train_seg", "predict_mri", "train_mri", "mri_inspect", "phantom_mre",
    "phantom_mri", "agreement", "radiomics_extract", "radiomics_train",
    "radiomics_evaluate", "radiomics_deep_features", "serve", "serve_dicom", "batch", "models",
]
