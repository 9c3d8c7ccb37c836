"""``mcolor infer`` end to end on a messy folder of real DICOMs: statuses, outputs, PHI, exit codes.

A tiny model is trained once per module through the real bundle (``monai.bundle run``); the input folder
mixes real chest CR (SIIM, pydicom-data RG1), extremity CR, CT, US, SEG, SR, RT, multi-frame MR, a
DICOMDIR and broken files, plus edited copies (lateral view, planted PHI, no body part).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import torch
from pydicom.uid import generate_uid

from mcolor.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # every test here runs the session's trained bundle through mcolor infer
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SIIM = SHARED / "data" / "dicom"
PLANTED = {
    "PatientName": "Doe^Jane^Secret",
    "PatientID": "PHI-123456",
    "PatientBirthDate": "19700101",
    "StudyDate": "19991231",
    "AccessionNumber": "ACC-98765",
    "ReferringPhysicianName": "Referrer^Secret",
}
#: Identifiers that must never appear in any output or log by default (planted ones + the real files' own).
PHI_TOKENS = [
    "Doe^Jane",
    "Jane",
    "Secret",
    "PHI-123456",
    "19700101",
    "19991231",
    "ACC-98765",
    "Referrer",
    "CompressedSamples",
    "9RG1",
    "19400305",
    "Lestrade",
    "JANCT000",
]
EXPECTED: dict[str, tuple[str, str]] = {
    "study1/series1/siim_mono2.dcm": ("predicted", ""),
    "study1/series1/siim_mono1.dcm": ("predicted", ""),
    "study1/series2/lateral.dcm": ("skipped", "view_position_not_allowed"),
    "study1/series2/truncated.dcm": ("error", "truncated_pixel_data"),
    "study2/RG1_UNCI.dcm": ("predicted", ""),
    "study2/RG1_J2KI.dcm": ("predicted", ""),
    "study3/RG3_UNCI.dcm": ("skipped", "body_part_not_allowed"),
    "study3/RG3_J2KI.dcm": ("skipped", "body_part_not_allowed"),
    "phi/planted.dcm": ("predicted", ""),
    "phi/no_body_part.dcm": ("predicted", ""),
    "other/CT_small.dcm": ("skipped", "modality_not_allowed"),
    "other/US1_UNCR.dcm": ("skipped", "modality_not_allowed"),
    "other/seg.dcm": ("skipped", "non_image_sop"),
    "other/report_sr.dcm": ("skipped", "non_image_sop"),
    "other/sc_rgb.dcm": ("skipped", "modality_not_allowed"),
    "other/multiframe.dcm": ("skipped", "multi_frame"),
    "other/rtplan.dcm": ("skipped", "non_image_sop"),
    "DICOMDIR": ("skipped", "dicomdir"),
    "misc/DICOMDIR": ("skipped", "not_dicom"),
    "misc/empty.dcm": ("skipped", "empty_file"),
    "misc/random.dcm": ("skipped", "not_dicom"),
    "misc/notes.txt": ("skipped", "not_dicom"),
    "misc/<img src=x onerror=alert(1)>.txt": ("skipped", "not_dicom"),
    "misc/corrupt.dcm": ("error", "header_unreadable"),
    "misc/chest.png": ("skipped", "non_dicom_image"),
    "misc/loop": ("skipped", "symlink_dir"),
}


def pydicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name)
    if found is None:
        pytest.skip(f"pydicom test file {name} is unavailable (pip install pydicom-data)")
    return Path(str(found))


def copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def edited(src: Path, dst: Path, new_study: bool = False, **values: Any) -> None:
    """A copy of ``src`` with header edits (``None`` deletes); new SOP instance (and study) UIDs."""
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    if new_study:
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    for keyword, value in values.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst)


def tree_hash(root: Path) -> dict[str, str]:
    """Every entry of the tree: content hash, size and mtime for files, target for links."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            if path.is_symlink():
                out[str(path)] = f"link:{os.readlink(path)}"
            elif path.is_file():
                out[str(path)] = (
                    f"{hashlib.sha256(path.read_bytes()).hexdigest()}:{st.st_size}:{st.st_mtime_ns}"
                )
            else:
                out[str(path)] = f"dir:{st.st_mode}"
    return out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, trained_bundle: Path) -> Path:
    """A copy of the session's tiny trained bundle (models/model.pt, models/model.ts, trained metadata)."""
    root = tmp_path_factory.mktemp("bundles") / "cxr_colorization"
    shutil.copytree(trained_bundle, root, ignore=shutil.ignore_patterns("eval"))
    return root


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SIIM.is_dir():
        pytest.skip(f"real data folder {SIIM} is absent")
    root = tmp_path_factory.mktemp("messy") / "input"
    mono2, mono1 = (
        SIIM / "siim_cr_chest_monochrome2_jpeg.dcm",
        SIIM / "siim_cr_chest_fake_monochrome1_jpeg.dcm",
    )
    copy(mono2, root / "study1/series1/siim_mono2.dcm")
    copy(mono1, root / "study1/series1/siim_mono1.dcm")
    edited(mono2, root / "study1/series2/lateral.dcm", ViewPosition="LL")
    rg1 = pydicom_file("RG1_UNCI.dcm").read_bytes()
    (root / "study1/series2/truncated.dcm").write_bytes(rg1[: len(rg1) // 2])
    for name in ("RG1_UNCI.dcm", "RG1_J2KI.dcm"):
        copy(pydicom_file(name), root / "study2" / name)
    for name in ("RG3_UNCI.dcm", "RG3_J2KI.dcm"):
        copy(pydicom_file(name), root / "study3" / name)
    edited(mono2, root / "phi/planted.dcm", new_study=True, **PLANTED)
    edited(mono2, root / "phi/no_body_part.dcm", new_study=True, BodyPartExamined=None)
    for name, dst in (
        ("CT_small.dcm", "CT_small.dcm"),
        ("US1_UNCR.dcm", "US1_UNCR.dcm"),
        ("liver_1frame.dcm", "seg.dcm"),
        ("reportsi.dcm", "report_sr.dcm"),
        ("SC_rgb.dcm", "sc_rgb.dcm"),
        ("emri_small.dcm", "multiframe.dcm"),
        ("rtplan.dcm", "rtplan.dcm"),
    ):
        copy(pydicom_file(name), root / "other" / dst)
    copy(pydicom_file("DICOMDIR"), root / "DICOMDIR")
    misc = root / "misc"
    misc.mkdir()
    (misc / "DICOMDIR").write_text("not really a DICOMDIR\n")
    (misc / "empty.dcm").write_bytes(b"")
    rng = np.random.default_rng(0)
    (misc / "random.dcm").write_bytes(b"\x01" + rng.bytes(5000))
    (misc / "notes.txt").write_text("scanned on Tuesday\n")
    (misc / "<img src=x onerror=alert(1)>.txt").write_text("html\n")
    (misc / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + rng.bytes(3000))
    from PIL import Image

    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(misc / "chest.png")
    (misc / "loop").symlink_to("..")
    return root


def run_cli(*args: str | Path) -> int:
    return main(["infer", *map(str, args), "--no-progress"])


def rows_of(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "predictions.csv", newline="", encoding="utf-8") as fh:
        return {r["path"]: r for r in csv.DictReader(fh)}


def png_text(data: bytes) -> str:
    """All text chunks (tEXt, zTXt, iTXt) of a PNG, decompressed."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, texts = 8, []
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            texts.append(body.decode("latin-1"))
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            texts.append(key.decode("latin-1") + zlib.decompress(rest[1:]).decode("latin-1"))
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            compressed, payload = rest[0], rest[2:].split(b"\0", 2)[-1]
            texts.append(key.decode() + (zlib.decompress(payload) if compressed else payload).decode())
        pos += 12 + length
    return "\n".join(texts)


def assert_no_phi(text: str | bytes, where: str) -> None:
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    for token in PHI_TOKENS + [siim_patient_id()]:
        assert token.encode() not in raw, f"{token!r} leaked into {where}"


def siim_patient_id() -> str:
    return str(
        pydicom.dcmread(SIIM / "siim_cr_chest_monochrome2_jpeg.dcm", stop_before_pixels=True).PatientID
    )


@pytest.fixture(scope="module")
def default_run(messy: Path, bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One full default run (SR + previews, decoding in 2 workers), with its logs and the input hashes."""
    out = tmp_path_factory.mktemp("out") / "result"
    before = tree_hash(messy)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    old_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        rc = run_cli(messy, "--bundle", bundle, "--out", out, "--sr", "--previews", "--num-workers", "2")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(old_level)
    return {"rc": rc, "out": out, "before": before, "after": tree_hash(messy), "logs": "\n".join(records)}


def test_every_file_gets_its_status_and_reason(default_run: dict[str, Any]) -> None:
    assert default_run["rc"] == 0
    rows = rows_of(default_run["out"])
    got = {path: (r["status"], r["reason"]) for path, r in rows.items()}
    assert got == EXPECTED
    for path, r in rows.items():
        if r["status"] != "predicted":
            assert r["message"], path
            assert r["p_opacity"] == "" and r["predicted"] == ""
        else:
            assert 0.0 <= float(r["p_opacity"]) <= 1.0
            assert r["predicted"] in ("opacity", "clear")
            assert (float(r["p_opacity"]) >= float(r["threshold_opacity"])) == (r["predicted"] == "opacity")
        assert r["model"] == "cxr_colorization" and r["model_version"]
    assert rows["phi/no_body_part.dcm"]["warnings"].startswith("body_part_missing")
    assert (
        rows["study2/RG1_UNCI.dcm"]["sop_instance_uid"] and rows["study2/RG1_UNCI.dcm"]["study_instance_uid"]
    )
    assert "patient_id" not in next(iter(rows.values()))


def test_report_json_matches_csv(default_run: dict[str, Any]) -> None:
    report = json.loads((default_run["out"] / "report.json").read_text())
    csv_rows = rows_of(default_run["out"])
    assert {r["path"]: r["status"] for r in report["rows"]} == {p: r["status"] for p, r in csv_rows.items()}
    summary = report["summary"]
    assert summary["files"] == len(EXPECTED)
    assert (summary["predicted"], summary["skipped"], summary["error"]) == (6, 18, 2)
    assert report["model"]["thresholds"] and report["model"]["threshold_source"] == "model"
    assert report["model"]["engine"] == "torchscript" and report["phi_included"] is False
    assert "NOT FOR CLINICAL USE" in report["disclaimer"]


def test_input_tree_is_unchanged(default_run: dict[str, Any]) -> None:
    assert default_run["before"] == default_run["after"]


def test_previews_and_index(default_run: dict[str, Any]) -> None:
    out = default_run["out"]
    rows = rows_of(out)
    predicted = [r for r in rows.values() if r["status"] == "predicted"]
    for r in predicted:
        png = out / r["preview"]
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        from PIL import Image

        with Image.open(png) as im:
            assert im.mode == "RGB" and im.width == 3 * 256
            arr = np.asarray(im)
        third = arr[30:200, 2 * 256 + 10 : 3 * 256 - 10].astype(int)
        assert (np.abs(third[..., 0] - third[..., 2]) > 20).any(), "Grad-CAM overlay should be coloured"
    assert len(list((out / "previews").iterdir())) == len(predicted)
    page = (out / "index.html").read_text()
    assert "NOT FOR CLINICAL USE" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.txt" in page
    for r in rows.values():
        assert r["status"] in page and r["reason"] in page
    assert page.count("<tr class=") == len(EXPECTED)


#: What an SR copies from its study's source headers (mcolor.inference.sr.IDENTITY_KEYWORDS' core).
SR_IDENTITY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
               "AccessionNumber", "ReferringPhysicianName", "StudyID")


def test_structured_reports(default_run: dict[str, Any], messy: Path) -> None:
    """One SR per study, in the source study and carrying its patient and study identity (without --keep-phi:
    the SR goes back to the PACS the study came from), nothing else of the source headers."""
    out = default_run["out"]
    rows = rows_of(out)
    studies = {r["study_instance_uid"] for r in rows.values() if r["status"] == "predicted"}
    files = sorted((out / "sr").iterdir())
    assert {f.stem for f in files} == studies
    for f in files:
        ds = pydicom.dcmread(f)
        assert (
            ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.22"
        )  # Enhanced SR (highdicom has no Basic Text SR)
        assert ds.Modality == "SR" and ds.StudyInstanceUID == f.stem
        source = next(p for p, r in rows.items() if r["status"] == "predicted" and r["study_instance_uid"] == f.stem)
        src = pydicom.dcmread(messy / source, stop_before_pixels=True)
        assert {k: str(ds.get(k, "")) for k in SR_IDENTITY} == {k: str(src.get(k, "")) for k in SR_IDENTITY}
        assert ds.VerificationFlag == "UNVERIFIED" and ds.CompletionFlag == "PARTIAL"
        refs = {
            i.ReferencedSOPInstanceUID
            for s in ds.CurrentRequestedProcedureEvidenceSequence
            for se in s.ReferencedSeriesSequence
            for i in se.ReferencedSOPSequence
        }
        expected = {
            r["sop_instance_uid"]
            for r in rows.values()
            if r["status"] == "predicted" and r["study_instance_uid"] == f.stem
        }
        assert refs == expected
        text = f.read_bytes().decode("latin-1")
        assert "NOT FOR CLINICAL USE" in text
        assert "InstitutionName" not in ds and "DeviceSerialNumber" not in ds
        for value in (src.get("InstitutionName"), src.get("DeviceSerialNumber"), src.get("StationName")):
            assert not value or str(value).encode() not in f.read_bytes(), value
    planted = pydicom.dcmread(out / "sr" / f"{rows['phi/planted.dcm']['study_instance_uid']}.dcm")
    assert {k: str(planted.get(k)) for k in PLANTED} == PLANTED
    assert not any(r["warnings"].startswith("sr_not_written") for r in rows.values())


def test_no_phi_in_any_output_or_log(default_run: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
    """Every output but the SRs (which carry their study's identity by design: test_structured_reports) and
    every log record of a run with --sr and --previews hold no identifier without --keep-phi."""
    out = default_run["out"]
    files = [p for p in out.rglob("*") if p.is_file() and p.parent.name != "sr"]
    assert {p.name for p in files} >= {"predictions.csv", "report.json", "index.html"}
    assert any(p.suffix == ".png" for p in files) and list((out / "sr").iterdir())
    for path in files:
        data = path.read_bytes()
        assert_no_phi(data, str(path))
        if path.suffix == ".png":
            assert_no_phi(png_text(data), f"{path} text chunks")
    assert_no_phi(default_run["logs"], "logs")
    assert str(default_run["out"].parent.parent) not in (out / "report.json").read_text()


def test_refuses_non_empty_output_then_overwrites_with_keep_phi_and_no_network(
    default_run: dict[str, Any],
    messy: Path,
    bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    out = default_run["out"]
    report_before = (out / "report.json").read_bytes()
    assert run_cli(messy, "--bundle", bundle, "--out", out) == 2
    assert "output_exists" in capfd.readouterr().err
    assert (out / "report.json").read_bytes() == report_before

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network access during inference")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    rc = run_cli(
        messy,
        "--bundle",
        bundle,
        "--out",
        out,
        "--overwrite",
        "--keep-phi",
        "--sr",
        "--num-workers",
        "0",
        "--threshold",
        "0.0",
    )
    monkeypatch.undo()
    assert rc == 0
    rows = rows_of(out)
    assert {p: (r["status"], r["reason"]) for p, r in rows.items()} == EXPECTED
    assert rows["phi/planted.dcm"]["patient_id"] == "PHI-123456"
    assert rows["phi/planted.dcm"]["study_date"] == "19991231"
    assert all(
        r["predicted"] == "opacity" for r in rows.values() if r["status"] == "predicted"
    )  # threshold 0
    assert not (out / "previews").exists() and not (out / "index.html").exists()  # stale outputs removed
    report = json.loads((out / "report.json").read_text())
    assert report["phi_included"] is True and report["model"]["threshold_source"] == "override"
    planted_sr = out / "sr" / f"{rows['phi/planted.dcm']['study_instance_uid']}.dcm"
    ds = pydicom.dcmread(planted_sr)
    assert ds.PatientID == "PHI-123456" and str(ds.PatientName) == "Doe^Jane^Secret"
    assert tree_hash(messy) == default_run["before"]


def test_bundle_config_shares_the_code_path(
    default_run: dict[str, Any], messy: Path, bundle: Path, tmp_path: Path
) -> None:
    """``monai.bundle run inference.json`` (MONAI's evaluator, eager network, MONAI transforms) on the same folder
    gives the same rows and probabilities as ``mcolor infer`` (its own loop, TorchScript, plain functions)."""
    env = {**os.environ, "MCOLOR_CACHE": str(tmp_path / "cache")}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            str(bundle / "configs" / "inference.json"),
            "--bundle_root",
            str(bundle),
            "--output_dir",
            str(tmp_path),
            "--input_dir",
            str(messy),
            "--allow_non_dicom",
            "false",
            "--progress",
            "false",
        ],
        cwd=REPO,
        check=True,
        env=env,
        capture_output=True,
        timeout=600,
    )
    cli, bundled = rows_of(default_run["out"]), rows_of(tmp_path)
    assert {p: (r["status"], r["reason"]) for p, r in bundled.items()} == EXPECTED
    for path, r in cli.items():
        if r["status"] == "predicted":
            assert abs(float(r["p_opacity"]) - float(bundled[path]["p_opacity"])) < 1e-5, path


