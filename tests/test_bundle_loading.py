"""Opening bundles safely: metadata schema, zip safety, large-file hashes, weights-only checkpoints.

No training here: checkpoints are built directly from the registry (tiny, fast).
"""

from __future__ import annotations

import copy
import json
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

import pytest
import torch

from mcolor.artifact import ModelSpec, OperatingPoint, write_trained_model
from mcolor.bundle import MODEL_PT, open_bundle
from mcolor.bundle.large_files import LargeFile, dump_large_files, parse_large_files, safe_relpath, sha256_file
from mcolor.bundle.metadata import load_schema, metadata_problems, schema_path
from mcolor.bundle.safezip import unsafe_name
from mcolor.errors import BundleError
from mcolor.networks import ColorizedClassifier

REPO_BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "cxr_colorization"
MANDATORY = ("version", "changelog", "monai_version", "pytorch_version", "numpy_version",
             "required_packages_version", "task", "description", "authors", "copyright",
             "network_data_format", "intended_use", "data_source", "references")
TENSOR_KEYS = ("type", "format", "modality", "num_channels", "spatial_shape", "dtype", "value_range",
               "is_patch_data", "channel_def")


def repo_metadata() -> dict:
    return json.loads((REPO_BUNDLE / "configs" / "metadata.json").read_text())


def copy_bundle(dst: Path) -> Path:
    """The repo bundle without weights (configs, docs, LICENSE, large_files.yml)."""
    shutil.copytree(REPO_BUNDLE, dst, ignore=shutil.ignore_patterns("*.pt", "*.ts", "*.onnx", "__pycache__"))
    return dst


TINY_SPEC = ModelSpec(color_module="coloru", backbone="resnet18", num_classes=1, labels=["normal", "opacity"],
                      output_names=["opacity"], image_size=32)


def tiny_model(root: Path) -> Path:
    """Make ``root`` (a bundle copy) a trained bundle with random weights for coloru + resnet18: a plain state dict
    in ``models/model.pt`` described by ``configs/metadata.json``."""
    net = ColorizedClassifier("coloru", "resnet18", num_classes=1, pretrained=False)
    return write_trained_model(root, net.state_dict(), TINY_SPEC, OperatingPoint(1))


def legacy_checkpoint(path: Path, **extra: object) -> Path:
    """What mcolor 0.1 saved as model.pt: weights, operating point and spec nested in one dict."""
    net = ColorizedClassifier("coloru", "resnet18", num_classes=1, pretrained=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict(), "operating_point": OperatingPoint(1).state_dict(),
                "spec": TINY_SPEC.to_dict(), **extra}, path)
    return path


def write_zip(path: Path, files: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc")
    return path


def bundle_files(meta: dict | None = None, prefix: str = "cxr_colorization/") -> dict[str, bytes]:
    return {f"{prefix}configs/metadata.json": json.dumps(meta or repo_metadata()).encode(),
            f"{prefix}configs/inference.json": (REPO_BUNDLE / "configs" / "inference.json").read_bytes(),
            f"{prefix}docs/README.md": b"# x\n", f"{prefix}LICENSE": b"Apache-2.0\n"}


class Evil:
    """Not a tensor: a weights-only load must refuse a checkpoint holding it."""


# --- metadata -----------------------------------------------------------------------------------------


def test_repo_metadata_is_spec_complete() -> None:
    meta = repo_metadata()
    assert metadata_problems(meta) == []
    assert meta["version"] in meta["changelog"]
    assert "not for clinical use" in meta["intended_use"].lower()
    for section in ("inputs", "outputs"):
        for tensor in meta["network_data_format"][section].values():
            assert set(TENSOR_KEYS) <= set(tensor)


def test_schema_requires_every_mandatory_key() -> None:
    schema = load_schema()
    assert set(MANDATORY) <= set(schema["required"])
    assert set(TENSOR_KEYS) <= set(schema["definitions"]["tensor"]["required"])
    assert schema_path().is_file()


@pytest.mark.parametrize("key", MANDATORY)
def test_missing_mandatory_key_is_named(key: str) -> None:
    meta = repo_metadata()
    del meta[key]
    problems = metadata_problems(meta)
    assert any(repr(key) in p for p in problems), problems


@pytest.mark.parametrize("key", TENSOR_KEYS)
def test_missing_tensor_key_is_named(key: str) -> None:
    meta = repo_metadata()
    del meta["network_data_format"]["inputs"]["image"][key]
    assert any(repr(key) in p and "inputs/image" in p for p in metadata_problems(meta))


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda m: m.update(version="1.0"), "version"),
    (lambda m: m.update(version="9.9.9"), "changelog has no entry for version '9.9.9'"),
    (lambda m: m.update(references=[]), "references"),
    (lambda m: m["network_data_format"]["inputs"]["image"].update(dtype="float"), "dtype"),
    (lambda m: m["network_data_format"]["inputs"]["image"].update(value_range=[0]), "value_range"),
])
def test_bad_values_are_named(mutate, expected: str) -> None:
    meta = copy.deepcopy(repo_metadata())
    mutate(meta)
    assert any(expected in p for p in metadata_problems(meta)), metadata_problems(meta)


