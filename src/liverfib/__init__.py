"""liverfib: liver fibrosis assessment from medical images (research use only).

The Python API mirrors the CLI, one function per command (see :mod:`liverfib.api`)::

    import liverfib
    result = liverfib.predict("demo/us/F0_a1027.jpg")
    print(result.predictions[0].stage)

The API functions load lazily: ``import liverfib`` imports neither torch nor sklearn.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from liverfib._version import __version__
from liverfib.errors import ConfigError, InputError, LiverfibError, ModelError
from liverfib.image import Image

#: Public API functions and result types, loaded from :mod:`liverfib.api` on first use.
_API = (
    "predict", "segment", "mre", "evaluate", "explain", "audit", "split", "train", "report", "deidentify",
    "pseudo_masks", "train_seg", "predict_mri", "train_mri", "mri_inspect", "phantom_mre", "phantom_mri",
    "agreement", "radiomics_extract", "radiomics_deep_features", "radiomics_train", "radiomics_evaluate", "batch", "models",
    "Result", "StagePrediction", "PredictResult", "SegmentResult", "MreResult",
)

__all__ = ["__version__", "Image", "LiverfibError", "InputError", "ConfigError", "ModelError", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from liverfib import api

        return getattr(api, name)
    raise AttributeError(f"module 'liverfib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


# Four API names are also sub-packages (liverfib/mre/, explain/, report/, models/). Importing a
# sub-package sets it as an attribute of this package, which would hide the API function. Such a
# sub-package is made callable instead: ``liverfib.mre(exam)`` calls the API, ``liverfib.mre.phantom``
# is still the module.
_SHADOWED = ("mre", "explain", "report", "models")


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from liverfib import api

        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
