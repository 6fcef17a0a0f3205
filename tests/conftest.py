"""Shared synthetic data: fan-shaped B-mode ultrasound images and a labelled F0..F4 folder.

Two simulated devices with distinct frames (sizes scaled down so the tests stay fast):

* ``A``: 160x120 (W x H) JPEG, black background, narrow sector (apex just above the image);
* ``B``: 112x116 PNG, gray-10 background, curvilinear probe (wide top arc, small opening angle).

The tissue is a smooth random echogenicity field (correlation length ``texture`` pixels) with
anechoic "vessels", multiplicative speckle and depth attenuation. The known sector of each device
is :func:`sector_mask`, so fan detection can be scored against it.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Exported ONNX models etc. go to a per-session folder, never the user's cache."""
    import os

    old = os.environ.get("LIVERFIB_CACHE")
    os.environ["LIVERFIB_CACHE"] = str(tmp_path_factory.mktemp("liverfib_cache"))
    yield
    if old is None:
        os.environ.pop("LIVERFIB_CACHE", None)
    else:
        os.environ["LIVERFIB_CACHE"] = old


@dataclass(frozen=True)
class Device:
    """Frame geometry of a simulated scanner (pixels; apex row may lie above the image)."""

    width: int
    height: int
    background: int
    apex_row: float
    apex_col: float
    r_inner: float
    r_outer: float
    half_angle_deg: float
    fmt: str  # "JPEG" or "PNG"

    @property
    def suffix(self) -> str:
        return ".jpg" if self.fmt == "JPEG" else ".png"


DEVICES = {
    "A": Device(160, 120, 0, -15.0, 80.0, 20.0, 130.0, 35.0, "JPEG"),
    "B": Device(112, 116, 10, -60.0, 56.0, 70.0, 170.0, 18.0, "PNG"),
}


def sector_mask(kind: str) -> np.ndarray:
    """The device's true fan as ``(H, W)`` bool."""
    d = DEVICES[kind]
    rows, cols = np.mgrid[0 : d.height, 0 : d.width].astype(np.float64)
    dy, dx = rows - d.apex_row, cols - d.apex_col
    r = np.hypot(dx, dy)
    angle = np.degrees(np.arctan2(dx, dy))
    return (r >= d.r_inner) & (r <= d.r_outer) & (np.abs(angle) <= d.half_angle_deg)


