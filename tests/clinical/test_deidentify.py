"""De-identification: no PHI value or tag survives, burned-in text outside the fan is blanked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from liverfib.pipeline.clinical.deidentify import PROFILE, deidentify_dataset, deidentify_path
from liverfib.preprocess.fan import detect_fan, find_overlay_text

SALT = "test-salt-123"


def _all_values(ds) -> list[str]:
    out = []
    for elem in ds.iterall():
        if elem.VR not in ("OB", "OW", "SQ", "UN") and elem.value is not None:
            out.append(str(elem.value))
    return out


def test_no_phi_survives(us_dicom, clin, tmp_path: Path) -> None:
    src = us_dicom(text="DOE")
    original = pydicom.dcmread(src)
    rows = deidentify_path(src, tmp_path / "out", salt=SALT)
    assert [r["status"] for r in rows] == ["ok"]
    out_path = Path(rows[0]["output"])
    raw = out_path.read_bytes()
    for key, value in clin.PHI.items():
        for token in value.replace("^", " ").split():
            if len(token) >= 4:
                assert token.encode() not in raw, f"{key} value {token!r} survived"
    assert b"Nested" not in raw and b"ACME PRIVATE" not in raw
    ds = pydicom.dcmread(out_path)
    for elem in ds.iterall():
        kw = elem.keyword
        if PROFILE.get(kw) == "X":
            raise AssertionError(f"{kw} should have been removed")
        if elem.tag.is_private:
            raise AssertionError(f"private tag {elem.tag} survived")
        if elem.VR in ("DA", "DT", "TM"):
            assert not elem.value, f"{kw} date/time kept: {elem.value}"
        if elem.VR == "PN" and kw != "PatientName":
            assert not str(elem.value), f"{kw} person name kept"
    assert ds.PatientID.startswith("ANON-") and ds.PatientName == ds.PatientID + "^"
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    # UIDs remapped, class UIDs kept, file meta consistent
    assert ds.StudyInstanceUID != original.StudyInstanceUID
    assert ds.SOPInstanceUID != original.SOPInstanceUID
    assert ds.SOPClassUID == original.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID != original.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert out_path.name == f"{ds.SOPInstanceUID}.dcm"  # output names carry no input name
    assert all(clin.PHI["PatientID"] not in v for v in _all_values(ds))


def test_burned_in_text_blanked_fan_kept(us_dicom, make_us_image, tmp_path: Path) -> None:
    src = us_dicom(text="DOE", seed=3)
    before = pydicom.dcmread(src).pixel_array
    fan = detect_fan(before)
    assert find_overlay_text(before, fan) > 0.001  # the text is there to begin with
    rows = deidentify_path(src, tmp_path / "out", salt=SALT)
    after = pydicom.dcmread(rows[0]["output"]).pixel_array
    assert after.shape == before.shape
    assert find_overlay_text(after, fan) == 0.0
    assert int(after[:12, :30].max()) == 0  # the text box (top-left corner) is black
    np.testing.assert_array_equal(after[fan.mask], before[fan.mask])  # echoes untouched
    assert 0.0 < rows[0]["pixels_masked_fraction"] < 1.0
    assert pydicom.dcmread(rows[0]["output"]).BurnedInAnnotation == "NO"


def test_same_salt_keeps_study_together(us_dicom, tmp_path: Path) -> None:
    study = "1.2.826.0.1.3680043.8.498.1234567"
    a, b = us_dicom(study_uid=study, seed=1), us_dicom(study_uid=study, seed=2)
    out = deidentify_path(a.parent, tmp_path / "out", salt=SALT)
    uids = {pydicom.dcmread(r["output"]).StudyInstanceUID for r in out if r["status"] == "ok"}
    assert len(uids) == 1 and study not in uids
    other = deidentify_path(a, tmp_path / "out2", salt="another-salt")
    assert pydicom.dcmread(other[0]["output"]).StudyInstanceUID not in uids
    assert b.exists()


def test_bad_inputs_are_listed_not_fatal(us_dicom, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = us_dicom()
    (folder / "good.dcm").write_bytes(good.read_bytes())
    (folder / "notes.txt").write_text("hello")
    (folder / "broken.dcm").write_bytes(good.read_bytes()[:400])
    rows = {Path(r["input"]).name: r for r in deidentify_path(folder, tmp_path / "out", salt=SALT)}
    assert rows["good.dcm"]["status"] == "ok"
    assert rows["notes.txt"]["status"] == "skipped"
    assert rows["broken.dcm"]["status"] == "error" and rows["broken.dcm"]["reason"]


def test_salt_required(us_dicom) -> None:
    from liverfib.errors import InputError

    with pytest.raises(InputError, match="salt"):
        deidentify_dataset(pydicom.dcmread(us_dicom()), salt="")
