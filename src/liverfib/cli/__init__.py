"""Command-line interface: parses options and calls :mod:`liverfib.api`; no logic here.

One module per command group; ``_app`` holds the Typer app, the shared options and the error edge.
Heavy imports (torch, cv2, sklearn) happen inside commands so ``liverfib --help`` is instant.
"""

from __future__ import annotations

# Importing a group registers its commands on ``app``; the order is the order of ``liverfib --help``.
from liverfib.cli import ultrasound, segmentation, phantom, mre, mri, radiomics, batch, clinical  # noqa: F401  isort: skip
from liverfib.cli._app import _one_line_warning, app, main
from liverfib.cli._examples import _EXAMPLES, _add_examples

_add_examples(app)

__all__ = ["app", "main", "_EXAMPLES", "_one_line_warning"]
