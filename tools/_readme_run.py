"""Run the README's ``liverfib`` commands in README order on small data; the ``--run`` mode of readme_commands.py.

The commands run as written from a scratch folder laid out like the repository root, so later commands
read what earlier ones wrote, as a reader's would:

* ``../shared/data/liver-us-fibrosis`` is 6 images per stage and ``../shared/data/abdominal-us-liver``
  9 of its 27 image/mask pairs: symlinks into the real sets (never copies).
* ``demo/us``, ``demo/ct`` and ``configs`` are symlinks to the repository's.
* Placeholders (``MY_DIR``, ``EXAM``, ``LiQA/``, ``scan.dcm``, ...) are made just before the first command
  that names them (:data:`_PLACEHOLDERS`), from the phantoms the README's own commands wrote.
* Three edits only (:data:`_EDITS`): ``/archive/us`` is the small US set, and ``--steps`` (the budget
  flag the README documents for ``train-mri``) is 30.
* Servers run until they answer one request (C-ECHO / HTTP GET) and are then stopped.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from readme_commands import ROOT, ReadmeCommand

# ../shared/data beside the checkout (a worktree may sit deeper: the nearest one above it)
SHARED = next((p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
              ROOT.parent / "shared" / "data")
_PER_STAGE = 6
_EDITS = (("/archive/us", "../shared/data/liver-us-fibrosis"), ("--steps 1000", "--steps 30"),
          ("--steps 3000", "--steps 30"))
_SKIPS = {"HEAD:6379": "needs a Ray cluster at HEAD:6379 (the local form of the same command runs)"}
_SERVERS = {"serve-dicom": 11112, "serve": 8000}


@dataclass
class Outcome:
    command: ReadmeCommand
    rc: int | None
    seconds: float
    error: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


# ---------------------------------------------------------------- small data
def _small_us_set(dest: Path) -> None:
    """``_PER_STAGE`` distinct real images per stage, evenly spaced in name order, as symlinks."""
    source = SHARED / "liver-us-fibrosis"
    for stage in sorted(p.name for p in source.iterdir() if p.is_dir()):
        files = sorted(p for p in (source / stage).iterdir() if p.is_file() and p.stat().st_size > 1024)
        step = max(1, len(files) // _PER_STAGE)
        (dest / stage).mkdir(parents=True)
        for path in files[::step][:_PER_STAGE]:
            (dest / stage / path.name).symlink_to(path)


def _small_seg_set(dest: Path, every: int = 3) -> None:
    """Every ``every``-th image/mask pair of the abdominal US set (symlinks) with its manifest rows."""
    source = SHARED / "abdominal-us-liver"
    with (source / "manifest.csv").open() as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames or [], list(reader)[::every]
    for sub in ("images", "masks"):
        (dest / sub).mkdir(parents=True)
    for row in rows:
        for key in ("file", "mask"):
            (dest / row[key]).symlink_to(source / row[key])
    with (dest / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _layout(base: Path) -> Path:
    """Scratch root: ``base/shared/data`` (small sets) and ``base/work`` (cwd, like the repo root)."""
    _small_us_set(base / "shared" / "data" / "liver-us-fibrosis")
    _small_seg_set(base / "shared" / "data" / "abdominal-us-liver")
    work = base / "work"
    (work / "demo").mkdir(parents=True)
    for name in ("us", "ct"):
        (work / "demo" / name).symlink_to(ROOT / "demo" / name)
    (work / "configs").symlink_to(ROOT / "configs")
    for folder in (base / "bin", work / ".venv" / "bin"):
        folder.mkdir(parents=True, exist_ok=True)
        wrapper = folder / "liverfib"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m liverfib.cli "$@"\n')
        wrapper.chmod(0o755)
    return work


def _env(base: Path) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{base / 'bin'}:{os.environ['PATH']}", PYTHONPATH=str(ROOT / "src"),
               SECRET="readme-check-salt", LIVERFIB_TOKEN="readme-check-token-0123456789")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _staging_predictions(path: Path) -> None:
    """A predictions CSV for ``evaluate --predictions`` (F0..F4, 40 rows, probabilities favour the label)."""
    import numpy as np

    rng = np.random.default_rng(0)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", *(f"prob_F{k}" for k in range(5)), "group", "source"])
        for i in range(40):
            label = i % 5
            p = rng.dirichlet(np.ones(5))
            p[label] += 1.0
            p /= p.sum()
            writer.writerow([f"img{i}.png", f"F{label}", *(f"{v:.4f}" for v in p), f"g{i // 2}", "AB"[i % 2]])


def _us_dicom(path: Path, image: Path, seed: int = 0) -> None:
    """A US DICOM file (with a patient name, ID and date) holding a demo image's pixels."""
    import numpy as np
    from PIL import Image
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = np.asarray(Image.open(image).convert("L"))
    ds = _base_dataset("1.2.840.10008.5.1.4.1.1.6.1", "US", seed)
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = generate_uid()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _base_dataset(sop_class: str, modality: str, seed: int):  # type: ignore[no-untyped-def]
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[f"study{seed}"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[f"series{seed}{modality}"])
    ds.Modality, ds.PatientName, ds.PatientID = modality, "DOE^JANE", f"ID{seed:04d}"
    ds.StudyDate, ds.PatientBirthDate, ds.SeriesNumber = "20240102", "19600101", 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    return ds


