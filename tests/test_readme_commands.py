"""Every ``liverfib`` command in README.md names a real subcommand and only flags it accepts.

The commands are parsed by the CLI's click app (nothing runs). ``tools/readme_commands.py --run``
runs them all on small data (minutes, not part of this suite).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("readme_commands", ROOT / "tools" / "readme_commands.py")
assert _spec is not None and _spec.loader is not None
readme_commands = importlib.util.module_from_spec(_spec)
sys.modules["readme_commands"] = readme_commands
_spec.loader.exec_module(readme_commands)

README = (ROOT / "README.md").read_text()


def test_extract_joins_continuations_drops_comments_and_optional_parts():
    text = (
        "# t\n\n```bash\n"
        "make demo   # not liverfib\n"
        "liverfib evaluate --model m --data d \\\n"
        "                  --subset test --out o   # a comment\n"
        "# liverfib commented out\n"
        "liverfib predict demo/us --json [--engine auto|torch] [--tta]\n"
        "```\n\n```\nliverfib not-bash\n```\n"
    )
    commands = readme_commands.extract_commands(text)
    assert [c.line for c in commands] == [5, 8]
    assert commands[0].argv == ("evaluate", "--model", "m", "--data", "d", "--subset", "test", "--out", "o")
    assert commands[1].argv == ("predict", "demo/us", "--json")
    assert commands[1].optional == (("--engine", "auto|torch"), ("--tta",))
    variants = readme_commands._variants(commands[1])
    assert ("predict", "demo/us", "--json", "--engine", "torch") in variants
    assert ("predict", "demo/us", "--json", "--tta") in variants


def test_readme_has_the_commands_of_every_workflow():
    names = {c.name for c in readme_commands.extract_commands(README)}
    assert len(readme_commands.extract_commands(README)) >= 50
    for name in ("audit", "split", "train", "evaluate", "predict", "explain", "segment", "train-seg", "mre",
                 "phantom mre", "phantom mri", "predict-mri", "train-mri", "radiomics extract", "radiomics train",
                 "report", "deidentify", "serve", "serve-dicom", "batch"):
        assert name in names, name


def test_every_readme_command_parses():
    problems = readme_commands.check_commands(readme_commands.extract_commands(README))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("old, new, expected", [
    ("--val-fraction 0.2 --img-size 128", "--val-frac 0.2 --img-size 128", "No such option"),
    ("liverfib pseudo-masks", "liverfib pseudo-mask", "no subcommand 'pseudo-mask'"),
    ("--unit slice --out t1.csv", "--unit slice t1.csv", "unexpected extra argument"),
    ("[--target F2]", "[--target-class F2]", "No such option"),
    (".venv/bin/liverfib --help", ".venv/bin/liverfib --hepl", "No such option"),
    ("--json [--phases T2,GED4]", "--json [--phases]", "requires an argument"),
])
def test_a_renamed_flag_or_command_is_caught(old, new, expected):
    assert old in README
    problems = readme_commands.check_commands(readme_commands.extract_commands(README.replace(old, new, 1)))
    assert len(problems) == 1 and expected in problems[0], problems


def test_the_runner_placeholders_and_edits_are_still_in_the_readme():
    """``--run`` maps README placeholders to small data; a placeholder the README dropped is stale."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import _readme_run
    finally:
        sys.path.remove(str(ROOT / "tools"))
    commands = readme_commands.extract_commands(README)
    tokens = {t.rstrip("/") for c in commands for t in c.argv}
    assert set(_readme_run._PLACEHOLDERS) <= tokens, set(_readme_run._PLACEHOLDERS) - tokens
    text = "\n".join(" ".join(c.argv) for c in commands)
    for old, _new in _readme_run._EDITS:
        assert old in text, old
    for key in _readme_run._SKIPS:
        assert key in text, key
