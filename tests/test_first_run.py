"""The README's main job learns: the default bundle, trained on the embedded synthetic phantoms with every
setting at its default, separates the two classes on the validation split.

This is the job a new user runs first (``mcolor bundle init`` + ``monai.bundle run train.json``), so it must
show a model learning, not a validation AUC wandering around chance. The run is the real one, through MONAI's
bundle runner in a subprocess, with no override but ``progress`` (the progress bar, which changes nothing the
model sees). The phantoms' validation split holds 96 images (48 per class), so the AUC is a measurement: its
standard error near 0.9 is about 0.03 and chance is 0.62 (``val_chance_auc``). The run is the whole default job
(8 epochs): about 65 CPU-seconds single-threaded, well under a minute of wall time on 2 idle cores. Before the
phantoms v2 and these defaults, the same test measured {1: 0.57, 2: 0.43, 3: 0.55, 4: 0.68, 5: 0.70, 6: 0.74}.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bundle_runner import new_bundle, run_bundle

pytestmark = pytest.mark.slow

#: The issue's requirement: validation AUC at least this by the last epoch of the default job.
TARGET_AUC = 0.9
_EPOCH_AUC = re.compile(r"Epoch\[(\d+)\] Metrics -- .*?\bval_auc: ([0-9.]+)")


def epoch_aucs(log: str) -> dict[int, float]:
    """``{epoch: validation AUC}`` from the StatsHandler lines of a training log."""
    return {int(epoch): float(auc) for epoch, auc in _EPOCH_AUC.findall(log)}


def test_epoch_aucs_reads_the_stats_lines() -> None:
    log = ("2026-01-01 - INFO - Epoch[1] Metrics -- val_accuracy: 0.5 val_auc: 0.5573 val_auc/opacity: 0.5573\n"
           "2026-01-01 - INFO - Epoch[1] Metrics -- lr_backbone: 0.0032 lr_color: 0.0322\n"
           "2026-01-01 - INFO - Epoch[2] Metrics -- val_accuracy: 0.9 val_auc: 0.9812 val_chance_auc: 0.6185\n")
    assert epoch_aucs(log) == {1: 0.5573, 2: 0.9812}


def test_default_job_learns_the_synthetic_task(tmp_path: Path, synthetic_cache: Path) -> None:
    bundle = new_bundle(tmp_path / "cxr_colorization")  # what `mcolor bundle init` makes
    train = json.loads((bundle / "configs" / "train.json").read_text())
    proc = run_bundle(["train.json"], {"progress": "false"}, synthetic_cache, bundle, timeout=600)
    aucs = epoch_aucs(proc.stdout + proc.stderr)
    assert sorted(aucs) == list(range(1, train["max_epochs"] + 1)), aucs  # validated after every epoch
    assert aucs[train["max_epochs"]] >= TARGET_AUC, f"validation AUC per epoch: {aucs}"
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    data = meta["mcolor_model"]["provenance"]["data"]
    assert data["counts"]["val"] >= 96, data["counts"]  # not a handful of images
    assert meta["eval_metrics"]["val_auc"] >= TARGET_AUC  # the kept model is one that learned
    assert meta["eval_metrics"]["val_auc"] > meta["eval_metrics"]["val_chance_auc"]
