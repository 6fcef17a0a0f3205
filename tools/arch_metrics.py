"""Print the architecture figures of issue 15, measured with ``ast`` over ``src/liverfib``.

Usage: ``python tools/arch_metrics.py [--root src/liverfib] [--json] [--list]``

Every figure is a count of syntax, not of text, so comments and docstrings never count:

* ``torch_load_sites``: calls ``torch.load(...)``.
* ``backward_sites``: calls ``<expr>.backward(...)``.
* ``import_module_uses``: calls ``importlib.import_module(...)`` / ``import_module(...)``.
* ``dcmread_outside_io``: calls ``dcmread(...)`` / ``pydicom.dcmread(...)`` in files not under ``io/``.
* ``files_over_400``: files with more than 400 lines.
* ``functions_over_60``: function definitions (methods and nested ones included) spanning more than 60
  lines, decorators excluded.
* ``packages_without_init``: folders holding ``.py`` files but no ``__init__.py``.
* ``metric_definitions``: function definitions whose name names Dice, bootstrap, ICC or kappa.
* ``atomic_write_helpers``: function definitions whose name contains ``atomic``.
* ``hand_rolled_atomic_writes``: ``os.replace(a, b)``/``os.rename(a, b)`` or ``<path>.replace(target)`` /
  ``<path>.rename(target)`` (one argument: ``str.replace`` takes two) outside ``io/atomic.py``.
* ``bundle_save_load_functions``: public functions named ``save_*``/``load_*`` that save or load a
  model (name contains checkpoint, bundle, model or state).
* ``import_cycles``: strongly connected groups of modules in the import graph (imports inside
  functions included: an arrow is an arrow even when it is lazy).
* ``upward_imports``: imports (lazy ones included) from a floor to a higher one by :data:`FLOORS`, or
  from a base module (:data:`BASE`) to any floor.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

METRIC_NAME = re.compile(r"(dice|bootstrap|(^|_)icc(_|$)|kappa)", re.IGNORECASE)
BUNDLE_NAME = re.compile(r"^(save|load)_\w*(checkpoint|bundle|model|state)\w*$")

#: Top-level package -> floor; a module may import only from its own floor or lower ones.
FLOORS = {
    "io": 0, "preprocess": 1, "models": 2, "inference": 2, "evaluation": 3, "dataset": 3, "training": 4,
    "explain": 5, "report": 6, "mre": 7, "mri": 7, "radiomics": 7, "pipeline": 8,
    "api": 9, "cli": 9, "clinical": 9, "": 9,  # "": the package's own __init__ (the facade)
}
#: Base modules: importable from any floor, they import no floor (only each other).
BASE = {"errors", "image", "config", "progress", "_version"}
#: The one allowed upward arrow: the task table names the modality network builders (lazily).
FLOOR_EXCEPTIONS = {("models.tasks", "mre"), ("models.tasks", "mri")}


def _call_name(node: ast.Call) -> tuple[str | None, str]:
    """``(receiver name or None, attribute/function name)`` of a call."""
    f = node.func
    if isinstance(f, ast.Attribute):
        recv = f.value.id if isinstance(f.value, ast.Name) else None
        return recv, f.attr
    if isinstance(f, ast.Name):
        return None, f.id
    return None, ""


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_pkg: bool, known: set[str]) -> set[str]:
    """Modules of the package that ``module`` imports (anywhere in the file)."""
    out: set[str] = set()
    base_parts = module.split(".") if is_pkg else module.split(".")[:-1]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base_parts[: len(base_parts) - (node.level - 1)]
                mod = ".".join(parent + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for name in names:
            # the longest known module that prefixes the imported name
            parts = name.split(".")
            for i in range(len(parts), 0, -1):
                cand = ".".join(parts[:i])
                if cand in known:
                    if cand != module:
                        out.add(cand)
                    break
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))
    return sorted(comps)


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """``importer -> imported`` for every import that points up by :data:`FLOORS` (see ``BASE``)."""
    out = []
    for mod, deps in sorted(graph.items()):
        rel = mod.partition(".")[2]
        top = rel.split(".")[0]
        for dep in sorted(deps):
            dep_top = dep.partition(".")[2].split(".")[0]
            if dep_top in BASE:
                continue
            if top not in BASE and top not in FLOORS or dep_top not in FLOORS:
                out.append(f"{rel} -> {dep.partition('.')[2]} (package without a floor in FLOORS)")
            elif top in BASE or FLOORS[dep_top] > FLOORS[top]:
                if (rel, dep_top) not in FLOOR_EXCEPTIONS:
                    out.append(f"{rel} -> {dep.partition('.')[2]}")
    return out


def measure(root: Path) -> dict[str, list[str]]:
    """Each figure's name -> the sites (``file:line what``) that make it up."""
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    sites: dict[str, list[str]] = {k: [] for k in (
        "torch_load_sites", "backward_sites", "import_module_uses", "dcmread_outside_io", "files_over_400",
        "functions_over_60", "packages_without_init", "metric_definitions", "atomic_write_helpers",
        "hand_rolled_atomic_writes", "bundle_save_load_functions", "import_cycles", "upward_imports")}
    known = {_module_name(p, root) for p in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        n_lines = len(text.splitlines())
        if n_lines > 400:
            sites["files_over_400"].append(f"{rel} {n_lines}")
        mod = _module_name(path, root)
        graph[mod] = _imports(tree, mod, path.name == "__init__.py", known)
        in_io = rel.startswith("io/")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                recv, name = _call_name(node)
                where = f"{rel}:{node.lineno}"
                if recv == "torch" and name == "load":
                    sites["torch_load_sites"].append(where)
                elif name == "backward" and isinstance(node.func, ast.Attribute):
                    sites["backward_sites"].append(where)
                elif name == "import_module":
                    sites["import_module_uses"].append(where)
                elif name == "dcmread" and not in_io:
                    sites["dcmread_outside_io"].append(where)
                elif name in ("replace", "rename") and rel != "io/atomic.py":
                    if recv == "os" and len(node.args) == 2 or recv != "os" and len(node.args) == 1 \
                            and not node.keywords and isinstance(node.func, ast.Attribute):
                        sites["hand_rolled_atomic_writes"].append(f"{where} .{name}")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                span = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{rel}:{node.lineno} {node.name}"
                if span > 60:
                    sites["functions_over_60"].append(f"{where} {span}")
                if METRIC_NAME.search(node.name):
                    sites["metric_definitions"].append(where)
                if "atomic" in node.name.lower():
                    sites["atomic_write_helpers"].append(where)
                if BUNDLE_NAME.match(node.name):
                    sites["bundle_save_load_functions"].append(where)
    for folder in sorted({p.parent for p in files}):
        if not (folder / "__init__.py").is_file():
            sites["packages_without_init"].append(folder.relative_to(root).as_posix() or ".")
    sites["import_cycles"] = [" <-> ".join(c) for c in _cycles(graph)]
    sites["upward_imports"] = _upward(graph)
    return sites


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent / "src" / "liverfib")
    ap.add_argument("--json", action="store_true", help="print {figure: {count, sites}} as JSON")
    ap.add_argument("--list", action="store_true", help="list the sites under each figure")
    args = ap.parse_args(argv)
    sites = measure(args.root)
    if args.json:
        print(json.dumps({k: {"count": len(v), "sites": v} for k, v in sites.items()}, indent=1))
        return 0
    width = max(map(len, sites))
    for key, found in sites.items():
        print(f"{key:<{width}}  {len(found)}")
        if args.list:
            for s in found:
                print(f"    {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
