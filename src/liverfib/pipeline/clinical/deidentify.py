"""De-identification after the DICOM Basic Application Level Confidentiality Profile (PS3.15 E.1).

What is done to a dataset (recursively, sequences included):

* attributes of the profile's table (:data:`PROFILE`) are removed (X), emptied (Z), replaced by a
  dummy (D) or, for UIDs, replaced by a new UID (U);
* every other person name (VR PN), date, time and date-time (DA/TM/DT) is emptied, every private
  tag, overlay (60xx) and curve (50xx) is removed, and every instance-specific UID (not a
  well-known ``1.2.840.10008.*`` UID, not a class UID) is remapped;
* UIDs and the patient pseudonym are derived from the original value and a secret ``salt`` (HMAC),
  so the files of one study stay one study after de-identification, and nobody without the salt
  can map them back;
* burned-in text on ultrasound: the fan is detected (:func:`liverfib.preprocess.fan.detect_fan`)
  and every pixel outside it is blanked; text *inside* the fan cannot be found this way and is
  reported as a limit (``BurnedInAnnotation`` is set to ``NO`` only after masking).

PatientIdentityRemoved = YES and DeidentificationMethod(CodeSequence) record what was done
(113100 Basic Application Confidentiality Profile, 113108 Retain Patient Characteristics is NOT
claimed: sex/age are removed).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liverfib.errors import InputError
from liverfib.io.dicom_dataset import read_dataset

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "PROFILE",
    "DeidResult",
    "deidentify_dataset",
    "deidentify_on_intake",
    "deidentify_path",
    "load_or_create_salt",
    "mask_outside_fan",
]

_X = (
    "AccessionNumber AcquisitionComments AcquisitionDeviceProcessingDescription AdditionalPatientHistory "
    "AdmissionID AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription Allergies Arbitrary "
    "AuthorObserverSequence BranchOfService CassetteID ConsultingPhysicianName "
    "ConsultingPhysicianIdentificationSequence ContributionDescription CountryOfResidence "
    "CurrentPatientLocation CustodialOrganizationSequence DataSetTrailingPadding DerivationDescription "
    "DetectorID DeviceSerialNumber DigitalSignaturesSequence DischargeDiagnosisDescription "
    "DistributionAddress DistributionName EthnicGroup FrameComments GantryID GeneratorID "
    "IconImageSequence IdentifyingComments ImageComments ImagePresentationComments "
    "ImagingServiceRequestComments Impressions InstitutionAddress InstitutionalDepartmentName "
    "InstitutionCodeSequence InstitutionName InterpretationApproverSequence InterpretationAuthor "
    "InterpretationRecorder InterpretationText InterpretationTranscriber IssuerOfAdmissionID "
    "IssuerOfPatientID IssuerOfPatientIDQualifiersSequence MedicalAlerts MedicalRecordLocator "
    "MilitaryRank ModifiedAttributesSequence ModifiedImageDescription NameOfPhysiciansReadingStudy "
    "NamesOfIntendedRecipientsOfResults Occupation OperatorIdentificationSequence OperatorsName "
    "OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation OriginalAttributesSequence "
    "OtherPatientIDs OtherPatientIDsSequence OtherPatientNames ParticipantSequence PatientAddress "
    "PatientAge PatientBirthName PatientBirthTime PatientComments PatientInstitutionResidence "
    "PatientInsurancePlanCodeSequence PatientMotherBirthName PatientPrimaryLanguageCodeSequence "
    "PatientReligiousPreference PatientSexNeutered PatientSize PatientState PatientTelephoneNumbers "
    "PatientTransportArrangements PatientWeight PerformedLocation PerformedProcedureStepDescription "
    "PerformedProcedureStepID PerformingPhysicianIdentificationSequence PerformingPhysicianName "
    "PersonAddress PersonIdentificationCodeSequence PersonTelephoneNumbers "
    "PhysicianApprovingInterpretation PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence "
    "PhysiciansReadingStudyIdentificationSequence PlateID PreMedication PregnancyStatus "
    "ReasonForStudy ReasonForTheImagingServiceRequest ReferencedPatientAliasSequence "
    "ReferencedPatientSequence ReferencedPerformedProcedureStepSequence ReferencedStudySequence "
    "ReferringPhysicianAddress ReferringPhysicianIdentificationSequence "
    "ReferringPhysicianTelephoneNumbers RegionOfResidence RequestAttributesSequence "
    "RequestedProcedureComments RequestedProcedureDescription RequestedProcedureID "
    "RequestedProcedureLocation RequestingPhysician RequestingPhysicianIdentificationSequence "
    "RequestingService ResponsibleOrganization ResponsiblePerson ResultsComments "
    "ResultsDistributionListSequence ResultsIDIssuer ScheduledPatientInstitutionResidence "
    "ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName "
    "ScheduledProcedureStepDescription ScheduledProcedureStepLocation SeriesDescription "
    "ServiceEpisodeDescription ServiceEpisodeID SmokingStatus SpecialNeeds StationName StudyComments "
    "StudyDescription TextComments TextString TopicAuthor TopicKeywords TopicSubject TopicTitle "
    "VerifyingOrganization VisitComments ProtocolName PerformedStationName PerformedStationAETitle "
    "ScheduledStationName ScheduledStationAETitle StationAETitle"
).split()
_Z = (
    "PatientName PatientID PatientBirthDate PatientSex ReferringPhysicianName StudyID StudyDate "
    "StudyTime ContentCreatorName"
).split()
_D = "VerifyingObserverName PersonName".split()
_U = (
    "StudyInstanceUID SeriesInstanceUID SOPInstanceUID MediaStorageSOPInstanceUID FrameOfReferenceUID "
    "ReferencedSOPInstanceUID ReferencedFrameOfReferenceUID SynchronizationFrameOfReferenceUID "
    "DimensionOrganizationUID ConcatenationUID DeviceUID IrradiationEventUID "
    "TrackingUID TargetUID ObservationUID"
).split()

#: Keyword -> action of the Basic Profile: X remove, Z empty, D dummy value, U new UID.
PROFILE: dict[str, str] = {
    **dict.fromkeys(_X, "X"),
    **dict.fromkeys(_Z, "Z"),
    **dict.fromkeys(_D, "D"),
    **dict.fromkeys(_U, "U"),
}

#: UIDs that name a class or syntax, never an instance: kept.
_KEEP_UID_KEYWORDS = {
    "SOPClassUID",
    "MediaStorageSOPClassUID",
    "ReferencedSOPClassUID",
    "TransferSyntaxUID",
    "ImplementationClassUID",
    "CodingSchemeUID",
    "ContextGroupExtensionCreatorUID",
    "MappingResourceUID",
    "ContextUID",
    "ReferencedTransferSyntaxUIDInFile",
}


@dataclass
class DeidResult:
    """What :func:`deidentify_dataset` did to one dataset."""

    removed: int = 0
    emptied: int = 0
    uids_remapped: int = 0
    private_removed: int = 0
    pixels_masked_fraction: float | None = None
    notes: list[str] = field(default_factory=list)


def _hmac(salt: str, value: str) -> bytes:
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).digest()


def _new_uid(salt: str, uid: str) -> str:
    """A ``2.25.<int>`` UID derived from ``uid`` and ``salt`` (same input -> same output)."""
    return "2.25." + str(int.from_bytes(_hmac(salt, "uid:" + uid)[:16], "big"))


def deidentify_dataset(
    ds: Dataset, *, salt: str, mask_burned_in: bool = True, patient_pseudonym: str | None = None
) -> DeidResult:
    """De-identify ``ds`` in place (see module docstring) and return what was done.

    Args:
        salt: secret; the same salt keeps UIDs and pseudonyms consistent across files.
        mask_burned_in: blank everything outside the ultrasound fan (US only).
        patient_pseudonym: PatientID to write; default ``ANON-`` + 10 hex digits of HMAC(PatientID).
    """
    from pydicom.dataset import Dataset as PydicomDataset

    if not salt:
        raise InputError("deidentify needs a non-empty salt (secret) to derive new UIDs")
    result = DeidResult()
    original_pid = str(ds.get("PatientID", "") or "")
    if mask_burned_in and str(ds.get("Modality", "")) == "US" and "PixelData" in ds:
        result.pixels_masked_fraction = mask_outside_fan(ds)
        result.notes.append("pixels outside the ultrasound fan blanked; text inside the fan is not detected")
    _clean(ds, salt, result)
    fm = getattr(ds, "file_meta", None)
    if fm is not None:
        if "MediaStorageSOPInstanceUID" in fm and "SOPInstanceUID" in ds:
            fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    pseudonym = patient_pseudonym or ("ANON-" + _hmac(salt, "pid:" + original_pid).hex()[:10].upper())
    ds.PatientID = pseudonym
    ds.PatientName = pseudonym + "^"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "liverfib Basic Application Level Confidentiality Profile"
    code = PydicomDataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = [code]
    if result.pixels_masked_fraction is not None:
        ds.BurnedInAnnotation = "NO"
    return result


def _clean(ds: Dataset, salt: str, result: DeidResult) -> None:
    from pydicom.datadict import keyword_for_tag

    for tag in list(ds.keys()):
        elem = ds[tag]
        if tag.is_private:
            del ds[tag]
            result.private_removed += 1
            continue
        group = tag.group
        if 0x5000 <= group <= 0x50FF or (0x6000 <= group <= 0x60FF and tag.element != 0x0000):
            del ds[tag]  # curves and overlays can hold burned-in annotations
            result.removed += 1
            continue
        keyword = keyword_for_tag(tag)
        action = PROFILE.get(keyword)
        if action == "X":
            del ds[tag]
            result.removed += 1
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _clean(item, salt, result)
            continue
        if action in ("Z", "D") or elem.VR in ("PN", "DA", "DT", "TM"):
            elem.value = None if elem.VR != "PN" else ""
            result.emptied += 1
            continue
        if elem.VR == "UI" and keyword not in _KEEP_UID_KEYWORDS and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            new = [
                v if str(v).startswith("1.2.840.10008.") else _new_uid(salt, str(v))
                for v in values
            ]
            elem.value = new if elem.VM > 1 else new[0]
            result.uids_remapped += 1


def mask_outside_fan(ds: Dataset) -> float:
    """Blank the pixels outside the ultrasound fan in place; returns the blanked fraction.

    Works on gray or RGB, single- or multi-frame; compressed pixel data is decompressed first.
    The fan is detected on the maximum over frames so that no frame's echoes are cut.
    """
    from liverfib.preprocess.fan import detect_fan

    try:
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress()
        pixels = ds.pixel_array.copy()
    except Exception as exc:  # pydicom raises many types on broken pixel data
        raise InputError(f"cannot decode the pixel data to mask burned-in text ({exc})") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    colour = int(ds.get("SamplesPerPixel", 1)) > 1
    gray = pixels.max(axis=-1) if colour else pixels
    if frames > 1:
        gray = gray.max(axis=0)
    fan = detect_fan(gray)
    outside = ~fan.mask
    mono1 = str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1"
    fill = pixels.max() if mono1 else pixels.min()
    if colour:
        fill = 0
        if str(ds.PhotometricInterpretation).startswith("YBR"):
            raise InputError("burned-in masking of YBR colour data is not supported; convert to RGB first")
    index = (slice(None),) * (1 if frames > 1 else 0) + (outside,)
    pixels[index] = fill
    ds.PixelData = pixels.tobytes()
    return float(outside.mean())


def deidentify_path(
    src: str | Path, out_dir: str | Path, *, salt: str, mask_burned_in: bool = True
) -> list[dict[str, Any]]:
    """De-identify one DICOM file or every DICOM file under a folder into ``out_dir``.

    Output files are named ``<new SOPInstanceUID>.dcm`` (input names may hold PHI). Files without
    the DICM marker are skipped and listed; a corrupt DICOM file is listed with its error.
    """

    from liverfib.report.dicom import save_dataset

    src, out_dir = Path(src), Path(out_dir)
    if not src.exists():
        raise InputError(f"{src}: not found; pass a DICOM file or a folder of DICOM files")
    files: Iterable[Path] = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    rows: list[dict[str, Any]] = []
    for f in files:
        with f.open("rb") as fh:
            head = fh.read(132)
        if head[128:132] != b"DICM":
            rows.append({"input": str(f), "status": "skipped", "reason": "not DICOM (no DICM marker)"})
            continue
        try:
            ds = read_dataset(f)
            res = deidentify_dataset(ds, salt=salt, mask_burned_in=mask_burned_in)
            out = save_dataset(ds, out_dir / f"{ds.SOPInstanceUID}.dcm")
        except InputError as exc:
            rows.append({"input": str(f), "status": "error", "reason": str(exc)})
            continue
        except Exception as exc:  # pydicom's parse errors have no common base class
            rows.append({"input": str(f), "status": "error", "reason": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append(
            {
                "input": str(f),
                "output": str(out),
                "status": "ok",
                "removed": res.removed,
                "emptied": res.emptied,
                "uids_remapped": res.uids_remapped,
                "private_removed": res.private_removed,
                "pixels_masked_fraction": res.pixels_masked_fraction,
                "notes": res.notes,
            }
        )
    if not rows:
        raise InputError(f"{src}: no files found")
    return rows


#: Tags whose original values the intake pseudonym map keeps (new value -> original).
_MAPPED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


def load_or_create_salt(path: str | Path) -> str:
    """The de-identification secret: ``$LIVERFIB_DEID_SALT``, else the one kept in ``path``
    (created on first use with 256 random bits, mode 0600)."""
    import os
    import secrets

    from liverfib.io.atomic import atomic_write

    env = os.environ.get("LIVERFIB_DEID_SALT", "")
    if env:
        return env
    path = Path(path)
    if path.is_file():
        salt = path.read_text().strip()
        if salt:
            return salt
    salt = secrets.token_hex(32)
    atomic_write(path, data=salt + "\n")
    os.chmod(path, 0o600)
    return salt


def deidentify_on_intake(ds: Dataset, *, salt: str) -> dict[str, tuple[str, str]]:
    """De-identify a received dataset in place before it is stored; returns the pseudonym map
    ``{new value: (attribute, original value)}`` (kept only if the operator asks for it).

    Burned-in text outside the ultrasound fan is blanked. The SeriesDescription of MR series is
    kept: MR elastography series are told apart by it (magnitude, wave, stiffness).

    Raises:
        InputError: the pixel data cannot be decoded for masking.
    """
    original = {k: str(ds.get(k, "") or "") for k in ("PatientID", "PatientName", *_MAPPED_UIDS)}
    keep_desc = str(ds.get("Modality", "")).upper() == "MR" and "SeriesDescription" in ds
    description = ds.SeriesDescription if keep_desc else None
    deidentify_dataset(ds, salt=salt, mask_burned_in=True)
    if keep_desc:
        ds.SeriesDescription = description
    mapping: dict[str, tuple[str, str]] = {}
    for key, old in original.items():
        new = str(ds.get(key, "") or "")
        if old and new and new != old:
            mapping.setdefault(new, (key, old))
    if original["PatientName"]:
        mapping[str(ds.PatientID) + "|PatientName"] = ("PatientName", original["PatientName"])
    return mapping
