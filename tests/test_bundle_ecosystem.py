"""The bundle in the MONAI ecosystem's own tools, on a real (tiny) trained bundle and its packed zip.

* the model zoo's checks (``ci/verify_bundle.py``: files, version, ``verify_metadata``, ``verify_net_in_out``,
  ``ckpt_export``), with MONAI's own calls, on the trained bundle folder and on the packed zip;
* the documented commands, run from the bundle's own folder (no ``--bundle_root``);
* ``monai.bundle.load`` from another working directory, for ``train`` and ``inference`` workflows and the
  TorchScript module: every tensor equals the trained one and predictions equal ``mcolor infer``'s;
* MONAI Deploy's ``MonaiBundleInferenceOperator`` on the packed ``model.ts`` when the SDK is installed (the
  ``deploy`` extra), else the operator's documented contract (the ids and embedded files it reads).

See ``docs/bundle_ecosystem.md`` for where each requirement comes from.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_runner import BUNDLE, TINY, bundle_env, new_bundle

from mcolor.artifact import MODEL_PT, load_trained_model, read_weights
from mcolor.bundle.verify import verify_bundle
from mcolor.cli import main as cli
from mcolor.io import read_radiograph
from mcolor.transforms.functional import network_input

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packed(trained_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    version = json.loads((BUNDLE / "configs" / "metadata.json").read_text())["version"]
    out = tmp_path_factory.mktemp("dist") / f"cxr_colorization_v{version}.zip"
    assert cli(["bundle", "pack", str(trained_bundle), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def unpacked(packed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip extracted as a model zoo user would: ``<bundle_dir>/cxr_colorization/...``."""
    bundle_dir = tmp_path_factory.mktemp("bundle_dir")
    with zipfile.ZipFile(packed) as zf:
        zf.extractall(bundle_dir)
    return bundle_dir


@pytest.fixture(scope="module")
def images(radiographs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small folder of real radiographs (PNG/JPEG) to predict."""
    folder = tmp_path_factory.mktemp("images")
    for path in sorted(radiographs_dir.glob("*.png"))[:2] + sorted(radiographs_dir.glob("*.jpg"))[:1]:
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def infer_probabilities(bundle: Path, images: Path, out: Path) -> dict[str, float]:
    assert cli(["infer", str(images), "--bundle", str(bundle), "--out", str(out), "--allow-non-dicom",
                "--no-progress"]) == 0
    with open(out / "predictions.csv", newline="") as fh:
        return {r["path"]: float(r["p_opacity"]) for r in csv.DictReader(fh) if r["status"] == "predicted"}


def test_zoo_checks_pass_on_the_trained_folder_and_the_packed_zip(trained_bundle: Path, packed: Path) -> None:
    for source in (trained_bundle, packed):
        report = verify_bundle(source, trust_bundle=True, onnx=False)
        assert report.ok, report.format_text()
        status = {c.name: c.status for c in report.checks}
        assert all(status[n] == "pass" for n in ("metadata", "layout", "large_files", "model", "net_in_out",
                                                 "ckpt_export")), report.format_text()


def test_zoo_checks_fail_on_a_broken_bundle(trained_bundle: Path, tmp_path: Path) -> None:
    """The zoo's checks can fail: a wrong output channel count in the metadata (verify_net_in_out), a
    large_files entry with a key the zoo's download_url does not take."""
    import shutil

    from mcolor.bundle.large_files import sha256_file

    bad = shutil.copytree(trained_bundle, tmp_path / "a" / "cxr_colorization", ignore=shutil.ignore_patterns("eval"))
    meta = json.loads((bad / "configs" / "metadata.json").read_text())
    meta["network_data_format"]["outputs"]["pred"]["num_channels"] = 2
    meta["network_data_format"]["outputs"]["pred"]["channel_def"] = {"0": "a", "1": "b"}
    (bad / "configs" / "metadata.json").write_text(json.dumps(meta))
    report = verify_bundle(bad, trust_bundle=True, onnx=False)
    assert report.status("net_in_out") == "fail" and "verify_net_in_out" in report.format_text()

    bad = shutil.copytree(trained_bundle, tmp_path / "b" / "cxr_colorization", ignore=shutil.ignore_patterns("eval"))
    digest = sha256_file(bad / MODEL_PT)
    (bad / "large_files.yml").write_text(f"large_files:\n- path: models/model.pt\n  url: ''\n  hash_val: {digest}\n"
                                         "  hash_type: sha256\n  mirror: https://example.org\n")
    report = verify_bundle(bad, trust_bundle=True, onnx=False)
    assert report.status("large_files") == "fail" and "mirror" in report.format_text()


def test_documented_commands_run_from_the_bundle_folder(tmp_path: Path, synthetic_cache: Path,
                                                         radiographs_dir: Path) -> None:
    """``cd BUNDLE && python -m monai.bundle run --config_file configs/<x>.json``, no bundle_root override."""
    bundle = new_bundle(tmp_path / "cxr_colorization")
    env = bundle_env(synthetic_cache)
    tiny = [x for k, v in TINY.items() for x in (f"--{k}", str(v))]
    for config, extra in (("train.json", tiny), ("evaluate.json", ["--progress", "false"]),
                          ("inference.json", ["--input_dir", str(radiographs_dir), "--progress", "false"])):
        proc = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", f"configs/{config}",
                               *extra], cwd=bundle, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (bundle / MODEL_PT).is_file() and (bundle / "eval" / "metrics.json").is_file()
    assert (bundle / "eval" / "predictions.csv").is_file()
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert {"val_auc", "test_auc"} <= set(meta["eval_metrics"])


