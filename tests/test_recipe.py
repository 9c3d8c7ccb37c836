"""The Kermany reference recipe trains in one command, on a manifest and on a nested subsample of it, and
``mcolor card`` computes its model card (issue 13).

The full recipe (``configs/recipes/kermany_pneumonia.json``: MobileNetV2 + COLORU at 224 px, stretch geometry,
calibration, the chance guard) takes about an hour of CPU on all of the Kermany training split; here it runs
through the real ``python -m monai.bundle run`` on a small patient-grouped carve of the real images, with only
the step counts cut, so that every other setting of the recipe (its preprocessing and augmentation, the
converted torchvision weights, the calibration, the geometry it records) is exercised as a user would run it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bundle_runner import REPO, new_bundle, run_bundle

from mcolor.artifact import load_trained_model
from mcolor.cli import main as cli
from mcolor.data.manifests import load_manifest
from mcolor.roc import roc_auc

pytestmark = pytest.mark.slow

RECIPE = REPO / "configs" / "recipes" / "kermany_pneumonia.json"
#: only the amount of work is cut: 2 validation periods of 2 steps of 8 images (one per stage)
SHORT = {"max_epochs": 2, "epoch_length": 2, "batch_size": 8, "val_batch_size": 16, "progress": "false"}


@pytest.fixture(scope="module")
def kermany_small(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A Kermany-layout tree of 40 real images (20 per class, links), carved by patient into train/val/test."""
    source = shared_dir / "data" / "kermany224" / "train"
    if not source.is_dir():
        pytest.skip(f"{source} is absent")
    root = tmp_path_factory.mktemp("kermany_small")
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / "train" / cls).mkdir(parents=True)
        for path in sorted((source / cls).glob("*.jpeg"))[:20]:
            (root / "train" / cls / path.name).symlink_to(path)
    out = root / "data"
    assert cli(["manifest", "folders", str(root), "--out", str(out), "--val-fraction", "0.25",
                "--test-fraction", "0.25", "--seed", "0", "--task", "pneumonia"]) == 0
    return out / "manifest.csv"


def _train(manifest: Path, bundle: Path, cache: Path) -> None:
    configs = ["train.json", str(RECIPE)]  # the recipe merged over the bundle's train.json, as documented
    run_bundle(configs, {**SHORT, "dataset": manifest}, cache, bundle, timeout=900)


def _check_recipe_model(bundle: Path, manifest: Path, subsampled: bool) -> None:
    model = load_trained_model(bundle)
    spec = model.spec
    # what the recipe chose is what the trained model records (and what inference reproduces)
    assert (spec.backbone, spec.color_module, spec.image_size, spec.letterbox) == (
        "mobilenetv2_100", "coloru", 224, "stretch")
    # calibration fitted on validation: a temperature and a threshold stored, within sane bounds
    op = model.operating_point
    assert len(op.thresholds) == 1 and 0.0 < op.thresholds[0] < 1.0
    assert len(op.temperature) == 1 and 0.05 <= op.temperature[0] <= 20.0
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    provenance = meta["mcolor_model"]["provenance"]
    assert Path(provenance["data"]["manifest"]).name == manifest.name
    assert ("subsample" in provenance["data"]) == subsampled  # the subset is on record
    assert (bundle / "models" / "model.pt").is_file() and (bundle / "models" / "model.ts").is_file()


@pytest.fixture(scope="module")
def recipe_bundle(kermany_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recipe")
    bundle = new_bundle(root / "cxr_colorization")
    _train(kermany_small, bundle, root / "cache")
    return bundle


def test_recipe_trains_on_a_manifest_and_a_nested_subsample(kermany_small: Path, recipe_bundle: Path,
                                                            tmp_path: Path) -> None:
    _check_recipe_model(recipe_bundle, kermany_small, subsampled=False)
    full = load_manifest(kermany_small)
    subsample = tmp_path / "f0.5.csv"
    assert cli(["manifest", "subsample", str(kermany_small), "--fraction", "0.5", "--seed", "0",
                "--out", str(subsample)]) == 0
    sub = load_manifest(subsample)
    train_full = {r["image"] for r in full.rows if r["split"] == "train"}
    train_sub = {r["image"] for r in sub.rows if r["split"] == "train"}
    assert train_sub < train_full  # nested, and smaller
    assert {r["image"] for r in sub.rows if r["split"] == "test"} == {r["image"] for r in full.rows
                                                                       if r["split"] == "test"}
    bundle = new_bundle(tmp_path / "sub" / "cxr_colorization")
    _train(subsample, bundle, tmp_path / "cache")
    _check_recipe_model(bundle, subsample, subsampled=True)


def test_model_card_of_the_recipe_model(recipe_bundle: Path, kermany_small: Path, tmp_path: Path) -> None:
    """``mcolor card``: figures with patient-bootstrap intervals at the stored operating point, subtype
    sensitivities for the subgroups that have positives, calibration, and the four figures as real PNGs."""
    pytest.importorskip("matplotlib", reason="mcolor card needs the plots extra")
    out = tmp_path / "card"
    assert cli(["card", str(recipe_bundle), "--dataset", str(kermany_small), "--out", str(out),
                "--bootstrap", "200"]) == 0
    card = json.loads((out / "card.json").read_text())
    test_rows = [r for r in load_manifest(kermany_small).rows if r["split"] == "test"]
    assert card["n_images"] == len(test_rows)
    assert card["n_patients"] == len({r["group_id"] or r["patient_id"] for r in test_rows})
    assert card["threshold"] == load_trained_model(recipe_bundle).operating_point.thresholds[0]
    figures = card["figures"]
    assert {"auc", "accuracy", "sensitivity", "specificity", "ece"} <= set(figures)
    # subgroup sensitivities only where the subgroup has positives: bacterial / viral, never normal
    subtypes = {r["subtype"] for r in test_rows if r["label"] == "1"}
    assert {k.split("/", 1)[1] for k in figures if k.startswith("sensitivity/")} == subtypes
    for name, value in figures.items():
        lo, hi = value["ci95"]
        assert 0.0 <= lo <= hi <= 1.0 and 0.0 <= value["estimate"] <= 1.0, name
    # the estimates are those of the scores the bundle's own evaluation wrote
    scores = np.load(recipe_bundle / "card_scores.npz")
    probs, labels = scores["probs"][:, 0], scores["labels"].reshape(-1)
    assert figures["auc"]["estimate"] == pytest.approx(roc_auc(probs, labels))
    predicted = probs >= card["threshold"]
    assert figures["sensitivity"]["estimate"] == pytest.approx(predicted[labels == 1].mean())
    assert card["confusion"] == [[int((~predicted & (labels == 0)).sum()), int((predicted & (labels == 0)).sum())],
                                 [int((~predicted & (labels == 1)).sum()), int((predicted & (labels == 1)).sum())]]
    for png in ("roc.png", "confusion.png", "reliability.png", "colorized.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
