"""Pieces of ``mcolor infer`` without a trained model: decisions per task, rows, HTML, collate, scan, SR."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from torch import nn

from mcolor.artifact import ModelSpec, OperatingPoint, TrainedModel
from mcolor.inference.dataset import tolerant_collate
from mcolor.inference.models import InferenceModel
from mcolor.inference.outputs import columns, record_row
from mcolor.inference.predictions import predicted_label
from mcolor.inference.previews import gradcam_layer
from mcolor.inference.report_html import render_index
from mcolor.inference.rules import SelectionRules
from mcolor.inference.scan import FileRecord, scan_folder
from mcolor.inference.sr import write_reports
from mcolor.networks import ColorizedClassifier


def fake_model(
    task: str, names: list[str], labels: list[str] | None = None, thresholds: list[float] | None = None
) -> InferenceModel:
    spec = ModelSpec(task=task, output_names=names, labels=labels or names, num_classes=len(names), image_size=32,
                     backbone="resnet18", color_module="coloru")
    op = OperatingPoint(len(names))
    trained = TrainedModel(spec, op, Path("models/model.pt"), metadata={"name": "fake", "version": "0.0.1"})
    return InferenceModel(trained, nn.Identity(), "eager", thresholds or op.thresholds)


def test_predicted_label_per_task() -> None:
    binary = fake_model("binary", ["opacity"], ["clear", "opacity"], [0.3])
    assert predicted_label([0.31], binary) == "opacity" and predicted_label([0.29], binary) == "clear"
    multiclass = fake_model("multiclass", ["normal", "bacterial", "viral"])
    assert predicted_label([0.2, 0.3, 0.5], multiclass) == "viral"
    multilabel = fake_model("multilabel", ["Edema", "Effusion", "Mass"], thresholds=[0.5, 0.2, 0.9])
    assert predicted_label([0.6, 0.25, 0.5], multilabel) == "Edema|Effusion"
    assert predicted_label([0.1, 0.1, 0.1], multilabel) == "none"


def test_rows_blank_probabilities_unless_predicted_and_phi_columns() -> None:
    model = fake_model("multilabel", ["Edema", "Mass"])
    done = FileRecord(
        Path("/abs/a.dcm"),
        "a.dcm",
        status="predicted",
        probabilities=[0.7, 0.1],
        predicted="Edema",
        uids={"sop_instance_uid": "1.2.3"},
        phi={"patient_id": "P1", "study_date": "20200101"},
    )
    skipped = FileRecord(Path("/abs/b.dcm"), "b.dcm")
    skipped.skip("modality_not_allowed", "Modality CT is not one of CR, DX")
    row = record_row(done, model)
    assert row["p_Edema"] == 0.7 and row["threshold_Mass"] == 0.5 and row["sop_instance_uid"] == "1.2.3"
    assert "patient_id" not in row and "/abs" not in str(row)
    assert record_row(done, model, keep_phi=True)["patient_id"] == "P1"
    empty = record_row(skipped, model)
    assert empty["p_Edema"] == "" and empty["predicted"] == "" and empty["threshold_Edema"] == ""
    assert list(row) == columns(model)
    assert "threshold_normal" not in columns(fake_model("multiclass", ["normal", "viral"]))


def test_html_escapes_everything() -> None:
    model = fake_model("binary", ["<b>op</b>"], ["clear", "<b>op</b>"])
    rec = FileRecord(Path("/x"), '"><script>alert(1)</script>.dcm')
    rec.skip("not_dicom", "<i>not</i> & more")
    page = render_index([rec], model)
    assert "<script>" not in page and "<i>" not in page and "<b>op" not in page
    assert "&lt;script&gt;" in page and "&amp; more" in page


def test_collate_keeps_failures_and_allows_empty_batches() -> None:
    ok = {"index": 3, "image": torch.zeros(1, 4, 4), "display": None, "error": None}
    bad = {"index": 5, "image": None, "display": None, "error": ("truncated_pixel_data", "cut short")}
    batch = tolerant_collate([ok, bad])
    assert batch["index"] == [3] and batch["image"].shape == (1, 1, 4, 4)
    assert batch["failed"] == [(5, "truncated_pixel_data", "cut short")] and batch["display"] is None
    empty = tolerant_collate([bad])
    assert empty["index"] == [] and empty["image"].numel() == 0


def test_scan_does_not_follow_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "note.txt").write_text("x")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "up")
    os.symlink(tmp_path / "missing", tmp_path / "a" / "dangling.dcm")
    records = {r.rel: (r.status, r.reason) for r in scan_folder(tmp_path, SelectionRules(), progress=False)}
    assert records == {
        "a/b/note.txt": ("skipped", "not_dicom"),
        "a/b/up": ("skipped", "symlink_dir"),
        "a/dangling.dcm": ("skipped", "not_a_file"),
    }


def test_gradcam_layer_is_the_last_feature_stage() -> None:
    for backbone, layer in (("resnet18", "backbone.layer4"), ("efficientnet_lite0", "backbone.blocks.6")):
        net = ColorizedClassifier("replicate", backbone, num_classes=1, pretrained=False)
        assert gradcam_layer(net) == layer


#: Identifiers planted in source headers: the SR must carry the identity ones exactly, no other output any.
IDENTITY = {
    "PatientName": "Doe^Jane^Secret",
    "PatientID": "PHI-123456",
    "IssuerOfPatientID": "ISSUER-7",
    "PatientBirthDate": "19700101",
    "PatientSex": "F",
    "StudyDate": "19991231",
    "StudyTime": "101500",
    "AccessionNumber": "ACC-98765",
    "ReferringPhysicianName": "Referrer^Secret",
    "StudyID": "STUDY-77",
}
#: Planted too, but not identity: never copied into the SR (nor anywhere else).
NOT_IDENTITY = {"InstitutionName": "Secret General Hospital", "DeviceSerialNumber": "SN-424242",
                "Manufacturer": "AcmeRay", "PatientAddress": "1 Hidden Lane", "OperatorsName": "Tech^Hidden"}


def predicted(records: list[FileRecord]) -> list[FileRecord]:
    """Mark the selected records predicted, as the engine would (the SR needs no network)."""
    for r in records:
        assert r.status == "pending", (r.rel, r.reason)
        r.status, r.probabilities, r.predicted = "predicted", [0.8], "opacity"
    return records


def write_source(folder: Path, name: str, study: str, **elements: object) -> Path:
    from conftest import make_dataset
    from pydicom.uid import generate_uid

    ds = make_dataset(np.zeros((8, 8), np.uint8), **elements)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(folder / name, enforce_file_format=True)
    return folder / name


def test_sr_carries_the_source_identity_and_no_other_output_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SR written into a study carries exactly that study's identity (always, no --keep-phi); the tables,
    the HTML index and the logs of the same run carry none of it."""
    from pydicom.uid import generate_uid

    from mcolor.inference.outputs import write_tables
    from mcolor.inference.sr import IDENTITY_KEYWORDS

    src, out = tmp_path / "in", tmp_path / "out"
    study_a, study_b = generate_uid(), generate_uid()
    write_source(src, "a1.dcm", study_a, **IDENTITY, **NOT_IDENTITY)
    write_source(src, "a2.dcm", study_a, **IDENTITY, **NOT_IDENTITY)
    # study B: another patient; PatientSex empty in one file and absent in the other is the same identity
    write_source(src, "b1.dcm", study_b, PatientID="OTHER-1", PatientName="Roe^Richard", PatientSex="")
    write_source(src, "b2.dcm", study_b, PatientID="OTHER-1", PatientName="Roe^Richard")
    caplog.set_level(logging.DEBUG)
    records = predicted(scan_folder(src, SelectionRules(), progress=False))
    model = fake_model("binary", ["opacity"], ["clear", "opacity"])
    paths = write_reports(out, records, model)
    assert sorted(p.name for p in paths) == sorted([f"{study_a}.dcm", f"{study_b}.dcm"])
    sr_a = pydicom.dcmread(out / "sr" / f"{study_a}.dcm")
    assert sr_a.StudyInstanceUID == study_a and sr_a.Modality == "SR"
    assert {k: str(sr_a.get(k, "")) for k in IDENTITY} == IDENTITY
    assert set(IDENTITY) <= set(IDENTITY_KEYWORDS)
    raw = (out / "sr" / f"{study_a}.dcm").read_bytes()
    for value in NOT_IDENTITY.values():
        assert value.encode() not in raw, f"{value!r} copied into the SR"
    refs = {i.ReferencedSOPInstanceUID for s in sr_a.CurrentRequestedProcedureEvidenceSequence
            for se in s.ReferencedSeriesSequence for i in se.ReferencedSOPSequence}
    assert refs == {r.uids["sop_instance_uid"] for r in records if r.uids["study_instance_uid"] == study_a}
    sr_b = pydicom.dcmread(out / "sr" / f"{study_b}.dcm")
    assert (sr_b.PatientID, str(sr_b.PatientName), sr_b.PatientSex) == ("OTHER-1", "Roe^Richard", "")
    assert not any(r.warnings for r in records)
    write_tables(out, records, model)
    (out / "index.html").write_text(render_index(records, model))
    texts = {name: (out / name).read_text() for name in ("predictions.csv", "report.json", "index.html")}
    texts["logs"] = caplog.text
    for where, text in texts.items():
        for value in [*IDENTITY.values(), *NOT_IDENTITY.values(), "OTHER-1", "Roe^Richard"]:
            if value in ("F",):  # too short to search for
                continue
            assert value not in text, f"{value!r} leaked into {where}"


