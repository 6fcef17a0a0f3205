"""liverfib: liver fibrosis assessment from medical images (research use only)."""

from __future__ import annotations

from liverfib.errors import ConfigError, InputError, LiverfibError, ModelError
from liverfib.image import Image

__version__ = "0.1.0"

__all__ = ["__version__", "Image", "LiverfibError", "InputError", "ConfigError", "ModelError"]
