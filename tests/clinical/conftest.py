"""Synthetic DICOM for the clinical tests: an ultrasound frame with PHI and burned-in text."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

#: Identifying values written into the synthetic file; none may survive de-identification.
PHI = {
    "PatientName": "Doe^Johnathan",
    "PatientID": "PID-998877",
    "PatientBirthDate": "19580214",
    "OtherPatientIDs": "OTHER-4455",
    "PatientAddress": "12 Elm Street Springfield",
    "InstitutionName": "Saint Example Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "OperatorsName": "Sono^Grapher",
    "AccessionNumber": "ACC-123456",
    "StudyID": "STUDY-77",
    "StationName": "US-ROOM-3",
    "DeviceSerialNumber": "SN-31415",
    "StudyDescription": "Liver for Johnathan Doe",
    "PatientTelephoneNumbers": "555-0199",
}


#: Integration programs -> the Debian package that brings them (scripts/install-system-deps.sh).
TOOLS = {
    "Orthanc": "orthanc",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "dciodvfy": "dicom3tools",
}


def in_ci() -> bool:
    """True under CI (``CI=true``): there a missing integration program fails the test."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(*names: str) -> str:
    """Path of the first program of ``names`` on PATH. Missing: the test fails under ``CI=true``
    (CI must run what it claims to test) and is skipped elsewhere, with the install hint."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    package = TOOLS.get(names[0], names[0])
    why = (
        f"{' / '.join(names)} not found: install Debian's '{package}' package "
        "(sudo scripts/install-system-deps.sh)"
    )
    if in_ci():
        pytest.fail(f"CI=true but {why}", pytrace=False)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def us_dataset(pixels: np.ndarray, *, study_uid: str | None = None, modality: str = "US", **extra: str):
    """A valid single-frame Ultrasound Image Storage dataset carrying :data:`PHI`."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, UltrasoundImageStorage, generate_uid

    sop_class = UltrasoundImageStorage if modality == "US" else MRImageStorage
    ds = Dataset()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = generate_uid()
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = fm
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, fm.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.Manufacturer = "ACME"
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.ContentDate = "20240305", "101500", "20240305", "20240305"
    ds.PatientSex, ds.PatientAge = "M", "066Y"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL"]
    ds.PatientOrientation, ds.Laterality = None, None
    for k, v in {**PHI, **extra}.items():
        setattr(ds, k, v)
    # a nested person name and a private tag, both must go
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = generate_uid()
    ds.ReferencedImageSequence = [item]
    op = Dataset()
    op.PersonName = "Nested^Person"
    ds.ContentSequence = None
    ds.OperatorIdentificationSequence = [op]
    block = ds.private_block(0x0009, "ACME PRIVATE", create=True)
    block.add_new(0x01, "LO", "private Doe^Johnathan")
    h, w = pixels.shape
    ds.Rows, ds.Columns = h, w
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if modality == "US":
        region = Dataset()
        region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
        region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
        region.RegionLocationMaxX1, region.RegionLocationMaxY1 = w - 1, h - 1
        region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection = 3, 3
        region.PhysicalDeltaX, region.PhysicalDeltaY = 0.03, 0.03
        ds.SequenceOfUltrasoundRegions = [region]
    else:
        ds.PixelSpacing = [1.0, 1.0]
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    return ds


@pytest.fixture
def us_dicom(make_us_image, tmp_path: Path) -> Callable[..., Path]:
    """Factory: write a synthetic US DICOM (device A frame, burned-in text) and return its path."""
    counter = {"n": 0}

    def make(*, seed: int = 0, text: str | None = "DOE", study_uid: str | None = None, name: str | None = None) -> Path:
        counter["n"] += 1
        img = make_us_image(np.random.default_rng(seed), "A", text=text)
        ds = us_dataset(img, study_uid=study_uid)
        path = tmp_path / (name or f"us_{counter['n']}.dcm")
        ds.save_as(path, enforce_file_format=True)
        return path

    return make


def serve_app(app, port: int):  # type: ignore[no-untyped-def]
    """Run an ASGI app with uvicorn in a thread on loopback; returns ``(server, thread)``."""
    import threading
    import time

    import uvicorn

    # keep-alive longer than any pause between a client's requests: a server closing an idle
    # connection just as the client reuses it resets that request (a race of HTTP/1.1, not of the app)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_keep_alive=60)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    return server, thread


@pytest.fixture(scope="session")
def clin():
    """Helpers as a namespace: ``us_dataset``, ``free_port``, ``serve_app``, ``PHI``."""
    from types import SimpleNamespace

    return SimpleNamespace(
        us_dataset=us_dataset, free_port=free_port, serve_app=serve_app, PHI=PHI, require_tool=require_tool
    )


@pytest.fixture(scope="session")
def fast_models():
    """Models shared by the server tests (the predictor loads once per session); no CAM, no PDF."""
    from liverfib.pipeline.clinical import ClinicalConfig, ModelCache

    return ModelCache(ClinicalConfig(with_cam=False, pdf=False))
