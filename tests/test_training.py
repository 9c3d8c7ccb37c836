"""The bundle end to end through ``monai.bundle run``: train -> evaluate -> inference, schedules,
multi-label, exact resume after SIGKILL, and 2-process DDP with gloo. Real engines, real subprocesses."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_runner import REPO, TINY, bundle_cmd, bundle_env, run_bundle

from mcolor.data.manifests import write_manifest
from mcolor.data.synthetic import ensure_synthetic_dataset, phantom
from mcolor.engines.checkpoint import load_checkpoint
from mcolor.engines.setup import load_trained_model


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cache")
    ensure_synthetic_dataset(path / "synthetic")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    out = tmp_path_factory.mktemp("run")
    run_bundle(["train.json"], {**TINY, "output_dir": out}, cache)
    return out


def test_train_writes_checkpoints_and_validation_metrics(trained: Path) -> None:
    assert (trained / "model.pt").is_file()
    assert (trained / "checkpoints" / "checkpoint_epoch=1.pt").is_file()
    assert (trained / "checkpoints" / "model_final.pt").is_file()
    assert list((trained / "tensorboard").iterdir())
    ckpt = load_checkpoint(trained / "model.pt")
    assert set(ckpt) >= {"model", "operating_point", "spec"}
    assert ckpt["spec"]["color_module"] == "coloru" and ckpt["spec"]["task"] == "binary"
    model = load_trained_model(trained / "model.pt")
    assert 0.0 < model.operating_point.thresholds[0] < 1.0


def test_evaluate_and_inference(trained: Path, cache: Path, radiographs_dir: Path) -> None:
    run_bundle(["evaluate.json"], {"output_dir": trained}, cache)
    metrics = json.loads((trained / "metrics.json").read_text())
    for key in ("auc", "accuracy", "sensitivity", "specificity", "threshold", "f1"):
        assert isinstance(metrics[key], float), key
    assert metrics["split"] == "test" and metrics["n"] == 32
    assert (trained / "roc.png").stat().st_size > 1000 and (trained / "confusion.png").stat().st_size > 1000
    run_bundle(["inference.json"], {"output_dir": trained, "input_dir": radiographs_dir}, cache)
    rows = [r for r in csv.DictReader(open(trained / "predictions.csv")) if r["status"] == "predicted"]
    assert len(rows) >= 5
    assert all(0.0 <= float(r["p_opacity"]) <= 1.0 for r in rows)


def test_missing_dataset_is_a_clear_error(tmp_path: Path, cache: Path) -> None:
    overrides = {**TINY, "output_dir": tmp_path, "dataset": tmp_path / "nope.csv"}
    proc = subprocess.run(bundle_cmd(["train.json"], overrides),
                          cwd=REPO, env=bundle_env(cache), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "dataset manifest not found" in proc.stderr and "nope.csv" in proc.stderr


def _multilabel_manifest(folder: Path) -> Path:
    """A CheXpert-shaped multi-label manifest over phantoms: 1 / 0 / -1 (uncertain) / blank (unknown)."""
    rng = np.random.default_rng(0)
    from PIL import Image

    names = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
    rows = []
    for i in range(60):
        y = rng.integers(0, 2, size=len(names))
        img = phantom(rng, 48, bool(y[0]))
        Image.fromarray(img).save(folder / f"{i}.png")
        cells = {n: str(int(v)) for n, v in zip(names, y, strict=True)}
        cells[names[2]] = ["1", "0", "-1", ""][i % 4]
        split = "train" if i < 36 else ("val" if i < 48 else "test")
        rows.append({"image": f"{i}.png", "split": split, "patient_id": f"p{i}", **cells})
    write_manifest(rows, names, "multilabel", folder / "manifest.csv", source="test phantoms", license="CC0")
    return folder / "manifest.csv"


def test_multilabel_two_stage_reports_per_label_auc(tmp_path: Path, cache: Path) -> None:
    manifest = _multilabel_manifest(tmp_path)
    out = tmp_path / "run"
    run_bundle(["train.json"], {**TINY, "max_epochs": 2, "color_epochs": 1, "output_dir": out, "dataset": manifest,
                                "schedule": "two_stage", "optimizer_name": "adamw", "lr_scheduler_name": "cosine",
                                "lr": "{'color':0.001,'backbone':0.0001,'head':0.001}"}, cache)
    run_bundle(["evaluate.json"], {"output_dir": out, "dataset": manifest}, cache)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "multilabel" and len(metrics["labels"]) == 5
    for name in metrics["labels"]:
        assert f"auc/{name}" in metrics and f"threshold/{name}" in metrics
    assert metrics["n"] == 12


@pytest.mark.parametrize("schedule", ["head_only", "all"])
def test_baseline_schedules_train(schedule: str, tmp_path: Path, cache: Path) -> None:
    proc = run_bundle(["train.json"], {**TINY, "output_dir": tmp_path, "schedule": schedule}, cache)
    expected = "'head_only'" if schedule == "head_only" else "'all'"
    assert f"transfer stage {expected}" in proc.stdout + proc.stderr


def _final_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(folder / "checkpoints" / "model_final.pt")["model"]


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path, cache: Path) -> None:
    common = {**TINY, "max_epochs": 2, "color_epochs": 1, "seed": 7}
    straight = tmp_path / "straight"
    run_bundle(["train.json"], {**common, "output_dir": straight}, cache)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(bundle_cmd(["train.json"], {**common, "output_dir": killed}), cwd=REPO,
                            env=bundle_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = killed / "checkpoints" / "checkpoint_epoch=1.pt"
    deadline = time.time() + 240
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the run died before its first epoch checkpoint"
    assert not (killed / "checkpoints" / "model_final.pt").exists()
    # no half-written file may look like a checkpoint
    assert all(load_checkpoint(p) for p in (killed / "checkpoints").glob("*.pt"))

    run_bundle(["train.json"], {**common, "output_dir": killed, "resume": "true"}, cache)
    a, b = _final_weights(straight), _final_weights(killed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_two_process_gloo_ddp(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517"]
    run_bundle(["train.json", "multi_gpu_train.json"],
               {**TINY, "output_dir": out, "shard_log": "true", "num_workers": 0}, cache, launcher=launcher,
               timeout=400)
    shards = [json.loads((out / "shards" / f"rank{r}.json").read_text())["1"] for r in (0, 1)]
    assert shards[0] and shards[1]
    assert not set(shards[0]) & set(shards[1]), "ranks trained on overlapping samples"
    assert len(set(shards[0]) | set(shards[1])) == 96  # the synthetic train split, covered
    assert (out / "model.pt").is_file() and (out / "checkpoints" / "model_final.pt").is_file()


def test_mlflow_tracking_with_a_local_store(tmp_path: Path, cache: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    settings = REPO / "bundles" / "cxr_colorization" / "configs" / "mlflow_tracking.json"
    run_bundle(["train.json"], {**TINY, "output_dir": tmp_path, "quiet": "true", "tracking": settings}, cache)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    runs = mlflow.search_runs(experiment_names=["cxr_colorization"])
    assert len(runs) == 1
    assert {"metrics.train_loss", "metrics.val_auc", "metrics.lr_color"} <= set(runs.columns)