def sector_bbox(kind: str) -> tuple[int, int, int, int]:
    """``(row0, col0, row1, col1)`` end-exclusive bounding box of :func:`sector_mask`."""
    m = sector_mask(kind)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def synth_us_image(
    rng: np.random.Generator,
    kind: str = "A",
    texture: float = 4.0,
    *,
    text: str | None = None,
) -> np.ndarray:
    """A synthetic B-mode image of device ``kind`` as uint8 ``(H, W)``.

    Args:
        rng: source of all randomness (tissue, vessels, speckle).
        kind: ``"A"`` or ``"B"`` (see :data:`DEVICES`).
        texture: correlation length of the tissue echogenicity in pixels (larger = coarser).
        text: burned-in annotation drawn in white in the top-left corner, outside the fan (device
            B leaves room for about four characters).
    """
    import cv2

    d = DEVICES[kind]
    h, w = d.height, d.width
    tissue = cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), texture)
    tissue = (tissue - tissue.mean()) / max(float(tissue.std()), 1e-6)
    echo = 95.0 + 30.0 * tissue
    for _ in range(2):  # anechoic vessels
        centre = (int(rng.uniform(0.3, 0.7) * w), int(rng.uniform(0.35, 0.8) * h))
        axes = (int(rng.uniform(4, 9)), int(rng.uniform(3, 6)))
        vessel = np.zeros((h, w), np.uint8)
        cv2.ellipse(vessel, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        echo = np.where(vessel > 0, 30.0, echo)
    speckle = rng.rayleigh(1.0, size=(h, w)).astype(np.float32) / np.sqrt(np.pi / 2)
    speckle = cv2.GaussianBlur(speckle, (0, 0), 0.7)
    depth = np.linspace(1.0, 0.75, h, dtype=np.float32)[:, None]
    img = np.clip(echo * speckle * depth, 25, 235)
    img = np.where(sector_mask(kind), img, d.background).astype(np.uint8)
    if text is not None:
        overlay = np.zeros((h, w), np.uint8)
        cv2.putText(overlay, text, (1, 9), cv2.FONT_HERSHEY_SIMPLEX, 0.3, 255, 1, cv2.LINE_8)
        overlay = np.where(overlay > 0, 255, 0).astype(np.uint8)  # crisp, as burned in by a scanner
        near_fan = cv2.dilate(sector_mask(kind).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        if (overlay[near_fan] > 0).any():
            raise ValueError(f"text {text!r} touches the fan of device {kind}; use a shorter one")
        img = np.maximum(img, overlay)
    return img


def encode(img: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    """Encode a uint8 gray image as ``"JPEG"`` (at ``quality``) or ``"PNG"`` bytes."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    if fmt == "JPEG":
        PILImage.fromarray(img).save(buf, format="JPEG", quality=quality)
    else:
        PILImage.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def brighten_and_zoom(
    img: np.ndarray, gain: float = 1.08, offset: float = 5.0, zoom: float = 1.02
) -> np.ndarray:
    """The same scan slightly brighter and magnified by ``zoom`` about the centre (same pixel grid)."""
    import cv2

    h, w = img.shape
    big = cv2.resize(img, (round(w * zoom), round(h * zoom)), interpolation=cv2.INTER_LINEAR)
    r0, c0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    out = big[r0 : r0 + h, c0 : c0 + w].astype(np.float32) * gain + offset
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass
class UsDataset:
    """A labelled folder built by the ``us_dataset`` factory, with what the audit should find.

    Paths are relative to ``root`` with ``/`` separators (as in the audit's tables).
    """

    root: Path
    n_files: int
    corrupt: list[str]
    exact_groups: list[set[str]]  # byte-identical copies (real copies and link stubs)
    near_group: set[str]  # one scan: original, JPEG q90 re-encode, brightened + zoomed
    originals: dict[str, str]  # rel path -> label of every distinct scan (first copy)
    device: dict[str, str]  # rel path -> "A"/"B" for every readable file
    label: dict[str, str] = field(default_factory=dict)  # rel path -> label, every listed file

    @property
    def n_unique_exact(self) -> int:
        """Distinct byte contents among readable files."""
        return len(self.originals) + len(self.near_group) - 1

    @property
    def n_clusters(self) -> int:
        return len(self.originals)


def build_us_dataset(root: Path, *, balanced: bool = False, seed: int = 0) -> UsDataset:
    """Write a labelled F0..F4 folder under ``root``.

    Three distinct scans per label (four when ``balanced``), plus in ``F0``: a byte copy and a
    link stub of one scan, and a JPEG q90 re-encode and a brightened/2 %-zoomed version of another;
    in ``F2``: a link stub and a byte copy; in ``F1``: one corrupt file. Confounded (default):
    F0, F1 are device A only and F2..F4 device B only. Balanced: every label has two scans of each
    device (the near-duplicates add device-A contents to F0).
    """
    rng = np.random.default_rng(seed)
    labels = ["F0", "F1", "F2", "F3", "F4"]
    originals: dict[str, str] = {}
    device: dict[str, str] = {}
    label_of: dict[str, str] = {}
    arrays: dict[str, np.ndarray] = {}
    for lab in labels:
        (root / lab).mkdir(parents=True)
        kinds = ["A", "A", "B", "B"] if balanced else (["A"] * 3 if lab in ("F0", "F1") else ["B"] * 3)
        for k, kind in enumerate(kinds):
            img = synth_us_image(rng, kind, texture=float(rng.uniform(3.0, 6.0)))
            rel = f"{lab}/{lab.lower()}_{k}{DEVICES[kind].suffix}"
            (root / rel).write_bytes(encode(img, DEVICES[kind].fmt))
            originals[rel], device[rel], label_of[rel], arrays[rel] = lab, kind, lab, img

    def add(rel: str, data: bytes | str, kind: str) -> None:
        (root / rel).write_bytes(data.encode() if isinstance(data, str) else data)
        device[rel], label_of[rel] = kind, rel.split("/")[0]

    # F0 (device A in both modes): a copy, a link stub, two near-duplicates
    add("F0/f0_0_copy.jpg", (root / "F0/f0_0.jpg").read_bytes(), "A")
    add("F0/f0_0_link.jpg", "f0_0.jpg", "A")
    add("F0/f0_1_q90.jpg", encode(arrays["F0/f0_1.jpg"], "JPEG", quality=90), "A")
    add("F0/f0_1_bright.jpg", encode(brighten_and_zoom(arrays["F0/f0_1.jpg"]), "JPEG"), "A")
    # F2: a link stub and a copy of its device-B scans
    b = [rel for rel in originals if rel.startswith("F2/") and device[rel] == "B"]
    add(f"F2/{Path(b[0]).stem}_link.png", Path(b[0]).name, "B")
    add(f"F2/{Path(b[1]).stem}_copy.png", (root / b[1]).read_bytes(), "B")
    # F1: a corrupt file (PNG signature, then garbage)
    (root / "F1/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    label_of["F1/broken.png"] = "F1"

    return UsDataset(
        root=root,
        n_files=len(label_of),
        corrupt=["F1/broken.png"],
        exact_groups=[
            {"F0/f0_0.jpg", "F0/f0_0_copy.jpg", "F0/f0_0_link.jpg"},
            {b[0], f"F2/{Path(b[0]).stem}_link.png"},
            {b[1], f"F2/{Path(b[1]).stem}_copy.png"},
        ],
        near_group={"F0/f0_1.jpg", "F0/f0_1_q90.jpg", "F0/f0_1_bright.jpg"},
        originals=originals,
        device=device,
        label=label_of,
    )


@pytest.fixture(scope="session")
def make_us_image() -> Callable[..., np.ndarray]:
    """``make_us_image(rng, kind="A"|"B", texture=4.0, *, text=None)``: see :func:`synth_us_image`."""
    return synth_us_image


@pytest.fixture(scope="session")
def us_frame() -> SimpleNamespace:
    """Device geometry and encoders: ``devices``, ``sector_mask(kind)``, ``sector_bbox(kind)``,
    ``encode(img, fmt, quality)``, ``brighten_and_zoom(img)``."""
    return SimpleNamespace(
        devices=DEVICES,
        sector_mask=sector_mask,
        sector_bbox=sector_bbox,
        encode=encode,
        brighten_and_zoom=brighten_and_zoom,
    )


@pytest.fixture(scope="session")
def build_dataset() -> Callable[..., UsDataset]:
    """``build_dataset(root, *, balanced=False, seed=0)``: see :func:`build_us_dataset` (for
    module-scoped fixtures that build once under ``tmp_path_factory``)."""
    return build_us_dataset


@pytest.fixture
def us_dataset(tmp_path: Path) -> Callable[..., UsDataset]:
    """Factory: ``us_dataset(balanced=False, seed=0, name="us")`` builds the folder in ``tmp_path``."""

    def build(*, balanced: bool = False, seed: int = 0, name: str = "us") -> UsDataset:
        return build_us_dataset(tmp_path / name, balanced=balanced, seed=seed)

    return build


# ------------------------------------------------------------------------- a tiny trained model
def split_rows_by_hand(ds: UsDataset) -> list[dict[str, str]]:
    """Grouped split rows for a :func:`build_us_dataset` folder: scan ``_2`` of every label is
    validation (one scan per stage), everything else (copies and near-duplicates included) train.
    Groups are the scan's stem, so copies share their original's group."""
    rows = []
    for rel, lab in sorted(ds.label.items()):
        if rel in ds.corrupt:
            continue
        stem = Path(rel).stem
        group = stem.split("_copy")[0].split("_link")[0].split("_q90")[0].split("_bright")[0]
        split = "val" if group.endswith("_2") else "train"
        rows.append(
            {
                "path": rel,
                "label": lab,
                "group": group,
                "cluster": group,
                "source": ds.device[rel],
                "split": split,
            }
        )
    return rows


@dataclass
class TrainedRun:
    """One tiny frozen-feature run shared by the model/inference/pipeline tests."""

    dataset: UsDataset
    split_csv: Path
    out_dir: Path
    summary: dict
    config: object  # liverfib.training.staging.StagingConfig

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / "model"


#: Options of the shared tiny run: 64-pixel inputs, two pooled stages, a two-value C grid.
TINY_TRAIN = {"img_size": 64, "feature_stages": (1, 2), "C_grid": (0.01, 0.1), "epochs": 0}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """Train the packaged-weights lite0 probe once (about 2 s) on the synthetic folder."""
    import torch

    from liverfib.dataset.split import write_split_csv
    from liverfib.training.staging import StagingConfig, train_staging

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("trained")
    ds = build_us_dataset(base / "us")
    split_csv = write_split_csv(split_rows_by_hand(ds), base / "split.csv")
    cfg = StagingConfig(**TINY_TRAIN)
    summary = train_staging(ds.root, split_csv, base / "run", cfg)
    return TrainedRun(ds, split_csv, base / "run", summary, cfg)


def _assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """A user error at the CLI edge: exit 2, exactly one stderr line 'error: ...', no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip("\n").splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert proc.stdout == ""
    return lines[0]


@pytest.fixture
def one_line_error():
    """The check for CLI user errors (see ``_assert_one_line_error``)."""
    return _assert_one_line_error


# ------------------------------------------------------------------------------- segmentation
def synth_liver_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A device-A fan image with a brighter, coarser 'liver' ellipse; returns (uint8 image, bool mask)."""
    import cv2

    img = synth_us_image(rng, "A", texture=2.0).astype(np.float32)
    d = DEVICES["A"]
    mask = np.zeros((d.height, d.width), np.uint8)
    centre = (int(rng.uniform(0.35, 0.65) * d.width), int(rng.uniform(0.45, 0.7) * d.height))
    axes = (int(rng.uniform(25, 40)), int(rng.uniform(15, 25)))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(-30, 30)), 0, 360, 1, -1)
    liver = (mask > 0) & sector_mask("A")
    img = np.where(liver, np.clip(img * 1.6 + 20, 0, 255), img * 0.7)
    return img.astype(np.uint8), liver


def write_seg_pairs(root: Path, n: int, seed: int = 0, subjects: int = 3) -> Path:
    """``root/images/*.png`` + ``root/masks/*.png`` + ``manifest.csv`` (file,mask,subject)."""
    import cv2

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    rows = ["file,mask,subject"]
    for i in range(n):
        img, mask = synth_liver_pair(rng)
        cv2.imwrite(str(root / "images" / f"s{i:02d}.png"), img)
        cv2.imwrite(str(root / "masks" / f"s{i:02d}.png"), np.where(mask, 255, 0).astype(np.uint8))
        rows.append(f"images/s{i:02d}.png,masks/s{i:02d}.png,subj{i % subjects}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@dataclass
class TrainedSeg:
    data: Path
    out_dir: Path
    summary: dict

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / "model"


@pytest.fixture(scope="session")
def trained_seg(tmp_path_factory: pytest.TempPathFactory) -> TrainedSeg:
    """A small U-Net (lite0 encoder, 64 px) trained once on synthetic liver pairs (about 10 s)."""
    import torch

    from liverfib.pipeline.segment import run_train_seg_2d

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("seg")
    data = write_seg_pairs(base / "pairs", 12)
    overrides = {"img_size": 64, "epochs": 25, "batch_size": 4, "steps_per_epoch": 2, "augment": "basic"}
    summary, _ = run_train_seg_2d(data, out_dir=base / "run", target="liver", overrides=overrides)
    return TrainedSeg(data, base / "run", summary)


@pytest.fixture(scope="session")
def make_liver_pair() -> Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]:
    """The synthetic (image, liver mask) generator used by the segmentation tests."""
    return synth_liver_pair