def test_monai_bundle_load_round_trip(trained_bundle: Path, unpacked: Path, images: Path, tmp_path: Path) -> None:
    """``monai.bundle.load`` from another directory: the trained tensors, for both workflows and TorchScript."""
    import monai

    trained = read_weights(trained_bundle / MODEL_PT)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # bundle_root "." must not matter to load (it reads models/ itself)
    try:
        nets = {wf: monai.bundle.load("cxr_colorization", bundle_dir=str(unpacked), workflow_type=wf,
                                      device="cpu") for wf in ("train", "inference")}
        ts, meta, extra = monai.bundle.load("cxr_colorization", bundle_dir=str(unpacked), load_ts_module=True,
                                            device="cpu", config_files=["inference.json"])
    finally:
        os.chdir(cwd)
    for wf, net in nets.items():
        state = net.state_dict()
        assert set(state) == set(trained), wf
        assert all(torch.equal(state[k], trained[k]) for k in trained), wf
    assert meta["mcolor_model"]["spec"]["backbone"] == "resnet18" and "inference.json" in extra
    # predictions: the loaded modules, the bundle's own preprocessing function, and mcolor infer agree
    model = load_trained_model(unpacked / "cxr_colorization")
    expected = infer_probabilities(unpacked / "cxr_colorization", images, tmp_path / "out")
    assert len(expected) == 3
    for name, p in expected.items():
        image, _ = read_radiograph(images / name)
        x = network_input(image, model.image_size, model.letterbox)[None]
        for net in (*nets.values(), ts):
            net.eval()
            with torch.no_grad():
                got = float(model.probabilities(net(x))[0, 0])
            assert abs(got - p) < 1e-5, (name, got, p)


def test_monai_deploy_operator(packed: Path, unpacked: Path, images: Path, tmp_path: Path) -> None:
    """MONAI Deploy's bundle operator on the packed ``models/model.ts``: the probability equals mcolor infer's.

    Without the SDK (``pip install 'mcolor[deploy]'``), the operator's documented contract is checked instead:
    it reads ``metadata.json`` and ``inference.json`` from the TorchScript file's extra files, parses
    ``preprocessing``, ``postprocessing`` and ``inferer`` from them, and runs them around the network.
    """
    bundle = unpacked / "cxr_colorization"
    expected = infer_probabilities(bundle, images, tmp_path / "out")
    name = sorted(expected)[0]
    image, _ = read_radiograph(images / name)
    try:
        import monai.deploy.operators.monai_bundle_inference_operator  # noqa: F401
    except ImportError:
        got = _deploy_contract(bundle / "models" / "model.ts", image)
    else:
        got = _deploy_operator(bundle / "models" / "model.ts", image, tmp_path)
    assert abs(got - expected[name]) < 1e-5, (got, expected[name])


