"""One DICOM Structured Report per study, stating the model's output for each predicted image.

highdicom (0.28) has no Basic Text SR class; Enhanced SR (``hd.sr.EnhancedSR``) is the closest: the same
tree of TEXT items with IMAGE references, which is all these reports use (a Basic-Text-shaped content
tree: root "Diagnostic imaging report" -> TEXT comment with the disclaimer -> one TEXT finding per image,
INFERRED FROM an IMAGE item that references the source instance). The report is flagged PARTIAL,
UNVERIFIED, PRELIMINARY and ``ContentQualification`` RESEARCH, and says "NOT FOR CLINICAL USE".

Patient and study identity: without ``keep_phi`` the evidence handed to highdicom is a minimal data set
holding only UIDs and clearly-anonymous placeholders (PatientName ``ANONYMIZED^NOT-THE-PATIENT``,
PatientID ``MCOLOR-ANONYMIZED``), so nothing identifying (nor device serial numbers or institution) can be
copied from the source. Such an SR keeps the source StudyInstanceUID and is meant for local viewing, not
for import into a PACS (whose patient reconciliation would rightly reject the mismatch). With
``keep_phi`` the source headers are the evidence and highdicom copies the Patient and Study modules.
"""

from __future__ import annotations

import io
import logging
import re
from collections import defaultdict
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from mcolor import __version__
from mcolor.atomic import atomic_write
from mcolor.extras import require
from mcolor.inference.models import InferenceModel
from mcolor.inference.outputs import DISCLAIMER
from mcolor.inference.rules import WITHHELD
from mcolor.inference.scan import FileRecord, quiet_dicom

hd = require("sr", "DICOM SR output (mcolor infer --sr)")
log = logging.getLogger(__name__)

SR_DIR = "sr"
ANON_NAME = "ANONYMIZED^NOT-THE-PATIENT"
ANON_ID = "MCOLOR-ANONYMIZED"
SERIES_NUMBER = 9901
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
_REPORT = hd.sr.CodedConcept("18748-4", "LN", "Diagnostic imaging report")
_COMMENT = hd.sr.CodedConcept("121106", "DCM", "Comment")
_FINDING = hd.sr.CodedConcept("121071", "DCM", "Finding")
_UID = re.compile(r"[0-9][0-9.]{0,63}")
_SOURCE = hd.sr.CodedConcept("121112", "DCM", "Source of Measurement")


#: Patient and Study attributes the SR's header carries: blanked when anonymous, required when copied.
_PATIENT_STUDY_KEYWORDS = ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate", "StudyTime")


def _sop_class(record: FileRecord) -> str:
    """The source SOP class for the reference; CR Image Storage when the header had no valid one."""
    uid = record.header.get("sop_class_uid", "")
    return uid if uid and uid != WITHHELD else CR_IMAGE_STORAGE


def _anonymous_evidence(record: FileRecord) -> Dataset:
    """UIDs plus placeholder patient/study attributes: all highdicom needs, nothing it could leak."""
    ds = Dataset()
    ds.SOPClassUID = _sop_class(record)
    ds.SOPInstanceUID = record.uids["sop_instance_uid"]
    ds.StudyInstanceUID = record.uids["study_instance_uid"]
    ds.SeriesInstanceUID = record.uids["series_instance_uid"]
    ds.PatientName, ds.PatientID = ANON_NAME, ANON_ID
    for keyword in (*_PATIENT_STUDY_KEYWORDS, "ReferringPhysicianName"):
        setattr(ds, keyword, "")
    return ds


def _source_evidence(record: FileRecord) -> Dataset:
    """The source header (``--keep-phi``): highdicom copies its Patient and Study modules."""
    ds = pydicom.dcmread(str(record.path), stop_before_pixels=True)
    for keyword in ("PatientName", "PatientID", *_PATIENT_STUDY_KEYWORDS):
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def _unique(records: list[FileRecord]) -> list[FileRecord]:
    """One record per SOP instance: copies of the same file must not be listed twice as evidence."""
    seen: dict[str, FileRecord] = {}
    for r in records:
        seen.setdefault(r.uids["sop_instance_uid"], r)
    return list(seen.values())