def test_sr_refuses_a_study_with_two_patients(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two PatientIDs under one StudyInstanceUID: no SR for that study (whichever identity it took, some of its
    images would be filed under the wrong patient); its rows say why without quoting a value."""
    from pydicom.uid import generate_uid

    from mcolor.inference.outputs import write_tables

    src, out = tmp_path / "in", tmp_path / "out"
    mixed, clean = generate_uid(), generate_uid()
    write_source(src, "m1.dcm", mixed, PatientID="PAT-AAA", PatientName="Alpha^Ann")
    write_source(src, "m2.dcm", mixed, PatientID="PAT-BBB", PatientName="Beta^Bob")
    write_source(src, "c1.dcm", clean, PatientID="PAT-CCC", PatientName="Gamma^Cid")
    write_source(src, "u1.dcm", generate_uid(), PatientID="PAT-DDD", PatientSex="U")  # not a DICOM value
    caplog.set_level(logging.DEBUG)
    records = predicted(scan_folder(src, SelectionRules(), progress=False))
    model = fake_model("binary", ["opacity"], ["clear", "opacity"])
    paths = write_reports(out, records, model)
    assert [p.name for p in paths] == [f"{clean}.dcm"]
    assert pydicom.dcmread(paths[0]).PatientID == "PAT-CCC"
    by_name = {r.rel: r for r in records}
    for name in ("m1.dcm", "m2.dcm"):
        (warning,) = by_name[name].warnings
        assert warning.startswith("sr_not_written: ") and "disagree on PatientName, PatientID (" in warning
    assert not by_name["c1.dcm"].warnings
    assert by_name["u1.dcm"].warnings == ["sr_not_written: the SR could not be built from this study's headers "
                                          "(ValueError; values withheld)"]
    assert f"no structured report for study {mixed}" in caplog.text
    write_tables(out, records, model)
    rows = (out / "predictions.csv").read_text() + caplog.text
    assert "sr_not_written" in (out / "predictions.csv").read_text()
    for value in ("PAT-AAA", "PAT-BBB", "Alpha", "Beta", "PAT-CCC", "Gamma", "PAT-DDD"):
        assert value not in rows, value


def test_sr_of_a_file_changed_since_it_was_predicted_is_refused(tmp_path: Path) -> None:
    """The identity is read again from the source at SR time: a file replaced meanwhile (another instance now)
    must not lend its patient to the report."""
    from pydicom.uid import generate_uid

    src = tmp_path / "in"
    study = generate_uid()
    path = write_source(src, "a.dcm", study, PatientID="PAT-1")
    records = predicted(scan_folder(src, SelectionRules(), progress=False))
    write_source(src, "a.dcm", study, PatientID="PAT-2")  # a new SOPInstanceUID at the same path
    assert write_reports(tmp_path / "out", records, fake_model("binary", ["opacity"])) == []
    assert records[0].warnings == ["sr_not_written: a source file changed since it was predicted (its UIDs differ)"]
    assert path.is_file()


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_sr_file_name_never_comes_from_a_malformed_uid(tmp_path: Path) -> None:
    source = write_source(tmp_path / "in", "x.dcm", "../../evil", PatientID="PAT-9")
    ds = pydicom.dcmread(source)
    model = fake_model("binary", ["opacity"], ["clear", "opacity"])
    rec = FileRecord(
        source,
        "x.dcm",
        status="predicted",
        probabilities=[0.9],
        predicted="opacity",
        uids={"sop_instance_uid": ds.SOPInstanceUID, "study_instance_uid": "../../evil",
              "series_instance_uid": ds.SeriesInstanceUID},
        header={"sop_class_uid": "1.2.840.10008.5.1.4.1.1.1"},
    )
    paths = write_reports(tmp_path, [rec], model)
    assert [p.name for p in paths] == ["study_0001.dcm"] and paths[0].parent == tmp_path / "sr"
    assert pydicom.dcmread(paths[0]).PatientID == "PAT-9"


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        ("false", False),
        ("False", False),
        ("0", False),
        ("true", True),
        (True, True),
        (False, False),
        (None, False),
        ("yes", True),
        ("off", False),
        (" ON ", True),
        (1, True),
    ],
)
def test_parse_bool(value: object, flag: bool) -> None:
    """The one boolean parser (configs, command line, environment)."""
    from mcolor.options import parse_bool

    assert parse_bool(value) is flag


@pytest.mark.parametrize("value", ["maybe", "2", "tru"])
def test_parse_bool_refuses_unclear_values(value: str) -> None:
    from mcolor.errors import ConfigError
    from mcolor.options import parse_bool

    with pytest.raises(ConfigError, match="true or false"):
        parse_bool(value, "keep_phi")
