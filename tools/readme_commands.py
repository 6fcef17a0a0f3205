#!/usr/bin/env python3
"""The ``liverfib ...`` lines of README.md: extract them, check their flags, or run them on small data.

A command is a line of a ```bash block that starts with ``liverfib `` (or ``.venv/bin/liverfib ``);
backslash continuations are joined, a trailing ``# comment`` is dropped, and each optional ``[...]``
part is dropped for running (the flag check also tries it in, once per ``a|b|c`` alternative).

    python tools/readme_commands.py --list     # the commands, one per line with its README line
    python tools/readme_commands.py --check    # every subcommand exists and accepts every flag used
    python tools/readme_commands.py --run      # run them all in README order on small generated data
                                               # (tools/_readme_run.py), print a table; exit 1 on a failure
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_FENCE = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_PROGRAMS = ("liverfib ", ".venv/bin/liverfib ")


@dataclass(frozen=True)
class ReadmeCommand:
    """One README command: its line, its text as written and its arguments (optional parts dropped)."""

    line: int
    text: str
    argv: tuple[str, ...]
    optional: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def name(self) -> str:
        """The subcommand words (``radiomics train``), without options or inputs."""
        words = []
        for token in self.argv:
            if token.startswith("-") or "/" in token or "." in token:
                break
            words.append(token)
        return " ".join(words[:2]) if words[:1] in (["radiomics"], ["phantom"]) else " ".join(words[:1])


def _strip_comment(line: str) -> str:
    """Drop a ``# comment`` that starts outside quotes after whitespace."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _logical_lines(block: str, first_line: int) -> list[tuple[int, str]]:
    """Lines of a bash block with backslash continuations joined: ``(README line, text)``."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for offset, raw in enumerate(block.splitlines()):
        text = _strip_comment(raw) if pending is None else raw.strip()
        if pending is not None:
            text = pending[1] + " " + _strip_comment(text)
        start = pending[0] if pending is not None else first_line + offset
        if text.endswith("\\"):
            pending = (start, text[:-1].rstrip())
            continue
        pending = None
        out.append((start, text.strip()))
    return out


def extract_commands(readme: str) -> list[ReadmeCommand]:
    """Every ``liverfib`` command of the README's bash blocks, in README order."""
    commands = []
    for match in _FENCE.finditer(readme):
        first = readme.count("\n", 0, match.start(1)) + 1
        for line, text in _logical_lines(match.group(1), first):
            program = next((p for p in _PROGRAMS if text.startswith(p)), None)
            if program is None:
                continue
            optional = tuple(tuple(shlex.split(part)) for part in _OPTIONAL.findall(text))
            argv = tuple(shlex.split(_OPTIONAL.sub(" ", text[len(program):])))
            commands.append(ReadmeCommand(line, text, argv, optional))
    return commands


def _variants(command: ReadmeCommand) -> list[tuple[str, ...]]:
    """The arguments as run, plus one variant per optional part and per ``a|b`` alternative in it."""
    variants = [command.argv]
    for part in command.optional:
        choices = [t.split("|") if "|" in t and not t.startswith("-") else [t] for t in part]
        for k in range(max(len(c) for c in choices)):
            variants.append(command.argv + tuple(c[min(k, len(c) - 1)] for c in choices))
    return variants


def _usage_error() -> type[Exception]:
    try:  # typer >= 0.2x carries its own copy of click
        from typer._click.exceptions import UsageError
    except ImportError:  # pragma: no cover - older typer on click
        from click.exceptions import UsageError
    return UsageError


def _check_argv(root, argv: tuple[str, ...]) -> str | None:  # type: ignore[no-untyped-def]
    """Parse ``argv`` with the CLI's own parser (no command runs); the problem found, or None."""
    command, rest, path = root, list(argv), ["liverfib"]
    while hasattr(command, "commands") and not (rest and rest[0].startswith("-")):  # a group: a subcommand next
        if not rest or rest[0] not in command.commands:
            return f"no subcommand {rest[0] if rest else '(none)'!r} under {' '.join(path)}"
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    if hasattr(command, "commands"):  # options of a group itself (--help, --version): names only
        known = {"--help", *(o for p in command.params for o in p.opts + p.secondary_opts)}
        unknown = [t for t in rest if t.startswith("-") and t not in known]
        return f"{' '.join(path)}: No such option: {unknown[0]}" if unknown else None
    try:  # no resilient parsing: it would swallow an unknown option
        command.make_context(" ".join(path), rest)
    except _usage_error() as exc:
        return f"{' '.join(path)}: {exc.format_message()}"  # type: ignore[attr-defined]
    return None


def check_commands(commands: list[ReadmeCommand]) -> list[str]:
    """One line per README command whose subcommand or flags the CLI does not accept."""
    import typer

    from liverfib.cli import app

    root = typer.main.get_command(app)
    problems = []
    for command in commands:
        for argv in _variants(command):
            problem = _check_argv(root, argv)
            if problem:
                problems.append(f"README line {command.line}: {problem}  [{' '.join(argv)}]")
                break
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="print the commands")
    mode.add_argument("--check", action="store_true", help="check subcommands and flags (no command runs)")
    mode.add_argument("--run", action="store_true", help="run every command on small generated data")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--keep", type=Path, help="--run: work in this folder and keep it (default: a temp folder)")
    parser.add_argument("--only", help="--run: only commands whose text contains this (with --keep DIR of an"
                        " earlier run: on its outputs)")
    parser.add_argument("--timeout", type=float, default=600, help="--run: seconds per command")
    args = parser.parse_args(argv)
    commands = extract_commands(args.readme.read_text())
    if args.list:
        for command in commands:
            print(f"{command.line:4d}  {command.text}")
        return 0
    if args.check:
        problems = check_commands(commands)
        print("\n".join(problems) or f"{len(commands)} README commands: subcommands and flags accepted")
        return 1 if problems else 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _readme_run import run_commands

    return run_commands(commands, keep=args.keep, only=args.only, timeout_s=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