def test_monai_verify_metadata_uses_local_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MONAI's own verifier, pointed at our schema, validates without downloading anything."""
    import monai.apps.utils as apps_utils
    from monai.bundle import verify_metadata

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("verify_metadata tried to download")

    monkeypatch.setattr(apps_utils, "urlretrieve", no_download)
    monkeypatch.setattr(apps_utils, "urlopen", no_download)
    local = {"filepath": str(schema_path()), "create_dir": False, "hash_val": sha256_file(schema_path()),
             "hash_type": "sha256"}
    verify_metadata(meta_file=str(REPO_BUNDLE / "configs" / "metadata.json"), **local)
    bad = repo_metadata()
    del bad["copyright"]
    (tmp_path / "m.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="copyright"):
        verify_metadata(meta_file=str(tmp_path / "m.json"), **local)


# --- folder bundles -----------------------------------------------------------------------------------


def test_open_repo_bundle_folder() -> None:
    bundle = open_bundle(REPO_BUNDLE)
    assert bundle.root == REPO_BUNDLE.resolve()
    assert bundle.name == "cxr_colorization"
    assert bundle.version == repo_metadata()["version"]
    assert bundle.model_path == bundle.root / "models" / "model.pt"
    assert bundle.large_files == []


def test_missing_model_and_missing_bundle(tmp_path: Path) -> None:
    bundle = open_bundle(copy_bundle(tmp_path / "b"))
    assert bundle.ts_path is None
    with pytest.raises(BundleError) as err:
        bundle.load_model()
    assert err.value.reason == "missing_model"
    with pytest.raises(BundleError) as err:
        open_bundle(tmp_path / "nope")
    assert err.value.reason == "not_found"
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(BundleError) as err:
        open_bundle(tmp_path / "x.txt")
    assert err.value.reason == "bad_bundle"


def test_folder_without_or_with_bad_metadata(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path / "b")
    meta = repo_metadata()
    del meta["task"]
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="missing mandatory key 'task'") as err:
        open_bundle(root)
    assert err.value.reason == "bad_metadata"
    (root / "configs" / "metadata.json").unlink()
    with pytest.raises(BundleError) as err:
        open_bundle(root)
    assert err.value.reason == "missing_metadata"


def test_load_model_from_folder(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path / "b")
    tiny_model(root)
    entry = LargeFile(MODEL_PT, sha256_file(root / MODEL_PT))
    (root / "large_files.yml").write_text(dump_large_files([entry]))
    model = open_bundle(root).load_model()
    assert model.spec.backbone == "resnet18"
    assert model.network(torch.rand(1, 1, 32, 32)).shape == (1, 1)


def test_weights_other_than_the_described_ones_are_refused(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path / "b")
    tiny_model(root)
    other = ColorizedClassifier("coloru", "resnet18", num_classes=1, pretrained=False)
    torch.save(other.state_dict(), root / MODEL_PT)  # replaced behind the metadata's back
    with pytest.raises(BundleError, match="sha256") as err:
        open_bundle(root).load_model()
    assert err.value.reason == "hash_mismatch"


