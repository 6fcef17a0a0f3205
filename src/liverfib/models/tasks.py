"""The task registry: every model liverfib trains or ships, as one table of plain data.

A task names what a model does (``us-staging``: F0-F4 from a B-mode image; ``mri-seg``: liver mask
of an MR/CT slice). Each row says the modality, the kind of output, how to build its network from
a bundle's ``network`` entry, the preprocessing inference applies and, for a model liverfib ships,
its :class:`ShippedModel` (bundle folder under ``liverfib/assets``, what ``liverfib models`` and reports
say about it, and the ``benchmarks/results/<name>.json`` holding its measured figure).
Bundles (:mod:`liverfib.models.bundle`) record their task; loaders check it. Training entry points
are wired in ``liverfib.pipeline`` (a floor above), keyed by these names; the CLI takes its task
choices from :func:`list_tasks` (TotalSegmentator's task table, timm's ``create_model``).

To add a task: one :class:`Task` row in :data:`TASKS` (plus its training function in
``pipeline/`` when it is trainable with ``train-seg``). See ARCHITECTURE.md. Nothing here loads torch.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from liverfib.errors import unknown_choice

__all__ = ["Task", "ShippedModel", "TASKS", "get_task", "list_tasks", "task_rows", "shipped_models",
           "build_network", "network_from_bundle", "task_for_train_name"]

Kind = Literal["classify", "segment2d", "segment3d", "regress"]


@dataclass(frozen=True)
class ShippedModel:
    """A shipped model: its bundle folder (``name``, under ``liverfib/assets``), what it does and which
    commands use it; ``figure``/``source`` are the documented measurement, used when
    ``benchmarks/results/<result>.json`` is absent."""

    name: str
    task: str  # what it does, in words (``liverfib models``' "task" field)
    command: str
    bundle: str  # folder under liverfib/assets (the same as name)
    figure: str
    source: str
    synthetic: bool = False
    result: str | None = None  # benchmarks/results/<result>.json, preferred when present
    caveat: str = ""  # what a reader of a single result must know (confounding, synthetic training)


@dataclass(frozen=True)
class Task:
    """One registry row. ``network`` builds an untrained ``nn.Module`` from a bundle's ``network``
    entry (``{"name": ..., "args": {...}}``)."""

    name: str
    modality: str  # us, mre, mri (MR and CT)
    kind: Kind
    network: Callable[[Mapping[str, Any]], Any]
    preprocessing: str  # what inference does to an input before the network (one line)
    help: str
    train_seg_name: str | None = None  # the `liverfib train-seg --task` name, when trainable there
    shipped: ShippedModel | None = None  # the model liverfib ships for this task (``--model default``)

    @property
    def default_bundle(self) -> str | None:
        """The shipped bundle (folder under ``liverfib/assets``), or None."""
        return self.shipped.bundle if self.shipped else None


# -- network factories: a bundle's network entry -> nn.Module (untrained; the bundle's weights go in after)
def _us_staging_net(network: Mapping[str, Any]) -> Any:
    from liverfib.models.staging import StagingNet

    return StagingNet.from_config(network["args"])


def _seg2d_net(network: Mapping[str, Any]) -> Any:
    from liverfib.models.segmentation import build_seg_model

    args = network["args"]
    return build_seg_model(args["arch"], in_channels=int(args.get("in_channels", 3)), pretrained=False)


def _mre_seg_net(network: Mapping[str, Any]) -> Any:
    from liverfib.mre.models import create_seg_model

    return create_seg_model(network["name"], int(network["args"].get("in_channels", 2)))


def _mri_seg_net(network: Mapping[str, Any]) -> Any:
    from liverfib.mri.segmentation import SegModelConfig, build_seg_net

    return build_seg_net(SegModelConfig(**network["args"]))


def _mri_staging_net(network: Mapping[str, Any]) -> Any:
    from liverfib.mri.slice_staging import SliceStagingConfig, build_slice_net
    from liverfib.mri.staging import StagingConfig, build_staging_net

    args = network["args"]
    if args.get("layout") == "cirrmri":
        return build_slice_net(SliceStagingConfig(**args))
    return build_staging_net(StagingConfig(**args))


TASKS: dict[str, Task] = {t.name: t for t in (  # row order is the order `liverfib models` lists shipped models
    Task("us-staging", "us", "classify", _us_staging_net,
         "gray B-mode -> optional fan mask/crop -> resize -> ImageNet normalise (3 channels)",
         "fibrosis stage F0-F4 from a B-mode image (liverfib train / predict)",
         shipped=ShippedModel(
             "us_staging_default", "ultrasound staging F0-F4", "predict, explain, report, serve",
             "us_staging_default",
             "5-stage accuracy 0.600 [95% CI 0.559, 0.642], macro-AUC 0.866 [0.845, 0.886] in nested grouped "
             "5-fold cross-validation of this training procedure over 1176 distinct images of the public "
             "liver-us-fibrosis set (whole same-scan groups held out; accuracy 0.551 on scanner S1, 0.680 on S2)",
             "benchmarks/results/us_staging_default.json (BENCHMARKS.md §4)", result="us_staging_default",
             caveat="In the public training set the stage is confounded with the scanner (two devices with "
             "different stage mixes; accuracy 0.551 on one, 0.680 on the other), so part of what the model learned "
             "may be the device rather than the liver. Images from other scanners are untested.")),
    Task("us-liver-seg", "us", "segment2d", _seg2d_net,
         "whole frame resized to img_size, ImageNet normalised; threshold, largest component",
         "ultrasound liver masks (image/mask pairs)", train_seg_name="us-liver",
         shipped=ShippedModel(
             "us_liver_seg_default", "ultrasound liver segmentation", "segment --modality us, explain",
             "us_liver_seg_default",
             "Dice 0.665 [0.601, 0.724] (leave-one-subject-out CV, 27 images, 2 subjects)",
             "benchmarks/results/us_liver_seg_loso.json", result="us_liver_seg_loso")),
    Task("us-cam-seg", "us", "segment2d", _seg2d_net,
         "whole frame resized to img_size, ImageNet normalised; threshold",
         "ultrasound CAM pseudo-masks (image/mask pairs)", train_seg_name="cam-us"),
    Task("mri-seg", "mri", "segment2d", _mri_seg_net,
         "percentile-normalised slice, padded square, resized to img_size (3D nets: sliding window)",
         "MR/CT liver, 2D slice-wise (manifest.csv slices/volumes or LiQA root)", train_seg_name="mri",
         shipped=ShippedModel(
             "mri_seg_default", "MR/CT liver segmentation", "segment --modality mr|ct, predict-mri",
             "mri_seg_default",
             "Dice 0.923 [0.899, 0.946] (8 held-out CT cases, 2D slices); 0.893 [0.853, 0.933] (2 real volumes)",
             "benchmarks/results/ct_seg_slices.json", result="ct_seg_slices")),
    Task("mri-seg-3d", "mri", "segment3d", _mri_seg_net,
         "percentile-normalised volume, MONAI sliding window over roi_size (D, H, W)",
         "MR/CT liver, 3D (MONAI UNet / SegResNet, sliding-window inference)"),
    Task("mre-seg", "mre", "segment2d", _mre_seg_net,
         "magnitude / exam p99 (clip 1.5), resized to img_size (magnitude only: no confidence channel)",
         "MRE liver on the magnitude image (exam folders with truth.json)", train_seg_name="mre",
         shipped=ShippedModel(
             "mre_seg_default", "MRE liver segmentation", "mre", "mre_seg_default",
             "kPa vs phantom truth on fresh independent NIfTI phantoms (SYNTHETIC; never seen a real exam)",
             "benchmarks/results/mre_phantom_independent_nifti.json", synthetic=True,
             result="mre_phantom_independent_nifti",
             caveat="The liver mask comes from a model trained on SYNTHETIC phantoms only; check the outlined "
             "ROI. The stage comes from published stiffness cut-offs, not from a trained classifier.")),
    Task("mri-staging", "mri", "classify", _mri_staging_net,
         "liver-masked crops of 3-slice stacks per phase (LiQA) or per slice (CirrMRI600+)",
         "liver fibrosis stage from multi-phase MRI (liverfib train-mri / predict-mri)",
         shipped=ShippedModel(
             "mri_staging_synthetic", "MRI staging (LiQA layout)", "predict-mri", "mri_staging_synthetic",
             "trained and tested on SYNTHETIC MRI only; says nothing about real scans",
             "benchmarks/mri_staging_results.json", synthetic=True, result="mri_staging_synthetic",
             caveat="Trained on SYNTHETIC data only: not a clinical result.")),
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise unknown_choice("task", name, TASKS)
    return TASKS[name]


def list_tasks(pattern: str = "*") -> list[Task]:
    return [TASKS[n] for n in sorted(TASKS) if fnmatch.fnmatch(n, pattern)]


def shipped_models() -> tuple[ShippedModel, ...]:
    """The models liverfib ships, in table order."""
    return tuple(t.shipped for t in TASKS.values() if t.shipped)


def task_for_train_name(train_seg_name: str) -> Task:
    """The task behind ``liverfib train-seg --task NAME``."""
    by_name = {t.train_seg_name: t for t in TASKS.values() if t.train_seg_name}
    if train_seg_name not in by_name:
        raise unknown_choice("segmentation task", train_seg_name, by_name)
    return by_name[train_seg_name]


def task_rows(pattern: str = "*") -> list[dict[str, str]]:
    """One dict per task (name, modality, kind, default bundle, train-seg name, help) for listings."""
    return [{"name": t.name, "modality": t.modality, "kind": t.kind, "default_bundle": t.default_bundle or "-",
             "train_seg": t.train_seg_name or "-", "help": t.help} for t in list_tasks(pattern)]


def build_network(task: str, network: Mapping[str, Any]) -> Any:
    """An untrained network for ``task`` from a bundle's ``network`` entry (``{"name", "args"}``)."""
    return get_task(task).network({"name": network.get("name"), "args": dict(network.get("args") or {})})


def network_from_bundle(bundle: Any, what: str | None = None) -> Any:
    """The network a loaded bundle (:func:`liverfib.models.bundle.load_bundle`) describes, built by its
    task's factory, with the bundle's weights (strict) and in eval mode. ``what`` names the network in
    the error raised when the weights do not fit it."""
    return bundle.load_into(build_network(bundle.task, bundle.network), what)
