"""Manifest format (docs/CONTRACTS.md): write/load round trip, strict loading, the validator, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcolor.cli import main
from mcolor.data.manifests import (
    image_reference,
    load_manifest,
    save_manifest,
    sidecar_path,
    validate_manifest,
    write_manifest,
)
from mcolor.errors import ManifestError


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)
    return path


def _binary_manifest(tmp_path: Path) -> Path:
    """A clean 6-row binary manifest with real PNG files and patient ids."""
    rows = []
    for i, (split, label, patient) in enumerate(
        [
            ("train", 0, "p1"),
            ("train", 1, "p1"),
            ("train", 1, "p2"),
            ("val", 0, "p3"),
            ("test", 1, "p4"),
            ("test", 0, "p5"),
        ]
    ):
        _png(tmp_path / "img" / f"{i}.png", value=i * 10)
        rows.append({"image": f"img/{i}.png", "split": split, "label": label, "patient_id": patient})
    write_manifest(rows, ["normal", "pneumonia"], "binary", tmp_path / "manifest.csv", "unit test", "CC0")
    return tmp_path / "manifest.csv"


def _write_raw(tmp_path: Path, csv_text: str, meta: dict | None) -> Path:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(csv_text)
    if meta is not None:
        sidecar_path(csv_path).write_text(json.dumps(meta))
    return csv_path


BINARY = {"task": "binary", "labels": ["normal", "pneumonia"], "source": "s", "license": "l"}


def test_round_trip_binary_records(tmp_path: Path) -> None:
    manifest = load_manifest(_binary_manifest(tmp_path))
    assert manifest.task == "binary" and manifest.labels == ("normal", "pneumonia")
    assert manifest.num_outputs == 1
    assert manifest.splits() == ["train", "val", "test"]
    assert manifest.counts() == {"train": 3, "val": 1, "test": 2}
    meta = json.loads((tmp_path / "manifest.json").read_text())
    assert meta["counts"] == {"train": 3, "val": 1, "test": 2}
    assert meta["source"] == "unit test" and meta["license"] == "CC0"
    train = manifest.records("train")
    assert [r["row"] for r in train] == [2, 3, 4]
    assert train[0]["image"] == str(tmp_path / "img" / "0.png") and os.path.isabs(train[0]["image"])
    assert train[1]["label"].dtype == np.float32 and train[1]["label"].tolist() == [1.0]
    assert train[0]["patient_id"] == "p1"
    assert len(manifest.records()) == 6
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic write left nothing


def test_multilabel_masks_uncertain_and_blank(tmp_path: Path) -> None:
    rows = [
        {"image": "/abs/a.png", "split": "train", "A": 1, "B": -1, "C": None},
        {"image": "b.png", "split": "test", "A": 0.0, "B": float("nan"), "C": "1"},
    ]
    m = write_manifest(rows, ["A", "B", "C"], "multilabel", tmp_path / "ml.csv", "s", "l")
    assert (tmp_path / "ml.csv").read_text().splitlines() == [
        "image,split,A,B,C",
        "/abs/a.png,train,1,-1,",
        "b.png,test,0,,1",
    ]
    loaded = load_manifest(tmp_path / "ml.csv")
    assert loaded.num_outputs == 3 == m.num_outputs
    first, second = loaded.records()
    np.testing.assert_array_equal(first["label"], np.array([1, np.nan, np.nan], dtype=np.float32))
    np.testing.assert_array_equal(second["label"], np.array([0, np.nan, 1], dtype=np.float32))
    assert first["image"] == "/abs/a.png" and first["patient_id"] is None


def test_multiclass_labels_are_ints(tmp_path: Path) -> None:
    rows = [{"image": f"{i}.png", "split": "train", "label": i % 3} for i in range(6)]
    write_manifest(rows, ["a", "b", "c"], "multiclass", tmp_path / "mc.csv", "s", "l")
    m = load_manifest(tmp_path / "mc.csv")
    assert m.num_outputs == 3
    assert [r["label"] for r in m.records("train")] == [0, 1, 2, 0, 1, 2]
    assert all(type(r["label"]) is int for r in m.records("train"))


def test_load_accepts_float_text_and_bom(tmp_path: Path) -> None:
    path = _write_raw(tmp_path, "\ufeffimage,split,label\na.png,train,1.0\nb.png,val,\n", BINARY)
    records = load_manifest(path).records()
    assert records[0]["label"].tolist() == [1.0] and np.isnan(records[1]["label"][0])


@pytest.mark.parametrize(
    ("csv_text", "meta", "reason", "where"),
    [
        ("image,split,label\n", None, "missing_sidecar", "sidecar not found"),
        ("image,split,label\n", "{not json", "bad_sidecar", "m.json"),
        ("image,split,label\n", {"task": "regression", "labels": []}, "bad_sidecar", "'task'"),
        ("image,split,label\n", {"task": "binary", "labels": ["a"]}, "bad_sidecar", "exactly 2"),
        ("path,split,label\na.png,train,1\n", BINARY, "bad_header", "m.csv:1:"),
        ("image,split\na.png,train\n", BINARY, "bad_header", "['label']"),
        ("image,split,label\na.png,train,1\nb.png,train,2\n", BINARY, "bad_label", "m.csv:3:"),
        ("image,split,label\na.png,train,1\nb.png,train,-1\n", BINARY, "bad_label", "m.csv:3:"),
        ("image,split,label\na.png,train,1\nb.png,dev,0\n", BINARY, "unknown_split", "m.csv:3:"),
        ("image,split,label\na.png,train,1\n,train,0\n", BINARY, "empty_image", "m.csv:3:"),
        ("image,split,label\na.png,train,1,7\n", BINARY, "bad_row", "m.csv:2:"),
        ("image,split,label,label\n", BINARY, "bad_header", "duplicate"),
    ],
)
def test_load_rejects_bad_manifests(tmp_path: Path, csv_text: str, meta, reason: str, where: str) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(csv_text)
    if isinstance(meta, str):
        sidecar_path(csv_path).write_text(meta)
    elif meta is not None:
        sidecar_path(csv_path).write_text(json.dumps(meta))
    with pytest.raises(ManifestError) as info:
        load_manifest(csv_path)
    assert info.value.reason == reason
    assert where in str(info.value)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.csv")
    assert info.value.reason == "missing_file" and "nope.csv" in str(info.value)


def test_multiclass_label_out_of_range(tmp_path: Path) -> None:
    meta = {"task": "multiclass", "labels": ["a", "b", "c"], "source": "s", "license": "l"}
    path = _write_raw(tmp_path, "image,split,label\na.png,train,2\nb.png,train,3\n", meta)
    with pytest.raises(ManifestError, match=r"m\.csv:3: .*0\.\.2") as info:
        load_manifest(path)
    assert info.value.reason == "bad_label"


def test_write_refuses_invalid_rows(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        write_manifest(
            [{"image": "a.png", "split": "train", "label": 5}],
            ["n", "p"],
            "binary",
            tmp_path / "x.csv",
            "",
            "",
        )
    assert info.value.reason == "bad_label"
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(ManifestError, match="reserved"):
        write_manifest([], ["image"], "multilabel", tmp_path / "x.csv", "", "")


def test_write_is_atomic_and_syncs_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both files go through mcolor.atomic, which also fsyncs the folder so that the renames survive a crash."""
    import stat

    import mcolor.atomic

    synced: list[bool] = []
    real = os.fsync

    def record(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(mcolor.atomic.os, "fsync", record)
    out = tmp_path / "new" / "m.csv"
    write_manifest([{"image": "a.png", "split": "train", "label": 1}], ["n", "p"], "binary", out, "", "")
    assert synced == [False, True, False, True]  # csv, folder, sidecar, folder
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.csv", "m.json"]  # no temporary left
    assert out.read_bytes() == b"image,split,label\na.png,train,1\n"


def test_save_rebases_relative_paths(tmp_path: Path) -> None:
    m = load_manifest(_binary_manifest(tmp_path))
    inside = save_manifest(m, tmp_path / "copy.csv")
    assert inside.rows[0]["image"] == "img/0.png"
    elsewhere = save_manifest(m.filter(lambda r: r["split"] != "train"), tmp_path / "sub" / "dir" / "m.csv")
    assert elsewhere.rows[0]["image"] == str(tmp_path / "img" / "3.png")
    assert load_manifest(tmp_path / "sub" / "dir" / "m.csv").records()[0]["image"] == str(
        tmp_path / "img" / "3.png"
    )
    assert json.loads((tmp_path / "sub" / "dir" / "m.json").read_text())["counts"] == {"val": 1, "test": 2}
    assert image_reference(tmp_path / "a" / "b.png", tmp_path) == "a/b.png"
    assert image_reference("/elsewhere/b.png", tmp_path) == "/elsewhere/b.png"


def test_validator_clean_manifest(tmp_path: Path) -> None:
    issues = validate_manifest(_binary_manifest(tmp_path))
    assert [i for i in issues if i.severity == "error"] == []
    assert main(["manifest", "validate", str(tmp_path / "manifest.csv")]) == 0


def test_validator_reports_each_problem_on_its_line(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "d", "e"):
        _png(tmp_path / f"{name}.png")
    _png(tmp_path / "copy_of_a.png")  # same bytes as a.png (all images are zeros)
    _png(tmp_path / "other.png", value=200)
    csv_text = (
        "image,split,label,patient_id\n"
        "a.png,train,1,p1\n"  # 2 ok
        "b.png,train,0,p2\n"  # 3 ok
        "missing.png,train,0,p3\n"  # 4 missing_image
        "c.png,test,1,p1\n"  # 5 patient_leak (p1 in train line 2)
        "b.png,val,0,p9\n"  # 6 image_in_two_splits (b.png in train line 3)
        "d.png,train,7,p4\n"  # 7 bad_label
        "e.png,holdout,0,p5\n"  # 8 unknown_split
        "copy_of_a.png,test,1,p6\n"  # 9 duplicate_content (only with hashing)
        "other.png,train,1,p7\n"  # 10 ok
        "other.png,train,1,p7\n"  # 11 duplicate_image (warning)
    )
    path = _write_raw(tmp_path, csv_text, {**BINARY, "counts": {"train": 99}})
    found = {(i.line, i.code) for i in validate_manifest(path)}
    expected = {
        (4, "missing_image"),
        (5, "patient_leak"),
        (6, "image_in_two_splits"),
        (7, "bad_label"),
        (8, "unknown_split"),
        (11, "duplicate_image"),
        (0, "counts_mismatch"),
    }
    assert expected <= found
    assert not any(code == "duplicate_content" for _, code in found)
    hashed = validate_manifest(path, hash_content=True)
    content = [i for i in hashed if i.code == "duplicate_content"]
    assert any(i.line == 9 and i.severity == "error" and "a.png" in i.message for i in content)
    leak = next(i for i in hashed if i.code == "patient_leak")
    assert "p1" in leak.message and "line 2" in leak.message
    assert main(["manifest", "validate", str(path)]) == 1
    assert main(["manifest", "validate", "--hash", "--limit", "1", str(path)]) == 1


def test_validator_never_raises(tmp_path: Path) -> None:
    assert [i.code for i in validate_manifest(tmp_path / "nope.csv")] == ["missing_file"]
    path = _write_raw(tmp_path, "image,split,label\na.png,train,1\n", None)
    codes = {i.code for i in validate_manifest(path, check_files=False)}
    assert "missing_sidecar" in codes and "no_patient_id" in codes
    path = _write_raw(tmp_path, "file,label\na.png,1\n", BINARY)
    assert [(i.line, i.code) for i in validate_manifest(path)] == [(1, "bad_header")]


def test_validator_warns_missing_class(tmp_path: Path) -> None:
    path = _write_raw(tmp_path, "image,split,label,patient_id\na.png,train,1,p\nb.png,test,0,q\n", BINARY)
    issues = validate_manifest(path, check_files=False)
    assert [(i.code, i.severity) for i in issues] == [("class_missing", "warning")]
    assert main(["manifest", "validate", "--no-files", str(path)]) == 0
    assert main(["manifest", "validate", "--no-files", "--strict", str(path)]) == 1


def test_cli_info_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _binary_manifest(tmp_path)
    assert main(["manifest", "info", str(path)]) == 0
    assert "train: 3" in capsys.readouterr().out
    assert main(["manifest", "info", str(tmp_path / "missing.csv")]) == 2
    assert "[missing_file]" in capsys.readouterr().err
    assert main(["manifest"]) == 2
