"""Model-zoo sharing with a real (tiny) trained bundle: pack, verify, tamper, export-color, transfer.

The session's trained bundle (``conftest.trained_bundle``: resnet18 + coloru at 32 px, 1 epoch on the synthetic
phantoms) is packed once per module.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from bundle_runner import BUNDLE, TINY, new_bundle, run_bundle

from mcolor.artifact import read_weights
from mcolor.bundle import MODEL_PT, open_bundle
from mcolor.bundle.export import onnx_available
from mcolor.bundle.large_files import parse_large_files, sha256_file
from mcolor.bundle.pack import pack_bundle
from mcolor.bundle.verify import verify_bundle
from mcolor.cli import main as cli
from mcolor.color_transfer import read_color_module
from mcolor.errors import BundleError, ConfigError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packed(trained_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    version = json.loads((BUNDLE / "configs" / "metadata.json").read_text())["version"]
    out = tmp_path_factory.mktemp("dist") / f"cxr_colorization_v{version}.zip"
    args = ["bundle", "pack", str(trained_bundle), "--out", str(out), "--url", "https://example.org/r"]
    assert cli(args + (["--onnx"] if onnx_available() else [])) == 0
    return out


def test_pack_layout_hashes_and_metadata(packed: Path, trained_bundle: Path) -> None:
    with zipfile.ZipFile(packed) as zf:
        names = set(zf.namelist())
        assert {n.split("/")[0] for n in names} == {"cxr_colorization"}
        for required in ("configs/metadata.json", "configs/train.json", "configs/inference.json",
                         "configs/evaluate.json", "docs/README.md", "LICENSE", "models/model.pt",
                         "models/model.ts", "large_files.yml"):
            assert f"cxr_colorization/{required}" in names, required
        entries = {e.path: e for e in parse_large_files(zf.read("cxr_colorization/large_files.yml"))}
        meta = json.loads(zf.read("cxr_colorization/configs/metadata.json"))
    assert entries[MODEL_PT].sha256 == sha256_file(trained_bundle / MODEL_PT)
    assert entries[MODEL_PT].url == "https://example.org/r/model.pt"
    assert "models/model.ts" in entries
    assert not any("/eval/" in n for n in names)  # training outputs stay behind
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [32, 32]
    assert meta["mcolor_model"]["spec"]["backbone"] == "resnet18"
    assert meta == json.loads((trained_bundle / "configs" / "metadata.json").read_text())


def test_verify_packed_zip_json(packed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli(["bundle", "verify", str(packed), "--json"])
    report = json.loads(capsys.readouterr().out)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert code == 0 and report["ok"], report
    for name in ("archive", "metadata", "layout", "large_files", "model", "net_in_out", "ckpt_export"):
        assert status[name] == "pass", (name, report)
    assert status["onnx"] == ("pass" if onnx_available() else "skip")


def test_verify_trusted_runs_monai_net_in_out_and_ckpt_export(packed: Path) -> None:
    report = verify_bundle(packed, trust_bundle=True, onnx=False)
    assert report.ok, report.format_text()
    check = next(c for c in report.checks if c.name == "net_in_out")
    assert "monai.bundle.verify_net_in_out" in check.detail, check
    check = next(c for c in report.checks if c.name == "ckpt_export")
    assert "monai.bundle.ckpt_export" in check.detail and "shipped models/model.ts" in check.detail, check


def test_tampered_weights_are_refused(packed: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / packed.name
    with zipfile.ZipFile(packed) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(MODEL_PT):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(info, data)
    work = tmp_path / "work"
    with pytest.raises(BundleError, match="models/model.pt") as err:
        open_bundle(bad, workdir=work)
    assert err.value.reason == "hash_mismatch"
    assert not work.exists()
    assert cli(["bundle", "verify", str(bad), "--no-onnx"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] large_files" in out and "sha256" in out


def test_pack_refuses_wrong_version_name(trained_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError) as err:
        pack_bundle(trained_bundle, tmp_path / "cxr_colorization_v9.9.9.zip")
    assert err.value.reason == "version_mismatch"
    assert not (tmp_path / "cxr_colorization_v9.9.9.zip").exists()


def test_bundle_configs_are_never_run_without_trust(packed: Path, tmp_path: Path) -> None:
    """A bundle whose configs would write a marker file: loading, verifying and inferring run none of them."""
    with zipfile.ZipFile(packed) as zf:
        zf.extractall(tmp_path / "x")
    src = tmp_path / "x" / "cxr_colorization"
    marker = tmp_path / "marker.txt"
    for name in ("train.json", "inference.json", "evaluate.json"):
        cfg = json.loads((src / "configs" / name).read_text())
        cfg["imports"] = [f"$open({str(marker)!r}, 'w').write('ran')"]
        (src / "configs" / name).write_text(json.dumps(cfg))
    with open_bundle(src) as bundle:
        bundle.load_model().network  # noqa: B018
        with pytest.raises(BundleError):
            bundle.config_parser("inference.json")
    assert verify_bundle(src, onnx=False).ok
    (tmp_path / "in").mkdir()
    assert cli(["infer", str(tmp_path / "in"), "--bundle", str(src), "--out", str(tmp_path / "o")]) == 4
    assert not marker.exists()


def test_export_color_then_transfer_to_another_backbone(trained_bundle: Path, packed: Path, tmp_path: Path,
                                                        synthetic_cache: Path) -> None:
    """Colour module of a resnet18 run starts (and, frozen, stays) in a mobilenetv2_100 run."""
    color = tmp_path / "color.pt"
    assert cli(["bundle", "export-color", str(packed), "--out", str(color)]) == 0
    payload = read_color_module(color)
    assert payload["registry_name"] == "coloru"
    from_folder = tmp_path / "color_folder.pt"
    assert cli(["bundle", "export-color", str(trained_bundle), "--out", str(from_folder)]) == 0
    _assert_same(read_color_module(from_folder)["state_dict"], payload["state_dict"])
    trained_sd = read_weights(trained_bundle / MODEL_PT)
    _assert_same({k[len("color."):]: v for k, v in trained_sd.items() if k.startswith("color.")},
                 payload["state_dict"])

    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.read_meta(str(BUNDLE / "configs" / "metadata.json"))
    parser.update({"backbone": "mobilenetv2_100", "pretrained": False, "color_init": str(color),
                   "freeze_color": True, "image_size": 32, "bundle_root": str(tmp_path / "start")})
    network = parser.get_parsed_content("network")
    assert network.backbone_name == "mobilenetv2_100"
    _assert_same(network.color.state_dict(), payload["state_dict"])

    target = new_bundle(tmp_path / "mobilenet")
    run_bundle(["train.json"], {**TINY, "backbone": "mobilenetv2_100", "color_init": color, "freeze_color": "true"},
               synthetic_cache, target)
    for sd in (read_weights(target / MODEL_PT),
               read_weights(target / "eval" / "checkpoints" / "model_final.pt")["model"]):
        color_sd = {k[len("color."):]: v for k, v in sd.items() if k.startswith("color.")}
        _assert_same(color_sd, payload["state_dict"])
        assert any(k.startswith("backbone.") for k in sd)


def test_color_module_for_another_registry_name_is_refused(packed: Path, tmp_path: Path) -> None:
    color = tmp_path / "color.pt"
    cli(["bundle", "export-color", str(packed), "--out", str(color)])
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.read_meta(str(BUNDLE / "configs" / "metadata.json"))
    parser.update({"color_module": "deconv", "backbone": "resnet18", "pretrained": False,
                   "color_init": str(color), "bundle_root": str(tmp_path / "x")})
    with pytest.raises(Exception) as err:  # MONAI wraps instantiation errors in RuntimeError
        parser.get_parsed_content("network")
    cause = err.value
    while cause is not None and not isinstance(cause, ConfigError):
        cause = cause.__cause__
    assert isinstance(cause, ConfigError), err.value
    assert cause.reason == "color_module_mismatch"
    assert "'coloru'" in str(cause) and "'deconv'" in str(cause) and str(color) in str(cause)


def _assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for key in want:
        assert torch.equal(got[key].cpu(), want[key].cpu()), key
