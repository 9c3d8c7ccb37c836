"""One DICOM Structured Report per study, stating the model's output for each predicted image.

highdicom (0.28) has no Basic Text SR class; Enhanced SR (``hd.sr.EnhancedSR``) is the closest: the same
tree of TEXT items with IMAGE references, which is all these reports use (a Basic-Text-shaped content
tree: root "Diagnostic imaging report" -> TEXT comment with the disclaimer -> one TEXT finding per image,
INFERRED FROM an IMAGE item that references the source instance). The report is flagged PARTIAL,
UNVERIFIED, PRELIMINARY and ``ContentQualification`` RESEARCH, and says "NOT FOR CLINICAL USE".

Patient and study identity: an SR written into a source study is meant for the PACS that study came from,
so it always carries that study's identity (:data:`IDENTITY_KEYWORDS`: the Patient and General Study
attributes a PACS reconciles on, plus the source StudyInstanceUID), with or without ``--keep-phi``; an SR
with placeholder patient attributes inside a real study would show one study with two patients. Only
identity is copied: the evidence handed to highdicom holds the source UIDs and those attributes, nothing
else, so no equipment, institution or device serial number reaches the SR (highdicom copies the evidence's
acquisition equipment when it has one). Every other output of a run stays identifier-free unless
``--keep-phi`` (:mod:`mcolor.inference.outputs`).

A study whose predicted files disagree on any identity attribute (two PatientIDs under one
StudyInstanceUID: a mislabelled export) gets no SR: its rows carry an ``sr_not_written`` warning naming
the attributes (never their values), because whichever identity were picked, the report would be filed
under the wrong patient for some of its images.

Needs the optional ``sr`` extra (highdicom); ``mcolor infer --sr`` checks it before reading any file.
"""

from __future__ import annotations

import copy
import io
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pydicom.valuerep import PersonName

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
SERIES_NUMBER = 9901
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
_REPORT = hd.sr.CodedConcept("18748-4", "LN", "Diagnostic imaging report")
_COMMENT = hd.sr.CodedConcept("121106", "DCM", "Comment")
_FINDING = hd.sr.CodedConcept("121071", "DCM", "Finding")
_UID = re.compile(r"[0-9][0-9.]{0,63}")
_SOURCE = hd.sr.CodedConcept("121112", "DCM", "Source of Measurement")


#: Patient module attributes the SR copies from its study's source files (the issuer qualifies the ID: one
#: PatientID from two issuers is two patients).
PATIENT_KEYWORDS = ("PatientName", "PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence",
                    "PatientBirthDate", "PatientSex")
#: General Study attributes the SR copies (StudyInstanceUID comes with the evidence UIDs).
STUDY_KEYWORDS = ("StudyDate", "StudyTime", "AccessionNumber", "IssuerOfAccessionNumberSequence",
                  "ReferringPhysicianName", "StudyID")
#: The one list of identity attributes: copied into the SR, compared across the files of a study.
IDENTITY_KEYWORDS = PATIENT_KEYWORDS + STUDY_KEYWORDS
#: Type 2 attributes highdicom reads from the evidence unconditionally: present (empty) when a source lacks them.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
          "StudyTime", "ReferringPhysicianName")


class StudyRefused(Exception):
    """This study gets no SR; the message is a PHI-free sentence for its rows' ``sr_not_written`` warning."""


def _sop_class(record: FileRecord) -> str:
    """The source SOP class for the reference; CR Image Storage when the header had no valid one."""
    uid = record.header.get("sop_class_uid", "")
    return uid if uid and uid != WITHHELD else CR_IMAGE_STORAGE


def _comparable(value: Any) -> Any:
    """An identity value for comparison: absent and empty are the same (Type 2), names compare as text."""
    if value is None or value == "":
        return ""
    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, Sequence):
        return [sorted((str(e.tag), repr(e.value)) for e in item) for item in value]
    return value if isinstance(value, str) else repr(value)


