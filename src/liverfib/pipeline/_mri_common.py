"""Helpers shared by the MRI workflows (:mod:`liverfib.pipeline.mri`, :mod:`liverfib.pipeline.mri_train`,
:mod:`liverfib.pipeline.mri_seg_train`, :mod:`liverfib.pipeline.segment_volume`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.errors import ModelError

__all__ = ["CIRRMRI_SPLITS", "LIQA_CLASSES", "VOLUME_SUFFIXES", "LazySegmenter", "check_out_csv", "file_stem",
           "liver_segmenter", "staging_network",
           "prediction_columns", "prob_cells", "case_progress"]

LIQA_CLASSES = ("S1", "S2", "S3", "S4")
CIRRMRI_SPLITS = ("train", "valid", "test")
VOLUME_SUFFIXES = (".nii.gz", ".nii")


def file_stem(path: Path) -> str:
    """``path``'s name without its image suffix (``.nii.gz``, ``.nii``, ``.png``, ``.dcm``, ...)."""
    name = path.name
    for suffix in (*VOLUME_SUFFIXES, ".png", ".jpg", ".jpeg", ".dcm", ".tif", ".tiff", ".bmp"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_out_csv(out_csv: Path | None) -> Path | None:
    """``--out`` must name a .csv file; its folder is created. Checked before any work starts."""
    if out_csv is None:
        return None
    from liverfib.io.outputs import check_output_file

    return check_output_file(Path(out_csv), (".csv",))


def prediction_columns(classes: tuple[str, ...] | list[str], extra: list[str]) -> list[str]:
    """The ``liverfib evaluate --predictions`` columns, then ``extra`` (ignored by evaluate)."""
    return ["path", "label", *[f"prob_{c}" for c in classes], "group", "source", *extra]


def prob_cells(classes: Any, probs: Any) -> dict[str, str]:
    """``prob_<class>`` cells of one predictions-CSV row."""
    return {f"prob_{c}": f"{float(v):.6f}" for c, v in zip(classes, probs, strict=True)}


def liver_segmenter(model: str | Path = "default") -> Any:
    """The MR/CT liver segmenter (a :class:`~liverfib.mri.segmentation.SegModel`): ``'default'`` (the
    shipped ``assets/mri_seg_default/``) or an ``mri-seg``/``mri-seg-3d`` bundle path."""
    from liverfib.models.assets import resolve_model
    from liverfib.models.bundle import load_bundle
    from liverfib.models.tasks import network_from_bundle
    from liverfib.mri.segmentation import SegModel, SegModelConfig

    bundle = load_bundle(resolve_model(model, "mri-seg"), task=("mri-seg", "mri-seg-3d"))
    cfg = _network_config(bundle, SegModelConfig)
    net = network_from_bundle(bundle, f"{cfg.arch} ({bundle.source})")
    return SegModel(net, cfg, bundle.extra.get("info", {}))


def staging_network(model: str | Path = "default") -> tuple[Any, Any, dict[str, Any]]:
    """``'default'`` (shipped, trained on SYNTHETIC data only) or an ``mri-staging`` bundle path ->
    ``(net, cfg, info)``. The saved config's ``layout`` says which network the bundle holds: ``liqa``
    (or absent) the multi-phase fusion net with a :class:`~liverfib.mri.staging.StagingConfig`,
    ``cirrmri`` the per-slice net with a :class:`~liverfib.mri.slice_staging.SliceStagingConfig`."""
    from liverfib.models.assets import resolve_model
    from liverfib.models.bundle import load_bundle
    from liverfib.models.tasks import network_from_bundle
    from liverfib.mri.slice_staging import SliceStagingConfig
    from liverfib.mri.staging import StagingConfig

    bundle = load_bundle(resolve_model(model, "mri-staging"), task="mri-staging")
    per_slice = bundle.network["args"].get("layout", "liqa") == "cirrmri"
    cfg = _network_config(bundle, SliceStagingConfig if per_slice else StagingConfig)
    what = f"the {cfg.encoder} per-slice staging net" if per_slice else f"the {cfg.encoder} staging net"
    return network_from_bundle(bundle, f"{what} ({bundle.source})"), cfg, bundle.extra.get("info", {})


def _network_config(bundle: Any, config_class: Any) -> Any:
    """The bundle's network arguments as ``config_class``; a :class:`ModelError` when they do not fit."""
    try:
        return config_class(**bundle.network["args"])
    except Exception as exc:  # pydantic ValidationError: report as a model problem
        raise ModelError(f"{bundle.source}: bundle network config is invalid ({str(exc).splitlines()[0]})") from None


class LazySegmenter:
    """The liver segmenter ``name``, loaded the first time a scan without a mask needs it."""

    def __init__(self, name: str | Path) -> None:
        self.name, self._model = name, None

    def __call__(self) -> Any:
        if self._model is None:
            self._model = liver_segmenter(self.name)
        return self._model

    def segment(self, array: Any) -> Any:
        """Binary liver mask of ``array`` (see :meth:`~liverfib.mri.segmentation.SegModel.segment`)."""
        return self().segment(array)


def case_progress(items: list[Any], desc: str) -> Any:
    """Iterate ``items`` with the shared progress reporter (bar on a terminal, a line every ~10 s off it)."""
    from liverfib.progress import Progress

    with Progress(len(items), desc, "case") as bar:
        for item in items:
            yield item
            bar.update()