def _ct_series(folder: Path, nifti: Path) -> None:
    """The CT NIfTI as a DICOM series (one slice per file, LPS geometry from the NIfTI affine)."""
    import nibabel as nib
    import numpy as np
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    img = nib.load(str(nifti))
    data, affine = np.asarray(img.dataobj).astype(np.int16), img.affine
    lps = np.diag([-1.0, -1.0, 1.0])
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    row_dir, col_dir = lps @ affine[:3, 0] / spacing[0], lps @ affine[:3, 1] / spacing[1]
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(data.shape[2]):
        ds = _base_dataset("1.2.840.10008.5.1.4.1.1.2", "CT", 7)
        ds.ImagePositionPatient = [float(v) for v in lps @ (affine @ [0, 0, k, 1])[:3]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness, ds.InstanceNumber = float(spacing[2]), k + 1
        ds.FrameOfReferenceUID = generate_uid(entropy_srcs=["frame7"])
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T).tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"CT{k:04d}.dcm", enforce_file_format=True)


def _manual_reads(path: Path) -> None:
    """``manual.csv`` for ``agreement``: res/mre.csv's exams, stiffness shifted by a fixed small amount."""
    with Path("res/mre.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["exam", "mean_stiffness_kpa"])
        for i, row in enumerate(rows):
            writer.writerow([row["exam"], f"{float(row['mean_stiffness_kpa']) + 0.05 * (i % 3 - 1):.3f}"])


def _link(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(Path(target).resolve())


def _first(pattern: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(sorted(Path().glob(pattern))[0].resolve())


def _liverfib(*args: str) -> Callable[[Path], None]:
    return lambda path: subprocess.run(["liverfib", *args], check=True, capture_output=True, env=_ENV)


_ENV: dict[str, str] = {}
# placeholder as written in the README -> how to make it (cwd = scratch work folder)
_PLACEHOLDERS: dict[str, Callable[[Path], None]] = {
    "preds.csv": _staging_predictions,
    "MY_DIR": _link("../shared/data/liver-us-fibrosis"),
    "EXAM_NIFTI": _first("ph_nii/mre_*"),
    "EXAM": _first("phantoms/mre_*"),
    "liver.nii.gz": _first("phantoms/mre_*/truth/liver_mask.nii.gz"),
    "my.yaml": lambda p: p.write_text("f1_kpa: 2.6\nf2_kpa: 3.0\nf3_kpa: 3.8\nf4_kpa: 4.8\nsource: readme check\n"),
    "manual.csv": _manual_reads,
    "image.nii.gz": _link("demo/ct/totalseg_ct.nii.gz"),
    "study": lambda p: _ct_series(p / "series1", Path("demo/ct/totalseg_ct.nii.gz")),
    "LiQA": _link("demo/liqa"),
    "LiQA_test": _liverfib("phantom", "mri", "--out", "LiQA_test", "--n", "4", "--seed", "1"),
    "CirrMRI600+": _link("demo/cirrmri"),
    "labels.csv": _link("demo/cirrmri/labels.csv"),
    "scan.nii.gz": _first("demo/cirrmri/Cirrhosis_T1_3D/test_images/*.nii.gz"),
    "scan.dcm": lambda p: _us_dicom(p, Path("demo/us/F4_F9024.jpg")),
    "incoming": lambda p: [_us_dicom(p / f"us{k}.dcm", img, k) for k, img in
                           enumerate(sorted(Path("demo/us").glob("*.jpg"))[:2])],
}


def _argv(command: ReadmeCommand) -> list[str]:
    text = " ".join(command.argv)
    for old, new in _EDITS:
        text = text.replace(old, new)
    return text.split(" ")


def _make_placeholders(argv: list[str]) -> None:
    for token in argv:
        name = token.rstrip("/")
        if name in _PLACEHOLDERS and not Path(name).exists() and not Path(name).is_symlink():
            _PLACEHOLDERS[name](Path(name))


# ---------------------------------------------------------------- running
def _first_error(stdout: str, stderr: str) -> str:
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    marked = [line for line in lines if line.startswith("error:")]
    return (marked or lines[-1:] or [""])[0][:160]


def _shell(argv: list[str]) -> str:
    import shlex

    return "liverfib " + " ".join(shlex.quote(a) if not a.startswith("$") else f'"{a}"' for a in argv)


def _run_one(command: ReadmeCommand, timeout_s: float) -> Outcome:
    argv = _argv(command)
    skip = next((why for key, why in _SKIPS.items() if key in command.text), None)
    if skip:
        return Outcome(command, None, 0.0, f"skipped: {skip}")
    start = time.monotonic()
    try:
        _make_placeholders(argv)
    except (OSError, subprocess.CalledProcessError, IndexError, KeyError) as exc:
        return Outcome(command, None, time.monotonic() - start, f"placeholder failed: {exc}")
    if argv[0] in _SERVERS:
        return _run_server(command, argv, _SERVERS[argv[0]], timeout_s, start)
    try:
        proc = subprocess.run(["bash", "-c", _shell(argv)], capture_output=True, text=True, env=_ENV,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return Outcome(command, 124, time.monotonic() - start, f"timed out after {timeout_s:.0f} s")
    return Outcome(command, proc.returncode, time.monotonic() - start,
                   "" if proc.returncode == 0 else _first_error(proc.stdout, proc.stderr))


def _probe(name: str, port: int) -> str | None:
    """One request to a started server; None when it answered."""
    if name == "serve-dicom":
        from pynetdicom import AE
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        ae = AE(ae_title="ORTHANC")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", port, ae_title="LIVERFIB")
        if not assoc.is_established:
            return "association refused"
        status = assoc.send_c_echo()
        assoc.release()
        return None if status and status.Status == 0 else f"C-ECHO status {status}"
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    return None if code < 500 else f"HTTP {code}"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run_server(command: ReadmeCommand, argv: list[str], port: int, timeout_s: float, start: float) -> Outcome:
    if _port_open(port):
        return Outcome(command, None, 0.0, f"skipped: port {port} already in use on this machine")
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(["bash", "-c", "exec " + _shell(argv)], stdout=log, stderr=subprocess.STDOUT,
                            env=_ENV, start_new_session=True)
    problem: str | None = "did not listen within the timeout"
    while time.monotonic() - start < min(timeout_s, 120) and proc.poll() is None:
        if _port_open(port):
            problem = _probe(argv[0], port)
            break
        time.sleep(0.5)
    running = proc.poll() is None
    if running:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    log.seek(0)
    error = problem or ("" if running else "exited early")
    if error and not running:
        error = f"{error}: {_first_error(log.read(), '')}"
    return Outcome(command, 0 if not error else (proc.returncode or 1), time.monotonic() - start,
                   error or "answered one request, stopped")


def _table(outcomes: list[Outcome]) -> str:
    rows = ["| line | command | rc | s | first error line / note |", "|---:|---|---:|---:|---|"]
    for o in outcomes:
        rc = "skip" if o.rc is None else str(o.rc)
        text = o.command.text.replace("|", "\\|")
        rows.append(f"| {o.command.line} | `{text}` | {rc} | {o.seconds:.0f} | {o.error.replace('|', '/')} |")
    return "\n".join(rows)


def run_commands(commands: list[ReadmeCommand], *, keep: Path | None, only: str | None,
                 timeout_s: float) -> int:
    """Run ``commands`` in order in a scratch folder; print a table; 1 if any failed (skips do not)."""
    base = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="liverfib_readme_"))
    if keep and only and (base / "work").is_dir():  # re-run some commands on an earlier run's outputs
        work = base / "work"
    else:
        if keep and base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True, exist_ok=True)
        work = _layout(base)
    _ENV.update(_env(base))
    os.chdir(work)
    outcomes = []
    began = time.monotonic()
    for command in commands:
        if only and only not in command.text:
            continue
        outcome = _run_one(command, timeout_s)
        print(f"[{time.monotonic() - began:6.0f} s] line {command.line}: rc={outcome.rc} "
              f"{outcome.seconds:.0f} s {outcome.error}", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    print(_table(outcomes))
    failed = [o for o in outcomes if o.rc not in (0, None)]
    skipped = [o for o in outcomes if o.rc is None]
    print(f"\n{len(outcomes)} commands: {len(outcomes) - len(failed) - len(skipped)} passed, {len(failed)} failed, "
          f"{len(skipped)} skipped; {time.monotonic() - began:.0f} s; scratch folder {base}")
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0