def small_folder(root: Path) -> Path:
    if not SIIM.is_dir():
        pytest.skip(f"real data folder {SIIM} is absent")
    copy(SIIM / "siim_cr_chest_monochrome2_jpeg.dcm", root / "a" / "img.dcm")
    copy(SIIM / "siim_cr_chest_fake_monochrome1_jpeg.dcm", root / "b" / "img1.dcm")
    return root


def test_exit_codes(tmp_path: Path, bundle: Path, capfd: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(empty, "--bundle", bundle, "--out", tmp_path / "o1") == 4
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("nothing here")
    assert run_cli(junk, "--bundle", bundle, "--out", tmp_path / "o2") == 4
    assert rows_of(tmp_path / "o2")["notes.txt"]["reason"] == "not_dicom"
    folder = small_folder(tmp_path / "in")
    not_a_bundle = tmp_path / "not_a_bundle"
    not_a_bundle.mkdir()
    assert run_cli(folder, "--bundle", not_a_bundle, "--out", tmp_path / "o3") == 3
    assert run_cli(folder, "--bundle", tmp_path / "missing.zip", "--out", tmp_path / "o4") == 3
    no_model = tmp_path / "no_model"
    shutil.copytree(bundle / "configs", no_model / "configs")
    assert run_cli(folder, "--bundle", no_model, "--out", tmp_path / "o5") == 3
    assert "missing_model" in capfd.readouterr().err
    assert run_cli(tmp_path / "nope", "--bundle", bundle, "--out", tmp_path / "o6") == 2
    assert run_cli(folder, "--bundle", bundle, "--out", folder / "out") == 2
    bad_rules = tmp_path / "rules.yaml"
    bad_rules.write_text("modality: [CR]\n")
    assert run_cli(folder, "--bundle", bundle, "--out", tmp_path / "o7", "--rules", bad_rules) == 2
    assert main(["infer", str(folder), "--out", str(tmp_path / "o8")]) == 2  # no bundle, no HOLOSCAN_MODEL_PATH
    assert "missing --bundle" in capfd.readouterr().err
    with pytest.raises(SystemExit):
        main(["infer", "--help"])
    help_text = capfd.readouterr().out
    assert "exit codes" in help_text and "--keep-phi" in help_text


def test_zip_bundle_and_the_bundles_model_file(tmp_path: Path, bundle: Path) -> None:
    folder = small_folder(tmp_path / "in")
    archive = shutil.make_archive(
        str(tmp_path / "cxr_colorization"), "zip", root_dir=bundle.parent, base_dir=bundle.name
    )
    assert run_cli(folder, "--bundle", archive, "--out", tmp_path / "z") == 0
    assert {r["status"] for r in rows_of(tmp_path / "z").values()} == {"predicted"}
    assert run_cli(folder, "--bundle", bundle / "models" / "model.pt", "--out", tmp_path / "p") == 0
    assert {r["model"] for r in rows_of(tmp_path / "p").values()} == {"cxr_colorization"}
    z, p = rows_of(tmp_path / "z"), rows_of(tmp_path / "p")
    assert all(z[k]["p_opacity"] == p[k]["p_opacity"] for k in z)


def test_torchscript_is_used_unless_eager_or_stale(tmp_path: Path, bundle: Path) -> None:
    from mcolor.artifact import load_trained_model

    folder = small_folder(tmp_path / "in")
    ts_bundle = tmp_path / "ts_bundle"
    shutil.copytree(bundle, ts_bundle)

    def run(*extra: str) -> tuple[str, dict[str, dict[str, str]]]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        assert run_cli(folder, "--bundle", ts_bundle, "--out", out, *extra) == 0
        return json.loads((out / "report.json").read_text())["model"]["engine"], rows_of(out)

    engine, scripted = run()
    assert engine == "torchscript"
    engine, eager = run("--eager")
    assert engine == "eager"
    assert all(abs(float(scripted[k]["p_opacity"]) - float(eager[k]["p_opacity"])) < 1e-5 for k in scripted)
    assert run("--previews")[0] == "torchscript"  # previews build the eager network beside it
    # an export that does not carry the weights' digest (here: a plain trace of other weights) is never run
    other = load_trained_model(ts_bundle).network
    for p in other.backbone.get_classifier().parameters():
        torch.nn.init.normal_(p)
    torch.jit.trace(other, torch.rand(1, 1, 32, 32)).save(str(ts_bundle / "models" / "model.ts"))
    engine, fallback = run()
    assert engine == "eager" and all(fallback[k]["p_opacity"] == eager[k]["p_opacity"] for k in eager)
    assert run_cli(folder, "--bundle", ts_bundle, "--out", tmp_path / "ts_only", "--backend", "torchscript") == 3


#: Largest |p_onnx - p_torchscript| and |p_onnx - p_eager| accepted on a predicted file: the export check's
#: tolerance on logits (``ONNX_ATOL``, 1e-4), which bounds probabilities too; the outputs hold 5 decimals.
ONNX_P_TOL = 1e-4


def test_onnx_backend_predicts_what_torchscript_and_eager_predict(tmp_path: Path, bundle: Path) -> None:
    """On real chest radiographs (SIIM CR JPEG, MONOCHROME1 twin; pydicom-data RG1 uncompressed and JPEG 2000),
    ``--backend onnx`` gives the probabilities of ``--backend torchscript`` and ``--backend eager``."""
    from mcolor.artifact import load_trained_model
    from mcolor.bundle.export import export_onnx, onnx_available

    if not onnx_available():
        pytest.skip("onnx/onnxruntime not installed (pip install 'mcolor[onnx]')")
    folder = small_folder(tmp_path / "in")
    for name in ("RG1_UNCI.dcm", "RG1_J2KI.dcm"):
        copy(pydicom_file(name), folder / "rg1" / name)
    onnx_bundle = tmp_path / "onnx_bundle"
    shutil.copytree(bundle, onnx_bundle)
    trained = load_trained_model(onnx_bundle)
    export_onnx(trained.network, onnx_bundle / "models" / "model.onnx",
                torch.rand(1, 1, trained.image_size, trained.image_size))
    probs = {}
    for backend in ("onnx", "torchscript", "eager"):
        out = tmp_path / backend
        assert run_cli(folder, "--bundle", onnx_bundle, "--out", out, "--backend", backend) == 0
        assert json.loads((out / "report.json").read_text())["model"]["engine"] == backend
        probs[backend] = {k: float(r["p_opacity"]) for k, r in rows_of(out).items() if r["status"] == "predicted"}
    assert len(probs["onnx"]) == 4 and probs["onnx"].keys() == probs["torchscript"].keys() == probs["eager"].keys()
    for other in ("torchscript", "eager"):
        diff = max(abs(probs["onnx"][k] - probs[other][k]) for k in probs["onnx"])
        assert diff <= ONNX_P_TOL, (other, diff, probs)
