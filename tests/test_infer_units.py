"""Pieces of ``mcolor infer`` without a trained model: decisions per task, rows, HTML, collate, scan, SR."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_sr_file_name_never_comes_from_a_malformed_uid(tmp_path: Path) -> None:
    model = fake_model("binary", ["opacity"], ["clear", "opacity"])
    rec = FileRecord(
        Path("/x"),
        "x.dcm",
        status="predicted",
        probabilities=[0.9],
        predicted="opacity",
        uids={"sop_instance_uid": "1.2.3.4", "study_instance_uid": "../../evil", "series_instance_uid": "1.2.3.5"},
        header={"sop_class_uid": "1.2.840.10008.5.1.4.1.1.1"},
    )
    paths = write_reports(tmp_path, [rec], model)
    assert [p.name for p in paths] == ["study_0001.dcm"] and paths[0].parent == tmp_path / "sr"
    ds = pydicom.dcmread(paths[0])
    assert ds.PatientID == "MCOLOR-ANONYMIZED"


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
