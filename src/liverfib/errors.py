"""The one error family of liverfib.

Every problem the user can fix (bad input file, wrong option, missing model) raises a subclass of
:class:`LiverfibError`. The CLI catches it at the edge, prints one line and exits non-zero.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "LiverfibError",
    "InputError",
    "ConfigError",
    "ModelError",
    "unknown_choice",
]


class LiverfibError(Exception):
    """Base class of all user-facing errors."""


class InputError(LiverfibError):
    """A file, folder or value given by the user cannot be used (corrupt, wrong kind, empty)."""


class ConfigError(LiverfibError):
    """An option or configuration value is invalid."""


class ModelError(LiverfibError):
    """A model checkpoint is missing, corrupt or incompatible."""


def unknown_choice(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """Build an error for an unknown registry name, listing valid choices and the closest match."""
    valid = sorted(choices)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"Unknown {kind} '{name}'. Valid choices: {', '.join(valid)}.{hint}")