def read_identity(record: FileRecord) -> Dataset:
    """The source file's identity (:data:`IDENTITY_KEYWORDS` + its character set), header only.

    Raises:
        StudyRefused: the file cannot be read again or is no longer the instance that was predicted.
    """
    try:
        src = pydicom.dcmread(str(record.path), stop_before_pixels=True, force=True,
                              specific_tags=["SpecificCharacterSet", "SOPInstanceUID", "StudyInstanceUID",
                                             *IDENTITY_KEYWORDS])
    except Exception as exc:  # the file changed or vanished since it was predicted
        raise StudyRefused(f"a source header could not be read again ({type(exc).__name__})") from exc
    if (str(src.get("SOPInstanceUID", "")) != record.uids.get("sop_instance_uid")
            or str(src.get("StudyInstanceUID", "")) != record.uids.get("study_instance_uid")):
        raise StudyRefused("a source file changed since it was predicted (its UIDs differ)")
    identity = Dataset()
    if "SpecificCharacterSet" in src:
        identity.add(copy.deepcopy(src["SpecificCharacterSet"]))
    for keyword in IDENTITY_KEYWORDS:
        if keyword in src:
            identity.add(copy.deepcopy(src[keyword]))
        elif keyword in _TYPE2:
            setattr(identity, keyword, "")
    return identity


def study_identity(records: list[FileRecord]) -> Dataset:
    """The one identity of a study's predicted files.

    Raises:
        StudyRefused: a file cannot be read again, or the files disagree on an identity attribute (the
            message names the attributes, never their values).
    """
    identities = [read_identity(r) for r in records]
    first = identities[0]
    differ = [k for k in IDENTITY_KEYWORDS
              if any(_comparable(i.get(k)) != _comparable(first.get(k)) for i in identities[1:])]
    if differ:
        raise StudyRefused(f"the files of this study disagree on {', '.join(differ)} (more than one patient or "
                           "order under one StudyInstanceUID); no SR is written for an ambiguous identity")
    return first


def _evidence(record: FileRecord, identity: Dataset) -> Dataset:
    """The source instance's UIDs plus the study's identity: everything highdicom copies, nothing more."""
    ds = Dataset()
    for element in identity:
        ds.add(copy.deepcopy(element))
    ds.SOPClassUID = _sop_class(record)
    ds.SOPInstanceUID = record.uids["sop_instance_uid"]
    ds.StudyInstanceUID = record.uids["study_instance_uid"]
    ds.SeriesInstanceUID = record.uids["series_instance_uid"]
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
    identity: Dataset | None = None,
) -> hd.sr.EnhancedSR:
    """The SR of one study from its predicted records; ``others`` = files of the study not predicted.

    ``identity``: the study's patient and study attributes (default: read from the source files with
    :func:`study_identity`, which raises :class:`StudyRefused` when they disagree).
    """
    if identity is None:
        identity = study_identity(records)
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
    evidence = [_evidence(r, identity) for r in _unique(records)]
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


def write_reports(out_dir: Path, records: list[FileRecord], model: InferenceModel) -> list[Path]:
    """One ``sr/<StudyInstanceUID>.dcm`` per study with a predicted DICOM image (``study_NNNN.dcm``
    if the UID is malformed: a header value never picks a path).

    A study that gets no SR (:class:`StudyRefused`, or highdicom refusing a source value) adds a warning to
    its predicted rows, so call this before the tables are written; the run goes on with the other studies.
    """
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
        try:
            with quiet_dicom():  # pydicom/highdicom warnings quote header values (the patient's name)
                sr = study_report(predicted[study], others[study], model, series_uid, number)
                buf = io.BytesIO()
                sr.save_as(buf, enforce_file_format=True)
        except StudyRefused as exc:
            _refuse(study, predicted[study], str(exc))
            continue
        except Exception as exc:  # a source value highdicom rejects (e.g. PatientSex "U"): this study only
            _refuse(study, predicted[study], f"the SR could not be built from this study's headers "
                                             f"({type(exc).__name__}; values withheld)")
            continue
        safe = _UID.fullmatch(study) is not None  # a header value must never pick a path
        path = out_dir / SR_DIR / (f"{study}.dcm" if safe else f"study_{number:04d}.dcm")
        atomic_write(path, lambda fh, data=buf.getvalue(): fh.write(data), mode="wb")
        written.append(path)
    log.info("wrote %d structured report(s) to %s", len(written), out_dir / SR_DIR)
    return written


def _refuse(study: str, records: list[FileRecord], why: str) -> None:
    """No SR for ``study``: one warning log line and an ``sr_not_written`` warning on each of its rows."""
    log.warning("no structured report for study %s: %s", study if _UID.fullmatch(study) else "(malformed UID)", why)
    for r in records:
        r.warnings.append(f"sr_not_written: {why}")
