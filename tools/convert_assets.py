"""Convert old ``.pt`` checkpoints (torch.save of a dict) into model bundles (liverfib.models.bundle).

Usage::

    python tools/convert_assets.py                 # every src/liverfib/assets/*.pt, in place
    python tools/convert_assets.py PATH.pt [...]   # given checkpoints (trained runs)
    python tools/convert_assets.py --keep          # leave the .pt (and sidecar .yaml) files in place

``X.pt`` (and its model card ``X.yaml`` when present) becomes the bundle folder ``X/``: the tensors
are copied as they are (float16 stays float16), so the converted model predicts exactly what the
checkpoint did. Idempotent: an asset without a ``.pt`` is left alone; a ``.pt`` beside an existing
bundle (a re-trained asset merged in) replaces that bundle. Every known checkpoint format maps onto
the bundle fields; any field not mapped is kept under ``extra``. Loading uses
``torch.load(weights_only=True)`` (no code from the file is run).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parent.parent / "src" / "liverfib" / "assets"

#: old checkpoint ``format`` -> bundle task
TASK_OF_FORMAT = {
    "liverfib-staging/1": "us-staging",
    "liverfib-segmentation/1": "seg-2d",
    "liverfib-mre-seg/1": "mre-seg",
    "liverfib-mri-segmentation/1": "mri-seg",
    "liverfib-mri-staging/1": "mri-staging",
}


def bundle_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """``save_bundle`` keyword arguments for an old checkpoint dict (its ``state_dict`` excluded)."""
    fmt = payload.get("format")
    if fmt not in TASK_OF_FORMAT:
        raise SystemExit(f"unknown checkpoint format {fmt!r}; known: {', '.join(TASK_OF_FORMAT)}")
    rest = {k: v for k, v in payload.items() if k not in ("format", "state_dict")}
    info = rest.get("info") if isinstance(rest.get("info"), dict) else {}
    out: dict[str, Any] = {"task": TASK_OF_FORMAT[fmt], "trained_at": "unknown (converted from .pt)"}
    if fmt == "liverfib-staging/1":
        model = rest.pop("model")
        train_cfg = rest.get("train_config") or {}
        pre = rest.pop("preprocess")
        out.update(
            network={"name": "StagingNet", "args": model},
            classes=rest.pop("classes"),
            preprocessing=pre,
            input={"size": [pre.get("img_size"), pre.get("img_size")], "channels": 3},
            metrics={"split": "val", "values": rest.pop("val_metrics", {})},
            training_data={"n_train": rest.pop("n_train", None)},
            seed=train_cfg.get("seed"),
            code_version=f"liverfib {rest.pop('liverfib_version', 'unknown')}",
            synthetic=bool(rest.pop("synthetic", False)),
        )
    elif fmt == "liverfib-segmentation/1":
        model = rest.pop("model")
        cfg = rest.get("config") or {}
        pre = rest.pop("preprocess")
        target = rest.get("target", "liver")
        out.update(
            task="us-liver-seg" if target == "liver" else "us-cam-seg",
            network={"name": model["arch"], "args": model},
            classes=["background", target],
            preprocessing=pre,
            input={"size": [pre.get("img_size"), pre.get("img_size")], "channels": model.get("in_channels", 3)},
            training_data={"description": rest.pop("train_data", None)},
            metrics={"split": "val", "values": {"dice_mean": rest.pop("val_dice")}} if "val_dice" in rest
            else {"split": "none recorded with the weights (see card.yaml)", "values": {}},
            seed=cfg.get("seed"),
            synthetic=bool(rest.pop("synthetic", False)),
        )
    elif fmt == "liverfib-mre-seg/1":
        cfg = rest.get("train_config") or {}
        metrics = rest.pop("metrics", {})
        out.update(
            network={"name": rest.pop("model"), "args": {"in_channels": rest.pop("in_channels")}},
            classes=["background", "liver"],
            preprocessing={"img_size": rest.pop("img_size")},
            input={"size": [cfg.get("img_size"), cfg.get("img_size")], "channels": 2},
            metrics={"split": "val", "values": metrics},
            training_data={"description": "phantom MRE exams", "n_train_exams": metrics.get("n_train_exams")},
            seed=cfg.get("seed"),
            synthetic=True,  # the MRE segmenter has only ever been trained on phantoms
        )
    elif fmt == "liverfib-mri-segmentation/1":
        model = rest.pop("model")
        out.update(
            network={"name": model["arch"], "args": model},
            classes=["background", "liver"],
            preprocessing={"img_size": model.get("img_size"), "threshold": model.get("threshold")},
            input={"size": [model.get("img_size"), model.get("img_size")], "channels": 1},
            metrics={"split": "heldout", "values": info.get("heldout", {})},
            training_data={"description": info.get("trained_on")},
            synthetic=bool(info.get("synthetic", "SYNTHETIC only" in str(info.get("trained_on", "")))),
        )
    else:  # liverfib-mri-staging/1
        model = rest.pop("model")
        data = str(info.get("data", ""))
        out.update(
            network={"name": model.get("encoder", "small_cnn"), "args": model},
            classes=None,
            preprocessing={k: model[k] for k in ("crop_size", "mask_input", "register_phases") if k in model},
            input={"channels": len(model.get("phases", []))},
            metrics={"split": "heldout", "values": info.get("heldout", {})},
            training_data={"description": info.get("data")},
            synthetic=bool(info.get("synthetic", "SYNTHETIC only" in data)),
        )
    out["extra"] = rest
    return out


def convert(pt: Path, *, keep: bool = False) -> Path:
    """Write the bundle folder ``pt.with_suffix('')`` from ``pt`` (and its card ``.yaml``)."""
    import torch

    from liverfib.models.bundle import save_bundle

    payload = torch.load(pt, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise SystemExit(f"{pt}: not a liverfib checkpoint dict")
    fields = bundle_fields(payload)
    card_path = pt.with_suffix(".yaml")
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else None
    dest = pt.with_suffix("")
    if dest.exists():
        shutil.rmtree(dest)
    # half=False: keep each tensor's stored dtype (the old files already hold float16 weights)
    save_bundle(dest, payload["state_dict"], card=card, half=False, **fields)
    if not keep:
        pt.unlink()
        if card is not None:
            card_path.unlink()
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help=".pt checkpoints (default: every src/liverfib/assets/*.pt)")
    ap.add_argument("--keep", action="store_true", help="keep the .pt and card .yaml files")
    args = ap.parse_args(argv)
    paths = args.paths or sorted(ASSETS.glob("*.pt"))
    if not paths:
        print("nothing to convert (no .pt files)")
    for pt in paths:
        print(f"{pt} -> {convert(pt, keep=args.keep)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
