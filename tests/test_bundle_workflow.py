"""Model-zoo-style checks: MONAI's ``ConfigWorkflow`` runs train.json and inference.json with
``check_properties`` (MONAI's ``TrainProperties`` / ``InferProperties``) on tiny synthetic data.

MONAI 1.6 compares property references literally (``"@train::handlers"``, not ``"@train#handlers"``),
and ``check_properties`` raises for a missing required id, so the configs are first checked statically;
and a missing property fails with the exact list (see ``property_problems``).
``MCOLOR_TEST_BUNDLE`` points the tests at another bundle folder (to try a candidate config).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from monai.bundle import ConfigWorkflow
from monai.utils import BundleProperty, BundlePropertyConfig, set_determinism

SOURCE = Path(os.environ.get("MCOLOR_TEST_BUNDLE") or Path(__file__).resolve().parents[1] / "bundles"
              / "cxr_colorization").resolve()
pytestmark = pytest.mark.slow
TINY: dict[str, Any] = {"max_epochs": 1, "image_size": 32, "backbone": "resnet18", "pretrained": False,
                        "color_module": "coloru", "batch_size": 8}


def workflow(bundle: Path, config: str, workflow_type: str, **overrides: Any) -> ConfigWorkflow:
    configs = bundle / "configs"
    return ConfigWorkflow(config_file=str(configs / config), meta_file=str(configs / "metadata.json"),
                          logging_file=str(configs / "logging.conf"), workflow_type=workflow_type,
                          bundle_root=str(bundle), **overrides)


def property_problems(wf: ConfigWorkflow) -> list[str]:
    """Required property ids absent from the config, and optional ones whose reference MONAI rejects."""
    problems = [f"missing required id {p[BundlePropertyConfig.ID].replace('::', '#')!r} ({name})"
                for name, p in wf.properties.items()
                if p.get(BundleProperty.REQUIRED) and p[BundlePropertyConfig.ID] not in wf.parser]
    for name, p in wf.properties.items():
        if p.get(BundleProperty.REQUIRED) or BundlePropertyConfig.REF_ID not in p:
            continue
        try:
            ok = wf._check_optional_id(name=name, property=p)
        except AttributeError:  # a literal where MONAI wants a reference (ValidationHandler interval: 1)
            ok = False
        if not ok:
            where = p[BundlePropertyConfig.REF_ID].replace("::", "#")
            if name in ("evaluator", "val_interval"):
                where = f"train#handlers ValidationHandler {where!r}"
            problems.append(f"optional {name!r}: {where} must be '@{p[BundlePropertyConfig.ID]}'")
    return problems


def assert_properties(wf: ConfigWorkflow, config: str) -> None:
    problems = property_problems(wf)
    assert not problems, f"{config} does not expose MONAI's properties: " + "; ".join(problems)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mcolor.bundle.installed import init_bundle

    return init_bundle(tmp_path_factory.mktemp("workflow") / "cxr_colorization", source=SOURCE)


@pytest.fixture(autouse=True, scope="module")
def _reset_determinism() -> Any:
    yield
    set_determinism(None)


def test_train_workflow(bundle: Path) -> None:
    wf = workflow(bundle, "train.json", "train", progress=False, export_torchscript=False, **TINY)
    assert_properties(wf, "train.json")
    wf.initialize()
    assert wf.check_properties() == []
    assert wf.max_epochs == 1
    assert wf.network_def is not None and wf.train_dataset is not None
    wf.run()
    wf.finalize()
    assert (bundle / "models" / "model.pt").is_file()


def test_infer_workflow(bundle: Path) -> None:
    if not (bundle / "models" / "model.pt").is_file():
        pytest.skip("needs the model of test_train_workflow")
    wf = workflow(bundle, "inference.json", "infer", progress=False)
    assert_properties(wf, "inference.json")
    wf.initialize()
    assert wf.check_properties() == []
    wf.run()
    wf.finalize()
    assert (bundle / "eval" / "predictions.csv").is_file()