@pytest.mark.slow
def test_legacy_checkpoint_fails_loudly_then_converts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle packed by mcolor 0.1 (nested checkpoint, no mcolor_model section) never loads as an untrained
    model: every loader names the converter, and the converter gives back exactly the trained tensors."""
    import monai

    from mcolor.artifact import load_trained_model, read_weights
    from mcolor.cli import main

    old = legacy_checkpoint(tmp_path / "old" / "model.pt")
    root = copy_bundle(tmp_path / "b")
    (root / "models").mkdir()
    (root / MODEL_PT).write_bytes(old.read_bytes())
    meta = repo_metadata()
    del meta["mcolor_model"]
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    for load in (lambda: open_bundle(root).load_model(), lambda: load_trained_model(root),
                 lambda: load_trained_model(old)):
        with pytest.raises(BundleError, match="mcolor bundle convert") as err:
            load()
        assert err.value.reason == "legacy_checkpoint"
    (tmp_path / "in").mkdir()
    assert main(["infer", str(tmp_path / "in"), "--bundle", str(old), "--out", str(tmp_path / "o")]) == 3
    assert "legacy_checkpoint" in capsys.readouterr().err
    assert main(["bundle", "convert", str(old), "--out", str(tmp_path / "new")]) == 0
    converted = open_bundle(tmp_path / "new").load_model()
    before, after = read_weights(old)["model"], read_weights(tmp_path / "new" / MODEL_PT)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert converted.spec == TINY_SPEC.__class__.from_dict({**TINY_SPEC.to_dict(), "mcolor_version":
                                                            converted.spec.mcolor_version})
    net = monai.bundle.load("new", bundle_dir=str(tmp_path), workflow_type="inference")
    assert all(torch.equal(net.state_dict()[k], before[k]) for k in before)
    assert main(["bundle", "convert", str(tmp_path / "new" / MODEL_PT), "--out", str(tmp_path / "again")]) == 2
    assert "not_legacy" in capsys.readouterr().err and not (tmp_path / "again").exists()


def test_hash_mismatch_in_folder_is_refused(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path / "b")
    tiny_model(root)
    (root / "large_files.yml").write_text(dump_large_files([LargeFile(MODEL_PT, "0" * 64)]))
    with pytest.raises(BundleError, match="sha256") as err:
        open_bundle(root)
    assert err.value.reason == "hash_mismatch"
    assert "model.pt" in str(err.value)


def test_pickled_objects_in_checkpoint_are_refused(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path / "b")
    tiny_model(root)
    state = torch.load(root / MODEL_PT, weights_only=True)
    torch.save({**state, "evil": Evil()}, root / MODEL_PT)
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    meta["mcolor_model"]["provenance"]["weights_sha256"] = sha256_file(root / MODEL_PT)
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError) as err:
        open_bundle(root).load_model()
    assert err.value.reason == "unsafe_checkpoint"
    assert str(root / MODEL_PT) in str(err.value)


def test_configs_need_trust(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path / "b")
    with pytest.raises(BundleError) as err:
        open_bundle(root).config_parser("inference.json")
    assert err.value.reason == "untrusted_bundle"
    parser = open_bundle(root, trust_bundle=True).config_parser("inference", output_dir=str(tmp_path))
    assert parser["bundle_root"] == str(root.resolve())
    assert parser["_meta_"]["version"] == repo_metadata()["version"]


# --- zip bundles --------------------------------------------------------------------------------------


def test_open_zip_spec_layout_and_flat(tmp_path: Path) -> None:
    for prefix in ("cxr_colorization/", ""):
        work = tmp_path / f"work{len(prefix)}"
        z = write_zip(tmp_path / f"b{len(prefix)}.zip", bundle_files(prefix=prefix))
        with open_bundle(z, workdir=work) as bundle:
            assert (bundle.root / "configs" / "metadata.json").is_file()
            assert bundle.root.is_relative_to(work.resolve())
            assert bundle.name == "cxr_colorization"
        assert list(work.iterdir()) == []  # close() removed the extraction folder


@pytest.mark.parametrize("name", ["cxr_colorization/../../evil.txt", "/abs/evil.txt", "..\\evil.txt",
                                  "C:/evil.txt", "cxr_colorization/configs/../../../evil.txt"])
def test_path_traversal_is_refused_before_extracting(tmp_path: Path, name: str) -> None:
    files = bundle_files()
    files[name] = b"pwned"
    z = write_zip(tmp_path / "evil.zip", files)
    work = tmp_path / "work"
    with pytest.raises(BundleError) as err:
        open_bundle(z, workdir=work)
    assert err.value.reason == "unsafe_zip"
    assert "nothing was extracted" in str(err.value)
    assert not work.exists() or list(work.rglob("*")) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_symlink_entry_is_refused(tmp_path: Path) -> None:
    z = write_zip(tmp_path / "link.zip", bundle_files(), symlinks=("cxr_colorization/models",))
    with pytest.raises(BundleError, match="symbolic-link") as err:
        open_bundle(z, workdir=tmp_path / "work")
    assert err.value.reason == "unsafe_zip"
    assert not (tmp_path / "work").exists()


def test_zip_bomb_cap_and_duplicates(tmp_path: Path) -> None:
    files = bundle_files()
    files["cxr_colorization/docs/big.bin"] = b"\0" * 200_000
    z = write_zip(tmp_path / "big.zip", files)
    with pytest.raises(BundleError, match="uncompressed size") as err:
        open_bundle(z, workdir=tmp_path / "work", max_bytes=100_000)
    assert err.value.reason == "unsafe_zip"
    with open_bundle(z, workdir=tmp_path / "ok") as bundle:  # the default cap allows it
        assert (bundle.root / "docs" / "big.bin").stat().st_size == 200_000
    dup = tmp_path / "dup.zip"
    with zipfile.ZipFile(dup, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        for name, data in bundle_files().items():
            zf.writestr(name, data)
        zf.writestr("cxr_colorization/LICENSE", b"other")
    with pytest.raises(BundleError, match="duplicate"):
        open_bundle(dup, workdir=tmp_path / "work")
    files = bundle_files()
    files["cxr_colorization//configs/./metadata.json"] = b"{}"  # would overwrite the checked metadata
    with pytest.raises(BundleError, match="duplicate"):
        open_bundle(write_zip(tmp_path / "dup2.zip", files), workdir=tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_zip_with_bad_metadata_is_refused_before_extracting(tmp_path: Path) -> None:
    meta = repo_metadata()
    del meta["network_data_format"]["outputs"]["pred"]["dtype"]
    z = write_zip(tmp_path / "m.zip", bundle_files(meta))
    with pytest.raises(BundleError, match="'dtype'") as err:
        open_bundle(z, workdir=tmp_path / "work")
    assert err.value.reason == "bad_metadata"
    assert not (tmp_path / "work").exists()
    files = bundle_files()
    del files["cxr_colorization/configs/metadata.json"]
    with pytest.raises(BundleError) as err:
        open_bundle(write_zip(tmp_path / "n.zip", files), workdir=tmp_path / "work")
    assert err.value.reason == "missing_metadata"


def test_zip_hash_mismatch_is_refused_before_extracting(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path / "src")
    ckpt = tiny_model(root)
    files = bundle_files(json.loads((root / "configs" / "metadata.json").read_text()))
    files["cxr_colorization/models/model.pt"] = ckpt.read_bytes()
    files["cxr_colorization/large_files.yml"] = dump_large_files([LargeFile(MODEL_PT, "ab" * 32)]).encode()
    z = write_zip(tmp_path / "h.zip", files)
    with pytest.raises(BundleError, match="models/model.pt") as err:
        open_bundle(z, workdir=tmp_path / "work")
    assert err.value.reason == "hash_mismatch"
    assert not (tmp_path / "work").exists()
    good = dump_large_files([LargeFile(MODEL_PT, sha256_file(ckpt))])
    files["cxr_colorization/large_files.yml"] = good.encode()
    with open_bundle(write_zip(tmp_path / "ok.zip", files), workdir=tmp_path / "ok") as bundle:
        assert bundle.load_model().spec.color_module == "coloru"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "C:/x", "a\\b", "a\x00b", "", "ok/m.pt",
                                  "a//b/./c"])
def test_large_files_and_zip_entries_refuse_the_same_names(name: str) -> None:
    why = unsafe_name(name)
    if why is None:
        assert safe_relpath(name) == str(PurePosixPath(name))
    else:
        with pytest.raises(BundleError, match="unsafe path") as err:
            safe_relpath(name)
        assert err.value.reason == "unsafe_path" and why in str(err.value)


def test_large_files_parsing() -> None:
    good = parse_large_files("large_files:\n- path: models/model.pt\n  url: ''\n  hash_val: " + "a" * 64
                             + "\n  hash_type: sha256\n")
    assert good == [LargeFile("models/model.pt", "a" * 64, "")]
    assert parse_large_files((REPO_BUNDLE / "large_files.yml").read_text()) == []
    for text, reason in [("large_files:\n- path: ../x\n  hash_val: " + "a" * 64, "unsafe_path"),
                         ("large_files:\n- path: /etc/passwd\n  hash_val: " + "a" * 64, "unsafe_path"),
                         ("large_files:\n- path: m.pt\n  hash_val: abc", "bad_large_files"),
                         ("large_files:\n- path: m.pt\n  hash_type: md5\n  hash_val: " + "a" * 32,
                          "bad_large_files"),
                         ("large_files: 3", "bad_large_files"), ("a: [", "bad_large_files")]:
        with pytest.raises(BundleError) as err:
            parse_large_files(text)
        assert err.value.reason == reason, text


# --- verify / pack without weights --------------------------------------------------------------------


def test_verify_repo_folder_without_weights(capsys: pytest.CaptureFixture[str]) -> None:
    """The repository's bundle is untrained: the zoo requires models/model.pt, so verification fails on layout
    (and says why), while everything checkable without weights passes."""
    from mcolor.cli import main

    assert main(["bundle", "verify", str(REPO_BUNDLE), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status == {"archive": "pass", "metadata": "pass", "layout": "fail", "large_files": "pass",
                      "model": "skip", "net_in_out": "skip", "ckpt_export": "skip", "onnx": "skip"}, report
    layout = next(c for c in report["checks"] if c["name"] == "layout")
    assert "models/model.pt" in layout["detail"] and "untrained" in layout["detail"]


def test_verify_reports_a_refused_bundle(tmp_path: Path) -> None:
    from mcolor.bundle.verify import verify_bundle

    files = bundle_files()
    files["../evil.txt"] = b"x"
    report = verify_bundle(write_zip(tmp_path / "e.zip", files), workdir=tmp_path / "work")
    assert not report.ok
    failed = [c for c in report.checks if c.status == "fail"]
    assert [(c.name, c.reason) for c in failed] == [("archive", "unsafe_zip")]
    assert "FAILED: archive" in report.format_text()


def test_pack_needs_a_complete_folder(tmp_path: Path) -> None:
    from mcolor.bundle.pack import pack_bundle

    root = copy_bundle(tmp_path / "b")
    (root / "docs" / "README.md").unlink()
    with pytest.raises(BundleError, match="docs/README.md") as err:
        pack_bundle(root, tmp_path / "x.zip")
    assert err.value.reason == "bad_layout"


def test_pack_refuses_an_untrained_bundle(tmp_path: Path) -> None:
    from mcolor.bundle.pack import pack_bundle

    root = copy_bundle(tmp_path / "b")
    with pytest.raises(BundleError, match="models/model.pt") as err:
        pack_bundle(root, tmp_path / "dist" / "x.zip")
    assert err.value.reason == "missing_model"
    assert not (tmp_path / "dist").exists()


@pytest.mark.slow
def test_pack_unpacks_into_name_folder_without_outputs(tmp_path: Path) -> None:
    from mcolor.bundle.pack import default_zip_name, pack_bundle

    root = copy_bundle(tmp_path / "b")
    tiny_model(root)
    (root / "configs" / "__pycache__").mkdir()
    (root / "configs" / "__pycache__" / "x.pyc").write_bytes(b"x")
    (root / "eval").mkdir()
    (root / "eval" / "metrics.json").write_text("{}")
    out = pack_bundle(root, tmp_path / "dist" / default_zip_name(repo_metadata(), root))
    assert out.name == f"cxr_colorization_v{repo_metadata()['version']}.zip"
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert all(n.startswith("cxr_colorization/") for n in names)
    assert not any("__pycache__" in n or "/eval/" in n for n in names)
    assert {"cxr_colorization/models/model.pt", "cxr_colorization/models/model.ts"} <= set(names)
    assert list((tmp_path / "dist").iterdir()) == [out]  # no temporary file left behind
    with open_bundle(out) as bundle:
        assert bundle.name == "cxr_colorization" and bundle.load_model().spec == TINY_SPEC