def _deploy_contract(ts_path: Path, image: np.ndarray) -> float:
    """What ``MonaiBundleInferenceOperator`` does with a TorchScript bundle, with MONAI's own parser."""
    from monai.bundle import ConfigParser

    names = zipfile.ZipFile(ts_path).namelist()
    meta_name = next(n for n in names if n.endswith("/extra/metadata.json"))
    config_name = next(n for n in names if n.endswith("/extra/inference.json"))
    with zipfile.ZipFile(ts_path) as zf:
        meta, config = json.loads(zf.read(meta_name)), json.loads(zf.read(config_name))
    parser = ConfigParser()
    parser.read_config(f=config)
    parser.read_meta(f=meta)
    parser.parse()
    fmt = parser.get("_meta_::network_data_format")
    assert list(fmt["inputs"]) == ["image"] and list(fmt["outputs"]) == ["pred"]
    pre, post, inferer = (parser.get_parsed_content(k) for k in ("preprocessing", "postprocessing", "inferer"))
    assert not any("LoadImage" in type(t).__name__ or "SaveImage" in type(t).__name__ for t in pre.transforms)
    network = torch.jit.load(str(ts_path), map_location="cpu").eval()
    from monai.data import MetaTensor

    data = pre({"image": MetaTensor(torch.from_numpy(image))})
    with torch.no_grad():
        out = inferer(inputs=data["image"][None], network=network)
    pred = post({"pred": out[0]})["pred"]
    return float(pred.reshape(-1)[0])


def _deploy_operator(ts_path: Path, image: np.ndarray, tmp_path: Path) -> float:
    """A Holoscan application: source (the decoded radiograph as an ``Image``) -> bundle operator -> sink."""
    from monai.deploy.conditions import CountCondition
    from monai.deploy.core import Application, Operator, OperatorSpec
    from monai.deploy.core.domain import Image
    from monai.deploy.core.io_type import IOType
    from monai.deploy.operators.monai_bundle_inference_operator import (
        BundleConfigNames,
        IOMapping,
        MonaiBundleInferenceOperator,
    )

    results: list[np.ndarray] = []

    class Source(Operator):
        def setup(self, spec: OperatorSpec) -> None:
            spec.output("image")

        def compute(self, op_input, op_output, context) -> None:  # noqa: ANN001
            op_output.emit(Image(image.astype(np.float32), metadata={"original_channel_dim": "no_channel"}),
                           "image")

    class Sink(Operator):
        def setup(self, spec: OperatorSpec) -> None:
            spec.input("pred")

        def compute(self, op_input, op_output, context) -> None:  # noqa: ANN001
            results.append(np.asarray(op_input.receive("pred")))

    class App(Application):
        def compose(self) -> None:
            context = Application.init_app_context([])
            src = Source(self, CountCondition(self, 1), name="src")
            op = MonaiBundleInferenceOperator(
                self, app_context=context, input_mapping=[IOMapping("image", Image, IOType.IN_MEMORY)],
                output_mapping=[IOMapping("pred", np.ndarray, IOType.IN_MEMORY)],
                bundle_path=str(ts_path), bundle_config_names=BundleConfigNames(config_names=["inference"]),
                name="bundle")
            self.add_flow(src, op, {("image", "image")})
            self.add_flow(op, Sink(self, name="sink"), {("pred", "pred")})

    cwd = os.getcwd()
    os.chdir(tmp_path)  # the SDK resolves its default model and output folders against the working directory
    try:
        App().run()
    finally:
        os.chdir(cwd)
    assert len(results) == 1
    return float(results[0].reshape(-1)[0])