def _finding(record: FileRecord, model: InferenceModel) -> hd.sr.TextContentItem:
    probs = record.probabilities or []
    parts = [
        f"{n}: probability {p:.3f}" + (f" (threshold {t:.3f})" if model.task != "multiclass" else "")
        for n, p, t in zip(model.output_names, probs, model.thresholds or [0.0] * len(probs), strict=False)
    ]
    text = f"{'; '.join(parts)}. Model output: {record.predicted}."
    item = hd.sr.TextContentItem(_FINDING, text[:1024], relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    image = hd.sr.ImageContentItem(
        _SOURCE,
        _sop_class(record),
        record.uids["sop_instance_uid"],
        relationship_type=hd.sr.RelationshipTypeValues.INFERRED_FROM,
    )
    item.ContentSequence = [image]
    return item


def study_report(
    records: list[FileRecord],
    others: int,
    model: InferenceModel,
    series_uid: str,
    instance_number: int,
    keep_phi: bool = False,
) -> hd.sr.EnhancedSR:
    """The SR of one study from its predicted records; ``others`` = files of the study not predicted."""
    root = hd.sr.ContainerContentItem(_REPORT)
    comment = (
        f"{DISCLAIMER} Produced automatically by mcolor {__version__} with model {model.name} "
        f"{model.version} ({model.task}, thresholds: {model.threshold_source})."
    )
    if others:
        comment += f" {others} other file(s) of this study were not analysed (see report.json)."
    items = [hd.sr.TextContentItem(_COMMENT, comment, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)]
    items += [_finding(r, model) for r in records]
    root.ContentSequence = items
    evidence = [(_source_evidence if keep_phi else _anonymous_evidence)(r) for r in _unique(records)]
    sr = hd.sr.EnhancedSR(
        evidence=evidence,
        content=root,
        series_instance_uid=series_uid,
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=instance_number,
        manufacturer="mcolor (research software)",
        is_complete=False,
        is_final=False,
        is_verified=False,
        content_qualification="RESEARCH",
        series_description="mcolor research output - NOT FOR CLINICAL USE",
        software_versions=__version__,
    )
    return sr


def write_reports(
    out_dir: Path, records: list[FileRecord], model: InferenceModel, keep_phi: bool = False
) -> list[Path]:
    """One ``sr/<StudyInstanceUID>.dcm`` per study with a predicted DICOM image (``study_NNNN.dcm``
    if the UID is malformed: a header value never picks a path)."""
    predicted: dict[str, list[FileRecord]] = defaultdict(list)
    others: dict[str, int] = defaultdict(int)
    for r in records:
        study = r.uids.get("study_instance_uid")
        if not study:
            continue
        if r.status == "predicted" and r.uids.get("sop_instance_uid"):
            predicted[study].append(r)
        else:
            others[study] += 1
    series_uid = generate_uid()
    written = []
    for number, study in enumerate(sorted(predicted), start=1):
        with quiet_dicom():  # pydicom/highdicom warnings quote header values (the kept patient name)
            sr = study_report(predicted[study], others[study], model, series_uid, number, keep_phi)
        buf = io.BytesIO()
        sr.save_as(buf, enforce_file_format=True)
        safe = _UID.fullmatch(study) is not None  # a header value must never pick a path
        path = out_dir / SR_DIR / (f"{study}.dcm" if safe else f"study_{number:04d}.dcm")
        atomic_write(path, lambda fh, data=buf.getvalue(): fh.write(data), mode="wb")
        written.append(path)
    log.info("wrote %d structured report(s) to %s", len(written), out_dir / SR_DIR)
    return written
