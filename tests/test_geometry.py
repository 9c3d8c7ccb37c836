"""The training geometry is recorded in the model and reproduced by every inference path (issue 13, item 3).

A model trained on images squashed to a square (the shared Kermany copy) must see a clinician's full-size,
non-square radiograph squashed the same way, not letterboxed. A tiny bundle is trained with
``--letterbox stretch``; its metadata must say so, and ``mcolor infer`` (TorchScript and eager) and the bundle's
own ``inference.json`` must all feed the network the *stretched* image, on real non-square radiographs: the
1955 x 1841 chest CR of pydicom-data and a 1036 x 885 chest JPEG of the COVID collection.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bundle_runner import TINY, bundle_env, new_bundle, run_bundle

from mcolor.artifact import load_trained_model
from mcolor.cli import main as cli
from mcolor.io import read_radiograph
from mcolor.transforms.functional import letterbox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stretched(tmp_path_factory: pytest.TempPathFactory, synthetic_cache: Path) -> Path:
    """A bundle trained with ``--letterbox stretch``, its weights then replaced by a seeded random network.

    One epoch on phantoms leaves a model whose output barely depends on its input (the geometry would change
    its probabilities by ~1e-6); random weights respond to every pixel, so a wrong geometry cannot hide.
    """
    from mcolor.artifact import write_torchscript, write_trained_model
    from mcolor.networks import ColorizedClassifier

    bundle = new_bundle(tmp_path_factory.mktemp("stretch") / "cxr_colorization")
    run_bundle(["train.json"], {**TINY, "letterbox": "stretch"}, synthetic_cache, bundle)
    trained = load_trained_model(bundle)
    assert trained.spec.letterbox == "stretch"  # recorded by training
    torch.manual_seed(0)
    net = ColorizedClassifier(trained.spec.color_module, trained.spec.backbone, 1, pretrained=False)
    with torch.no_grad():
        net.head_module().weight.mul_(100.0)  # logits of order 1: differences in the input show in the output
    write_trained_model(bundle, net.state_dict(), trained.spec, trained.operating_point)
    write_torchscript(bundle)
    return bundle


@pytest.fixture(scope="module")
def non_square(tmp_path_factory: pytest.TempPathFactory, radiographs_dir: Path, testdata_file) -> Path:  # noqa: ANN001
    folder = tmp_path_factory.mktemp("non_square")
    shutil.copyfile(testdata_file("RG1_UNCI.dcm"), folder / "rg1_chest_cr.dcm")
    shutil.copyfile(radiographs_dir / "16747_3_1.jpg", folder / "covid_chest.jpg")
    for path in folder.iterdir():
        image, _ = read_radiograph(path)
        assert image.shape[0] != image.shape[1], path  # the point of the test
    return folder


def rows(out: Path) -> dict[str, float]:
    with open(out / "predictions.csv", newline="") as fh:
        return {r["path"]: float(r["p_opacity"]) for r in csv.DictReader(fh) if r["status"] == "predicted"}


def test_geometry_is_recorded_and_reproduced(stretched: Path, non_square: Path, tmp_path: Path,
                                             synthetic_cache: Path) -> None:
    meta = json.loads((stretched / "configs" / "metadata.json").read_text())
    assert meta["mcolor_model"]["spec"]["letterbox"] == "stretch"
    model = load_trained_model(stretched)
    net = model.network
    expected, padded = {}, {}
    for path in sorted(non_square.iterdir()):
        image, _ = read_radiograph(path)
        x = torch.from_numpy(image)[None]
        with torch.no_grad():
            expected[path.name] = float(model.probabilities(net(letterbox(x, 32, "stretch")[None]))[0, 0])
            padded[path.name] = float(model.probabilities(net(letterbox(x, 32, "pad")[None]))[0, 0])
        # the geometry matters on these images: a letterboxed input gives another answer (20x the tolerance)
        assert abs(expected[path.name] - padded[path.name]) > 2e-4, (path.name, expected[path.name])

    common = ["--allow-non-dicom", "--no-progress", "--rules", str(_any_chest(tmp_path))]
    for backend in ("torchscript", "eager"):
        out = tmp_path / backend
        assert cli(["infer", str(non_square), "--bundle", str(stretched), "--out", str(out), "--backend", backend,
                    *common]) == 0
        got = rows(out)
        assert set(got) == set(expected), (backend, got)
        for name, p in expected.items():
            assert abs(got[name] - p) < 1e-5, (backend, name, got[name], p, padded[name])

    out = tmp_path / "bundle_config"
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file",
                           str(stretched / "configs" / "inference.json"), "--bundle_root", str(stretched),
                           "--input_dir", str(non_square), "--output_dir", str(out), "--progress", "false",
                           "--rules", str(_any_chest(tmp_path))],
                          env={**bundle_env(synthetic_cache), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = rows(out)
    for name, p in expected.items():
        assert abs(got[name] - p) < 1e-5, ("inference.json", name, got[name], p)


def _any_chest(tmp_path: Path) -> Path:
    """Selection rules that accept the CR's absent view position (the image, not the rules, is under test)."""
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"missing_view_position": "accept", "allow_non_dicom": True}))
    return rules
