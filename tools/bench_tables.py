#!/usr/bin/env python3
"""Regenerate the tables of BENCHMARKS.md from ``benchmarks/results/*.json`` (or check them).

A table in BENCHMARKS.md is a block between two markers; everything between them is generated::

    <!-- table: results=us_staging_default,us_cv_default metrics=accuracy,macro_auc -->
    | ... generated ... |
    <!-- /table -->

Each named result becomes one row: its title, every requested metric as ``value [lo, hi]``, n and
unit, how often its test subset has been scored, the device, and a link to the JSON. A metric a
result lacks is shown as ``—``.

    python tools/bench_tables.py            # rewrite the tables in place
    python tools/bench_tables.py --check    # exit 1 if a table differs from its JSONs, a named JSON
                                            # is missing, or a JSON is cited by no table
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)
REQUIRED = ("name", "title", "metrics", "n", "unit", "split", "test_scored_count", "command",
            "code_version", "date", "device", "synthetic")


def _parse_spec(spec: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in spec.split():
        key, _, value = part.partition("=")
        out[key] = [v for v in value.split(",") if v]
    if "results" not in out or "metrics" not in out:
        raise SystemExit(f"bench_tables: a table marker needs results=... and metrics=..., got {spec!r}")
    return out


def _fmt(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "—"
    text = _fmt(entry["value"])
    if entry.get("ci"):
        lo, hi = entry["ci"]
        text += f" [{_fmt(lo)}, {_fmt(hi)}]"
    return text


def _load(results_dir: Path, name: str) -> dict:
    path = results_dir / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path.relative_to(ROOT)} (named in BENCHMARKS.md) does not exist")
    record = json.loads(path.read_text())
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"{path.relative_to(ROOT)} lacks {', '.join(missing)}")
    return record


def render(spec: dict[str, list[str]], results_dir: Path) -> str:
    metrics = spec["metrics"]
    head = ["result", *metrics, "n", "test scored", "device", "JSON"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in spec["results"]:
        rec = _load(results_dir, name)
        title = rec["title"] + (" (**synthetic**)" if rec["synthetic"] else "")
        cells = [_cell(rec["metrics"].get(m)) for m in metrics]
        n = f"{rec['n']} {rec['unit']}" + (f" / {rec['groups']} groups" if rec.get("groups") else "")
        link = f"[{name}](benchmarks/results/{name}.json)"
        lines.append("| " + " | ".join([title, *cells, n, str(rec["test_scored_count"]), rec["device"], link]) + " |")
    return "\n".join(lines) + "\n"


def regenerate(doc: str, results_dir: Path) -> tuple[str, set[str]]:
    cited: set[str] = set()

    def _sub(match: re.Match) -> str:
        spec = _parse_spec(match.group("spec"))
        cited.update(spec["results"])
        return match.group(1) + render(spec, results_dir) + match.group(4)

    return BLOCK.sub(_sub, doc), cited


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 on any difference")
    parser.add_argument("--doc", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    doc = args.doc.read_text()
    try:
        new, cited = regenerate(doc, args.results)
    except (FileNotFoundError, ValueError) as exc:
        print(f"bench_tables: {exc}", file=sys.stderr)
        return 1
    uncited = sorted(p.stem for p in args.results.glob("*.json") if p.stem not in cited)
    if args.check:
        problems = []
        if new != doc:
            problems.append("BENCHMARKS.md tables differ from their JSONs; run python tools/bench_tables.py")
        if uncited:
            problems.append("result JSONs cited by no table: " + ", ".join(uncited))
        for p in problems:
            print(f"bench_tables: {p}", file=sys.stderr)
        return 1 if problems else 0
    args.doc.write_text(new)
    if uncited:
        print("note: result JSONs cited by no table: " + ", ".join(uncited), file=sys.stderr)
    print(f"rewrote {len(cited)} result rows in {args.doc.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
