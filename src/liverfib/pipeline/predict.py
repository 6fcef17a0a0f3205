"""Stage ultrasound images with a model bundle: per-image stage and probabilities, optional CSV."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError, ModelError
from liverfib.pipeline._common import collect_files, printable, write_rows

__all__ = ["run_predict"]


def run_predict(
    paths: Sequence[Path],
    *,
    model: str = "default",
    tta: bool = False,
    batch_size: int = 16,
    out_csv: Path | None = None,
    engine: str = "auto",
    strict: bool = False,
) -> tuple[dict[str, Any], str]:
    """Stage each image; returns per-image stage, probabilities and binary-task probabilities.

    ``engine``: ``auto`` runs the network in ONNX Runtime when it is installed (same weights,
    ~2-3x faster on CPU), ``torch`` forces PyTorch. Inputs, options and ``out_csv`` are checked
    before the model loads (a bad input fails in well under a second); ``out_csv`` is written
    atomically and only when at least one image was staged, so a failed run never replaces an
    earlier file. Unreadable files are skipped and listed; ``strict`` stops at the first one."""
    from liverfib.inference.predictor import load_predictor, stage_files

    _check_options(model, batch_size, engine, out_csv)
    files = collect_files(paths)
    loaded: dict[str, Any] = {}

    def load() -> Any:
        loaded["predictor"] = load_predictor(model, engine=engine)
        return loaded["predictor"]

    out = stage_files(files, load, tta=tta, batch_size=batch_size, progress=len(files) > 8)
    if not out.paths:
        raise InputError(f"no image could be staged ({len(out.errors)} refused): " +
                         "; ".join(printable(e) for _, e in out.errors[:3]))
    if strict and out.errors:
        raise InputError(f"--strict: {len(out.errors)} file(s) refused, first: {out.errors[0][1]}")
    predictor = loaded["predictor"]
    results = out.as_records()
    summary = {
        "model": predictor.describe(),
        "n": len(results),
        "predictions": results,
        "n_skipped": len(out.errors),
        "errors": [{"path": str(p), "error": e} for p, e in out.errors],
    }
    if out_csv is not None:
        _write_predictions_csv(results, predictor.classes, out_csv)
        summary["out"] = str(out_csv)
    return summary, _format_predictions(predictor, results, out.errors, out_csv)


def _check_options(model: str, batch_size: int, engine: str, out_csv: Path | None) -> None:
    """Fail on bad options and outputs before any model loads."""
    from liverfib.inference.onnx_engine import ENGINES
    from liverfib.io.outputs import check_output_file

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if engine not in ENGINES:
        from liverfib.errors import unknown_choice

        raise unknown_choice("engine", engine, ENGINES)
    if str(model) != "default" and not Path(model).exists():
        raise ModelError(f"--model {model}: model bundle not found (use 'default' or the model/ folder "
                         "(or .zip) written by 'liverfib train')")
    if out_csv is not None:
        check_output_file(out_csv, (".csv",))


def _write_predictions_csv(results: list[dict[str, Any]], classes: Sequence[str], out_csv: Path) -> None:
    """One row per staged image: path, stage, one probability per class, binary-task probabilities."""
    cols = ["path", "stage"] + [f"prob_{c}" for c in classes] + ["p_ge_f2", "p_ge_f3", "p_f4", "warning"]
    flat = [
        {
            "path": r["path"],
            "stage": r["stage"],
            **{f"prob_{k}": v for k, v in r["probabilities"].items()},
            "p_ge_f2": r["p_ge_f2"],
            "p_ge_f3": r["p_ge_f3"],
            "p_f4": r["p_f4"],
            "warning": r.get("warning", ""),
        }
        for r in results
    ]
    write_rows(flat, out_csv, cols)


def _format_predictions(
    predictor: Any, results: list[dict[str, Any]], errors: list[tuple[Any, str]], out_csv: Path | None
) -> str:
    head = f"{'file':32s} {'stage':5s} " + " ".join(f"{c:>6s}" for c in predictor.classes) + "  P(>=F2) note"
    lines = [f"model: {predictor.describe()['name']}  (research use only)", head]
    for r in results:
        probs = " ".join(f"{v:6.2f}" for v in r["probabilities"].values())
        lines.append(
            f"{_display_name(r['path'])[:32]:32s} {r['stage']:5s} {probs}  {r['p_ge_f2']:6.2f}  {r.get('warning', '')}"
        )
    lines += [f"skipped: {printable(e)}" for _, e in errors]
    if errors:
        lines.append(f"{len(errors)} file(s) skipped, reasons above (--strict stops at the first)")
    if out_csv is not None:
        lines.append(f"wrote {printable(str(out_csv))}")
    return "\n".join(lines)


def _display_name(path: str) -> str:
    """A file name safe to print on any terminal (non-UTF-8 bytes shown as \\xNN)."""
    return printable(Path(path).name)
