"""The Typer app, the error edge (a LiverfibError -> one line, exit 2) and the options shared by commands.

Heavy imports (torch, cv2, sklearn) happen inside commands so ``liverfib --help`` is instant.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core

from liverfib._version import __version__
from liverfib.errors import LiverfibError

if TYPE_CHECKING:
    from liverfib.api import Result


# Flags take no value: show no "<bool>" type beside them in --help.
_display_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = lambda self, ctx: (  # type: ignore[method-assign]
    None if self.is_flag else _display_type(self, ctx)
)

app = typer.Typer(
    name="liverfib",
    help="Liver fibrosis assessment from medical images (research use only).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"liverfib {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """liverfib: audit data, stage fibrosis, evaluate honestly."""
    import warnings

    warnings.showwarning = _one_line_warning


_warned: set[tuple[str, str]] = set()


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """Library warnings (sklearn, torch, ...) as one line each, once: no source lines, no stack."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    if (category.__name__, text) not in _warned:
        _warned.add((category.__name__, text))
        typer.echo(f"warning: {text} ({category.__name__})", err=True)


def _emit(result: Any, as_json: bool, text: str) -> None:
    if as_json:
        from liverfib.io.jsonio import tidy_floats

        typer.echo(json.dumps(tidy_floats(result), indent=2, default=str))
    else:
        typer.echo(text)


def _fail(exc: LiverfibError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _call(as_json: bool, fn: Callable[..., Result], *args: Any, **kwargs: Any) -> None:
    """Call one :mod:`liverfib.api` function; print its text or JSON; a LiverfibError -> one line, exit 2."""
    try:
        result = fn(*args, **kwargs)
    except LiverfibError as exc:
        _fail(exc)
    _emit(result.summary, as_json, result.text)


def _inputs(paths: list[Path] | None, inputs: list[Path] | None) -> list[Path]:
    """Inputs given as arguments and/or with ``-i/--input`` (as in TotalSegmentator)."""
    given = [*(paths or []), *(inputs or [])]
    if not given:
        _fail(LiverfibError("no input given: pass files or folders as arguments or with -i/--input"))
    return given


def _renamed(new_value: Any, old_value: Any, old: str, new: str) -> Any:
    """A deprecated option spelling: still works, says once what replaces it."""
    if old_value is None:
        return new_value
    typer.echo(f"note: {old} is deprecated; use {new}", err=True)
    return old_value


InputOpt = Annotated[
    list[Path] | None, typer.Option("--input", "-i", help="Input file or folder (repeatable); same as the arguments.")
]
StrictFlag = Annotated[
    bool, typer.Option("--strict", help="Stop at the first unreadable or refused file (default: skip and list).")
]


DataDir = Annotated[Path, typer.Argument(help="Dataset root: one sub-folder per label (F0..F4).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", help="cpu | cuda | auto (cuda when available); checked before any model loads.")]
ModelOpt = Annotated[str, typer.Option("--model", help="'default' (shipped) or a model bundle folder/.zip.")]


def main() -> None:  # pragma: no cover - console entry
    try:
        app()
    except LiverfibError as exc:  # safety net for errors raised outside commands
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)

