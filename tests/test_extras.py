"""Optional extras: the core install trains, evaluates and infers with the default configs; a feature whose
extra is missing is a typed error naming the exact ``pip install`` command; ``pyproject.toml`` declares what
:data:`mcolor.extras.EXTRAS` says.

"Missing" is real here: the checks run in a fresh interpreter where every extra's modules (highdicom,
matplotlib, tensorboard, mlflow, onnx, onnxruntime) are refused with ``sys.modules[name] = None`` (``import``
raises ``ModuleNotFoundError`` and ``importlib.util.find_spec`` answers ``None``, as for an absent package),
never by patching mcolor.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from bundle_runner import REPO, TINY, bundle_cmd, bundle_env, new_bundle

from mcolor.extras import EXTRAS, available, enabled, install_hint

REFUSED = tuple(m for extra in EXTRAS.values() for m in extra.modules)
#: Prepended to every script run "without the extras".
PRELUDE = f"import sys\nfor _name in {REFUSED!r}:\n    sys.modules[_name] = None\n"
CLI = "from mcolor.cli import main\n"
BUNDLE_RUN = "import runpy\nsys.argv[0] = 'monai.bundle'\nrunpy.run_module('monai.bundle', run_name='__main__')\n"


def core_python(script: str, *args: str | Path, env: dict[str, str] | None = None,
                timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (after :data:`PRELUDE`) with ``args`` in an interpreter that has no extra installed."""
    return subprocess.run([sys.executable, "-c", PRELUDE + script, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def distribution(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("-", "_")


def test_pyproject_declares_each_extra_and_the_core_needs_none() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project["optional-dependencies"]
    for name, extra in EXTRAS.items():  # the modules of these extras are their distributions' import names
        assert sorted(distribution(r) for r in optional[name]) == sorted(extra.modules), name
    # deploy (MONAI Deploy's SDK with Holoscan, ~570 MB) is opt-in and outside `all`: only a test uses it
    assert set(optional) == {*EXTRAS, "all", "test", "deploy"}
    assert optional["all"] == [f"mcolor[{','.join(EXTRAS)}]"]
    assert "mcolor[all]" in optional["test"]  # README: pip install -e '.[test]' is the full environment
    core = {distribution(r) for r in project["dependencies"]}
    assert not core & set(REFUSED), core & set(REFUSED)


def test_in_this_environment_every_extra_is_installed_and_auto_uses_it(tmp_path: Path) -> None:
    """The test environment is ``.[test]``: ``auto`` means on, and the handlers are the real ones."""
    from mcolor.engines.handlers import Skipped, tensorboard_handler

    assert all(available(name) for name in EXTRAS)
    assert enabled("auto", "plots", "figures") and enabled(True, "plots", "figures")
    assert not enabled("false", "plots", "figures")
    assert type(tensorboard_handler(str(tmp_path))).__name__ == "TensorBoardStatsHandler"
    assert isinstance(tensorboard_handler(str(tmp_path), enabled="false"), Skipped)


@pytest.mark.slow
def test_missing_extras_are_typed_errors_and_auto_skips_with_one_line() -> None:
    script = """
import logging
from mcolor.errors import ConfigError, MissingExtraError
from mcolor.extras import available, enabled, require
from mcolor.engines.handlers import Skipped, mlflow_handler, tensorboard_handler
logging.basicConfig(level=logging.INFO, format="LOG %(levelname)s %(message)s")
for extra in ("sr", "plots", "tensorboard", "tracking", "onnx"):
    try:
        require(extra, "feature " + extra)
    except MissingExtraError as exc:
        assert isinstance(exc, ConfigError)
        print("ERROR", exc.extra, exc.reason, exc)
    print("AVAILABLE", extra, available(extra))
print("AUTO", enabled("auto", "plots", "figures"), enabled("AUTO", "plots", "figures"))
print("OFF", enabled("false", "plots", "figures"))
try:
    enabled("true", "plots", "figures")
except MissingExtraError as exc:
    print("REQUIRED", exc.extra)
print("HANDLER", isinstance(tensorboard_handler("tb"), Skipped), isinstance(tensorboard_handler("tb"), Skipped))
try:
    mlflow_handler(tracking_uri="sqlite:///x.db")
except MissingExtraError as exc:
    print("MLFLOW", exc)
"""
    proc = core_python(script, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    errors = [line for line in lines if line.startswith("ERROR ")]
    assert len(errors) == len(EXTRAS)
    for name in EXTRAS:
        (line,) = [e for e in errors if e.startswith(f"ERROR {name} missing_extra ")]
        assert f"feature {name} needs the optional '{name}' extra" in line and install_hint(name) in line
        assert f"AVAILABLE {name} False" in lines
    assert "AUTO False False" in lines and "OFF False" in lines and "REQUIRED plots" in lines
    assert "HANDLER True True" in lines
    assert any(line.startswith("MLFLOW MLflow tracking (--tracking) needs") and "mcolor[tracking]" in line
               for line in lines)
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("LOG INFO") and "skipped" in line]
    assert len(skipped) == 2, skipped  # one line per extra (plots, tensorboard), however often asked
    assert "pip install 'mcolor[plots]'" in skipped[0] and "pip install 'mcolor[tensorboard]'" in skipped[1]


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    """A bundle with random weights for COLORU + ResNet-18 at 32 px and its TorchScript export (no training)."""
    from mcolor.artifact import ModelSpec, OperatingPoint, write_torchscript, write_trained_model
    from mcolor.networks import ColorizedClassifier

    root = new_bundle(tmp_path / "cxr_colorization")
    spec = ModelSpec(color_module="coloru", backbone="resnet18", num_classes=1, labels=["normal", "opacity"],
                     output_names=["opacity"], image_size=32)
    net = ColorizedClassifier("coloru", "resnet18", num_classes=1, pretrained=False)
    write_trained_model(root, net.state_dict(), spec, OperatingPoint(1))
    write_torchscript(root)
    return root


@pytest.mark.slow
def test_core_install_infers_and_each_option_names_its_extra(tmp_path: Path, tiny_bundle: Path,
                                                             write_dicom) -> None:
    folder = tmp_path / "dicom"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_dicom("dicom/chest.dcm", rng.integers(0, 255, (64, 64), dtype=np.uint8), PatientID="PAT-1")
    script = CLI + """
for extra in ([], ["--sr"], ["--previews"]):
    rc = main(["infer", sys.argv[1], "--bundle", sys.argv[2], "--out", sys.argv[3] + "_".join(["", *extra]),
               "--no-progress", "--num-workers", "0", *extra])
    print("RC", extra, rc, flush=True)
"""
    proc = core_python(script, folder, tiny_bundle, tmp_path / "out", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RC [] 0" in proc.stdout, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["summary"]["predicted"] == 1 and report["model"]["engine"] == "torchscript"
    for option, extra in (("--sr", "sr"), ("--previews", "plots")):
        assert f"RC ['{option}'] 2" in proc.stdout
        assert f"mcolor: error [missing_extra]: {option} " in proc.stderr
        assert f"install it with: pip install 'mcolor[{extra}]'" in proc.stderr
        assert not (tmp_path / f"out_{option}").exists()  # refused before anything was read or written
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_core_install_trains_and_evaluates_with_the_default_configs(tmp_path: Path, synthetic_cache: Path) -> None:
    """train.json and evaluate.json as shipped (tensorboard: auto, plots: auto) run without any extra; asking
    for TensorBoard explicitly fails before training with the extra's name."""
    bundle = new_bundle(tmp_path / "cxr_colorization")
    env = bundle_env(synthetic_cache)

    def run(configs: list[str], overrides: dict[str, object]) -> subprocess.CompletedProcess[str]:
        return core_python(BUNDLE_RUN, *bundle_cmd(configs, overrides, bundle)[3:], env=env)

    train = run(["train.json"], TINY)
    output = train.stdout + train.stderr
    assert train.returncode == 0, output[-5000:]
    assert (bundle / "models" / "model.pt").is_file()
    assert not (bundle / "eval" / "tensorboard").exists()
    assert output.count("TensorBoard logging skipped: the optional 'tensorboard' extra is not installed") == 1
    evaluate = run(["evaluate.json"], {"progress": "false"})
    output = evaluate.stdout + evaluate.stderr
    assert evaluate.returncode == 0, output[-5000:]
    assert json.loads((bundle / "eval" / "metrics.json").read_text())["n"] == 96
    assert not (bundle / "eval" / "roc.png").exists() and "evaluation plots (roc.png, confusion.png) skipped" in output
    required = run(["train.json"], {**TINY, "tensorboard": "true", "output_dir": tmp_path / "again"})
    assert required.returncode != 0
    assert "TensorBoard logging needs the optional 'tensorboard' extra" in required.stdout + required.stderr
    assert "pip install 'mcolor[tensorboard]'" in required.stdout + required.stderr
    assert not (tmp_path / "again" / "checkpoints").exists()
