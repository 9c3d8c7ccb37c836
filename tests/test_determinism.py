"""The same seed gives bit-identical training on CPU: two tiny bundle runs, compared exactly.

Both runs go through ``monai.bundle run train.json`` (two epochs, so both stages of the two-stage schedule
run) at the same time, each with one thread. Compared with exact equality: every tensor of the final
checkpoint and of the best model (weights, optimizer and scheduler state, RNG states, operating threshold)
and every scalar written to TensorBoard (training loss per iteration, learning rates, validation AUC,
accuracy, sensitivity, specificity, F1, loss and threshold per epoch).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from bundle_runner import TINY, bundle_cmd, bundle_env, new_bundle

from mcolor.data.synthetic import ensure_synthetic_dataset
from mcolor.engines.checkpoint import load_checkpoint

SETTINGS = {**TINY, "backbone": "mobilenetv3_small_050", "max_epochs": 2, "color_epochs": 1, "epoch_length": 2,
            "seed": 11}
pytestmark = pytest.mark.slow

VAL_METRICS = ("val_auc", "val_accuracy", "val_sensitivity", "val_specificity", "val_f1", "val_loss",
               "val_threshold")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("determinism")
    ensure_synthetic_dataset(root / "cache" / "synthetic")
    env = {**bundle_env(root / "cache"), "OMP_NUM_THREADS": "1"}
    outs = (new_bundle(root / "a"), new_bundle(root / "b"))
    logs = [open(out.with_suffix(".err"), "w") for out in outs]  # closed below
    procs = [subprocess.Popen(bundle_cmd(["train.json"], SETTINGS, out), env=env,
                              stdout=subprocess.DEVNULL, stderr=log) for out, log in zip(outs, logs, strict=True)]
    try:
        codes = [proc.wait(timeout=400) for proc in procs]
    finally:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    for code, out in zip(codes, outs, strict=True):
        assert code == 0, out.with_suffix(".err").read_text()[-4000:]
    return outs


def assert_identical(a: Any, b: Any, where: str) -> None:
    """Exact, recursive equality of checkpoint contents (tensors with ``torch.equal``)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar of a run: tag -> [(step, value)] (wall times left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted((run / "eval" / "tensorboard").iterdir()):
        events = EventAccumulator(str(path))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(tag))
    return out


def test_same_seed_same_checkpoint(two_runs: tuple[Path, Path]) -> None:
    a, b = (load_checkpoint(run / "eval" / "checkpoints" / "model_final.pt") for run in two_runs)
    assert a["model"] and a["operating_point"]["thresholds"].numel() == 1
    assert a["trainer"]["iteration"] == 4 and a["optimizer"]["state"]  # it did train: 2 epochs x 2 steps
    assert_identical(a, b, "model_final.pt")


def test_same_seed_same_model_and_description(two_runs: tuple[Path, Path]) -> None:
    import json

    a, b = (load_checkpoint(run / "models" / "model.pt") for run in two_runs)
    assert a
    assert_identical(a, b, "models/model.pt")
    ma, mb = (json.loads((run / "configs" / "metadata.json").read_text())["mcolor_model"] for run in two_runs)
    assert ma["spec"] == mb["spec"] and ma["operating_point"] == mb["operating_point"]
    assert ma["provenance"]["weights_sha256"] == mb["provenance"]["weights_sha256"]


def test_same_seed_same_metrics(two_runs: tuple[Path, Path]) -> None:
    a, b = (scalars(run) for run in two_runs)
    assert set(VAL_METRICS) <= set(a) and len(a["train_loss"]) == 4
    assert all(len(a[m]) == 2 for m in VAL_METRICS)  # one value per epoch
    assert a == b
