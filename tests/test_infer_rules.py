"""Selection rules of ``mcolor infer`` on headers alone, and rules files (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from mcolor.errors import ConfigError
from mcolor.inference.rules import (
    WITHHELD,
    SelectionRules,
    check_header,
    check_non_dicom,
    header_value,
    load_rules,
)

CR = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
PRIVATE_SOP = "1.2.3.4.5.6.7"


def header(**values: object) -> Dataset:
    ds = Dataset()
    base = {
        "SOPClassUID": CR,
        "Modality": "CR",
        "BodyPartExamined": "CHEST",
        "ViewPosition": "PA",
        "PhotometricInterpretation": "MONOCHROME2",
        "SamplesPerPixel": 1,
    }
    base.update(values)
    for keyword, value in base.items():
        if value is not None:
            setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({}, ""),
        ({"SOPClassUID": DX_PRESENTATION, "Modality": "DX", "ViewPosition": "AP"}, ""),
        ({"BodyPartExamined": "CHEST "}, ""),
        ({"ViewPosition": "LL"}, "view_position_not_allowed"),
        ({"ViewPosition": "LATERAL"}, "view_position_not_allowed"),
        ({"BodyPartExamined": "HAND"}, "body_part_not_allowed"),
        ({"Modality": "CT"}, "modality_not_allowed"),
        ({"Modality": None}, "modality_not_allowed"),
        ({"SOPClassUID": BASIC_TEXT_SR, "Modality": "SR"}, "non_image_sop"),
        ({"SOPClassUID": "1.2.840.10008.1.3.10"}, "dicomdir"),
        ({"SOPClassUID": DX_PROCESSING, "Modality": "DX"}, "for_processing"),
        ({"NumberOfFrames": 3}, "multi_frame"),
        ({"NumberOfFrames": 3, "Modality": "CT"}, "multi_frame"),
        ({"PhotometricInterpretation": "RGB", "SamplesPerPixel": 3}, "unsupported_photometric"),
    ],
)
def test_default_rules(values: dict[str, object], reason: str) -> None:
    decision = check_header(header(**values), SelectionRules())
    assert decision.accepted == (reason == "")
    assert decision.reason == reason
    if reason:
        assert decision.message and "\n" not in decision.message


def test_absent_body_part_and_view_are_accepted_with_warnings() -> None:
    decision = check_header(header(BodyPartExamined=None, ViewPosition=None), SelectionRules())
    assert decision.accepted
    assert [w.split(":")[0] for w in decision.warnings] == ["body_part_missing", "view_position_missing"]
    strict = SelectionRules(missing_body_part="skip")
    assert check_header(header(BodyPartExamined=None), strict).reason == "body_part_missing"
    quiet = SelectionRules(missing_body_part="accept", missing_view_position="accept")
    assert check_header(header(BodyPartExamined=None, ViewPosition=None), quiet).warnings == ()


def test_unknown_private_sop_class_is_accepted_with_a_warning() -> None:
    decision = check_header(header(SOPClassUID=PRIVATE_SOP), SelectionRules())
    assert decision.accepted and decision.warnings[0].startswith("unknown_sop_class")


def test_burned_in_annotation_is_flagged() -> None:
    decision = check_header(header(BurnedInAnnotation="YES"), SelectionRules())
    assert decision.accepted and decision.warnings[0].startswith("burned_in_annotation")


def test_non_dicom_policy() -> None:
    assert check_non_dicom("png", SelectionRules()).reason == "non_dicom_image"
    allowed = check_non_dicom("jpeg", SelectionRules(allow_non_dicom=True))
    assert allowed.accepted and allowed.warnings[0].startswith("no_dicom_header")


def test_rules_file_yaml_and_json(tmp_path: Path) -> None:
    yml = tmp_path / "rules.yaml"
    yml.write_text("modalities: [CR, DX, DR]\nview_positions: []\nbody_parts: [chest, thorax]\n")
    rules = load_rules(yml)
    assert rules.modalities == ["CR", "DX", "DR"] and rules.body_parts == ["CHEST", "THORAX"]
    assert check_header(header(ViewPosition="LL", BodyPartExamined="THORAX"), rules).accepted
    js = tmp_path / "rules.json"
    js.write_text('{"sop_classes": ["1.2.840.10008.5.1.4.1.1.1.1"], "allow_non_dicom": true}')
    rules = load_rules(js)
    assert rules.allow_non_dicom
    assert check_header(header(), rules).reason == "sop_class_not_allowed"
    assert load_rules(js, allow_non_dicom=False).allow_non_dicom is False


@pytest.mark.parametrize(
    "text",
    [
        "body_part: [CHEST]\n",
        "modalities: CR\n",
        "missing_body_part: maybe\n",
        "- a list\n",
        "allow_non_dicom: 'yes'\n",
        "modalities: [CR\n",
    ],
)
def test_bad_rules_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert info.value.reason == "bad_rules"


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_rules(tmp_path / "nope.yaml")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_malformed_values_are_never_echoed() -> None:
    """A value that swallowed its neighbours (corrupt length) must not reach a message or a column."""
    from pydicom.dataelem import DataElement

    ds = header()
    swallowed = "CR\\x00\\x10\\x00\\x10PN Doe^Jane^Secret"
    ds.add(DataElement(0x00080060, "CS", swallowed))
    ds.add(DataElement(0x00080018, "UI", "1.2.3.Doe^Jane"))
    assert header_value(ds, "Modality") == WITHHELD and header_value(ds, "SOPInstanceUID") == WITHHELD
    decision = check_header(ds, SelectionRules())
    assert decision.reason == "modality_not_allowed" and "Doe" not in decision.message
    assert header_value(header(), "Modality") == "CR" and header_value(header(), "SOPClassUID") == CR
