"""Two examples at the end of every command's --help (tested)."""

from __future__ import annotations

import typer

_EXAMPLES: dict[str, tuple[str, str]] = {
    "audit": ("liverfib audit data/us", "liverfib audit data/us -o runs/audit --json"),
    "split": ("liverfib split data/us -o runs/split.csv", "liverfib split data/us -o runs/folds.csv --folds 5"),
    "evaluate": ("liverfib evaluate --model default --data data/us --split runs/split.csv --subset test -o runs/eval",
                 "liverfib evaluate --predictions preds.csv -o runs/eval"),
    "predict": ("liverfib predict demo/us/F0_a1027.jpg", "liverfib predict -i demo/us -o runs/predictions.csv --json"),
    "batch": ("liverfib batch archive/ --task us-staging -o runs/batch",
              "liverfib batch manifest.csv --task ct-segment -o runs/ct --address auto --workers 8"),
    "train": ("liverfib train --data data/us --split runs/split.csv -o runs/us_model",
              "liverfib train --data data/us --split runs/split.csv -o runs/ft --epochs 5 --device cuda"),
    "models": ("liverfib models", "liverfib models '*seg*' --json"),
    "explain": ("liverfib explain demo/us -o runs/explain", "liverfib explain -i demo/us/F0_a1027.jpg -o runs/cam --method gradcam++"),
    "pseudo-masks": ("liverfib pseudo-masks --data data/us -o runs/pseudo",
                     "liverfib pseudo-masks --data data/us -o runs/pseudo --threshold otsu"),
    "segment": ("liverfib segment demo/us -o runs/us_masks", "liverfib segment -i ct.nii.gz -o runs/liver_mask.nii.gz --modality ct"),
    "train-seg": ("liverfib train-seg --list", "liverfib train-seg --task us-liver --data data/us-liver -o runs/seg"),
    "mre": ("liverfib mre runs/phantoms/exam_000 -o runs/mre", "liverfib mre exam/ --mask liver.nii.gz --json"),
    "agreement": ("liverfib agreement --a auto.csv --b manual.csv", "liverfib agreement --a auto.csv --b manual.csv -o runs/agree"),
    "mri-inspect": ("liverfib mri-inspect data/LiQA", "liverfib mri-inspect data/CirrMRI600 --labels labels.csv --json"),
    "predict-mri": ("liverfib predict-mri data/LiQA/Vendor_A/0001-A-S2", "liverfib predict-mri scan.nii.gz --model runs/mri/model --mask mask.nii.gz"),
    "train-mri": ("liverfib train-mri --data data/LiQA -o runs/mri", "liverfib train-mri --data data/CirrMRI600 -o runs/cirr --sequence T2 --labels labels.csv"),
    "deidentify": ("liverfib deidentify study/ anon/ --salt SECRET", "LIVERFIB_DEID_SALT=SECRET liverfib deidentify one.dcm anon/"),
    "serve-dicom": ("liverfib serve-dicom", "liverfib serve-dicom --port 11112 --allow SCANNER1 --data /srv/liverfib"),
    "serve": ("LIVERFIB_TOKEN=secret liverfib serve", "LIVERFIB_TOKEN=secret liverfib serve --port 8080 --no-cam"),
    "report": ("liverfib report demo/us/F0_a1027.jpg -o runs/report", "liverfib report image.dcm -o runs/report --deidentified"),
    "phantom mre": ("liverfib phantom mre -o runs/phantoms --n 5", "liverfib phantom mre -o runs/ge --vendor ge --seed 7"),
    "phantom mri": ("liverfib phantom mri -o runs/liqa_synth", "liverfib phantom mri -o runs/cirr_synth --layout cirrmri --n 9"),
    "radiomics extract": ("liverfib radiomics extract --images data/us --roi fan -o runs/features.parquet",
                          "liverfib radiomics extract --images vols/ --masks masks/ -o runs/f.parquet --config configs/radiomics_ct.yaml"),
    "radiomics deep-features": ("liverfib radiomics deep-features -i data/us -o runs/features/lite0_s123.parquet",
                                "liverfib radiomics deep-features -i data/us -o runs/f_lite1.parquet --backbone tf_efficientnet_lite1"),
    "radiomics train": ("liverfib radiomics train --features runs/features.parquet --split runs/split.csv -o runs/rad",
                        "liverfib radiomics train --features f.parquet --split folds.csv -o runs/rad --algorithm rf"),
    "radiomics evaluate": ("liverfib radiomics evaluate --model runs/rad/model.joblib --features f.parquet --split runs/split.csv",
                           "liverfib radiomics evaluate --model m.joblib --features f.parquet --split s.csv -o runs/rad_eval"),
}


def _add_examples(typer_app: typer.Typer, prefix: str = "") -> None:
    """Put two examples (from ``_EXAMPLES``) at the end of each command's --help."""
    for cmd in typer_app.registered_commands:
        name = cmd.name or (cmd.callback.__name__.rstrip("_").replace("_", "-") if cmd.callback else "")
        ex = _EXAMPLES.get(f"{prefix}{name}")
        if ex and not cmd.hidden:
            cmd.epilog = "Examples:\n\n" + "\n\n".join(f"  $ {e}" for e in ex)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _add_examples(group.typer_instance, f"{prefix}{group.name} ")

