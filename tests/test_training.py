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
from bundle_runner import TINY, bundle_cmd, bundle_env, copy_bundle, new_bundle, run_bundle

from mcolor.artifact import load_trained_model, read_weights
from mcolor.data.manifests import write_manifest
from mcolor.data.synthetic import phantom
from mcolor.engines.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def cache(synthetic_cache: Path) -> Path:
    return synthetic_cache


@pytest.mark.slow
def test_train_writes_the_bundle_and_validation_metrics(trained_bundle: Path) -> None:
    state = read_weights(trained_bundle / "models" / "model.pt")
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # a plain state dict, the zoo's layout
    assert any(k.startswith("color.") for k in state) and any(k.startswith("backbone.") for k in state)
    assert (trained_bundle / "models" / "model.ts").is_file()
    assert (trained_bundle / "eval" / "checkpoints" / "checkpoint_epoch=1.pt").is_file()
    assert (trained_bundle / "eval" / "checkpoints" / "model_final.pt").is_file()
    assert list((trained_bundle / "eval" / "tensorboard").iterdir())
    meta = json.loads((trained_bundle / "configs" / "metadata.json").read_text())
    section = meta["mcolor_model"]
    assert section["spec"]["color_module"] == "coloru" and section["spec"]["backbone"] == "resnet18"
    assert section["spec"]["image_size"] == 32 and section["spec"]["task"] == "binary"
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [32, 32]
    assert meta["eval_metrics"]["val_auc"] == pytest.approx(meta["eval_metrics"]["val_auc"])
    assert section["provenance"]["data"]["counts"] == {"train": 96, "val": 96, "test": 96}
    env = section["provenance"]["environment"]  # where it was trained: other CPU kernels give other weights
    assert env["cpu"] and env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    model = load_trained_model(trained_bundle)
    assert 0.0 < model.operating_point.thresholds[0] < 1.0


@pytest.mark.slow
def test_evaluate_and_inference(trained_bundle: Path, tmp_path: Path, cache: Path, radiographs_dir: Path) -> None:
    bundle = copy_bundle(trained_bundle, tmp_path / "b")
    run_bundle(["evaluate.json"], {"progress": "false"}, cache, bundle)
    metrics = json.loads((bundle / "eval" / "metrics.json").read_text())
    for key in ("auc", "accuracy", "sensitivity", "specificity", "threshold", "f1", "ece"):
        assert isinstance(metrics[key], float), key
    assert metrics["split"] == "test" and metrics["n"] == 96
    eval_metrics = json.loads((bundle / "configs" / "metadata.json").read_text())["eval_metrics"]
    assert eval_metrics["test_auc"] == pytest.approx(metrics["auc"]) and "val_auc" in eval_metrics
    out = bundle / "eval"
    assert (out / "roc.png").stat().st_size > 1000 and (out / "confusion.png").stat().st_size > 1000
    run_bundle(["inference.json"], {"output_dir": tmp_path / "pred", "input_dir": radiographs_dir}, cache, bundle)
    rows = [r for r in csv.DictReader(open(tmp_path / "pred" / "predictions.csv")) if r["status"] == "predicted"]
    assert len(rows) >= 5
    assert all(0.0 <= float(r["p_opacity"]) <= 1.0 for r in rows)


@pytest.mark.slow
def test_missing_dataset_is_a_clear_error(tmp_path: Path, cache: Path) -> None:
    bundle = new_bundle(tmp_path / "b")
    overrides = {**TINY, "dataset": tmp_path / "nope.csv"}
    proc = subprocess.run(bundle_cmd(["train.json"], overrides, bundle),
                          env=bundle_env(cache), capture_output=True, text=True, timeout=300)
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


@pytest.mark.slow
def test_multilabel_two_stage_reports_per_label_auc(tmp_path: Path, cache: Path) -> None:
    manifest = _multilabel_manifest(tmp_path)
    bundle = new_bundle(tmp_path / "b")
    run_bundle(["train.json"], {**TINY, "max_epochs": 2, "color_epochs": 1, "dataset": manifest,
                                "schedule": "two_stage", "optimizer_name": "adamw", "lr_scheduler_name": "cosine",
                                "lr": "{'color':0.001,'backbone':0.0001,'head':0.001}"}, cache, bundle)
    spec = json.loads((bundle / "configs" / "metadata.json").read_text())["mcolor_model"]["spec"]
    assert spec["num_classes"] == 5 and spec["task"] == "multilabel"  # the head was sized from the data
    run_bundle(["evaluate.json"], {"dataset": manifest, "progress": "false"}, cache, bundle)
    metrics = json.loads((bundle / "eval" / "metrics.json").read_text())
    assert metrics["task"] == "multilabel" and len(metrics["labels"]) == 5
    for name in metrics["labels"]:
        assert f"auc/{name}" in metrics and f"threshold/{name}" in metrics
    assert metrics["n"] == 12


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["head_only", "all"])
def test_baseline_schedules_train(schedule: str, tmp_path: Path, cache: Path) -> None:
    """The schedule decides what trains. Seed-independent evidence: a backbone built with ``pretrained: false``
    starts with BatchNorm running means of exactly 0 and variances of 1; a frozen backbone (``head_only``) keeps
    its BatchNorm in eval mode, so they stay so, while ``all`` updates them from the radiographs."""
    bundle = new_bundle(tmp_path / "b")
    proc = run_bundle(["train.json"], {**TINY, "schedule": schedule}, cache, bundle)
    expected = "'head_only'" if schedule == "head_only" else "'all'"
    assert f"transfer stage {expected}" in proc.stdout + proc.stderr
    trained = read_weights(bundle / "models" / "model.pt")
    means = [v for k, v in trained.items() if k.startswith("backbone.") and k.endswith("running_mean")]
    variances = [v for k, v in trained.items() if k.startswith("backbone.") and k.endswith("running_var")]
    assert means and variances
    untouched = all(torch.equal(m, torch.zeros_like(m)) for m in means) and all(
        torch.equal(v, torch.ones_like(v)) for v in variances)
    assert untouched == (schedule == "head_only")


def _final_weights(bundle: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(bundle / "eval" / "checkpoints" / "model_final.pt")["model"]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path, cache: Path) -> None:
    common = {**TINY, "max_epochs": 2, "color_epochs": 1, "seed": 7}
    straight = new_bundle(tmp_path / "straight")
    run_bundle(["train.json"], common, cache, straight)

    killed = new_bundle(tmp_path / "killed")
    proc = subprocess.Popen(bundle_cmd(["train.json"], common, killed),
                            env=bundle_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = killed / "eval" / "checkpoints" / "checkpoint_epoch=1.pt"
    deadline = time.time() + 240
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the run died before its first epoch checkpoint"
    assert not (killed / "eval" / "checkpoints" / "model_final.pt").exists()
    # no half-written file may look like a checkpoint
    assert all(load_checkpoint(p) for p in (killed / "eval" / "checkpoints").glob("*.pt"))

    run_bundle(["train.json"], {**common, "resume": "true"}, cache, killed)
    a, b = _final_weights(straight), _final_weights(killed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the best model survives the kill too: the writer's best score is restored with the epoch checkpoint
    best_a, best_b = read_weights(straight / "models" / "model.pt"), read_weights(killed / "models" / "model.pt")
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)
    load_trained_model(killed)  # weights and metadata agree (sha256)


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path: Path, cache: Path) -> None:
    bundle = new_bundle(tmp_path / "ddp")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517"]
    run_bundle(["train.json", "multi_gpu_train.json"], {**TINY, "shard_log": "true", "num_workers": 0}, cache,
               bundle, launcher=launcher, timeout=400)
    out = bundle / "eval"
    shards = [json.loads((out / "shards" / f"rank{r}.json").read_text())["1"] for r in (0, 1)]
    assert shards[0] and shards[1]
    assert not set(shards[0]) & set(shards[1]), "ranks trained on overlapping samples"
    assert len(set(shards[0]) | set(shards[1])) == 96  # the synthetic train split, covered
    assert (out / "checkpoints" / "model_final.pt").is_file()
    state = read_weights(bundle / "models" / "model.pt")
    assert not any(k.startswith("module.") for k in state)  # DDP unwrapped: the plain network's keys
    load_trained_model(bundle).network  # noqa: B018 - strict load


@pytest.mark.slow
def test_mlflow_tracking_with_a_local_store(tmp_path: Path, cache: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    bundle = new_bundle(tmp_path / "b")
    settings = bundle / "configs" / "mlflow_tracking.json"
    run_bundle(["train.json"], {**TINY, "tracking": settings}, cache, bundle)
    mlflow.set_tracking_uri(f"sqlite:///{bundle / 'eval' / 'mlruns.db'}")
    runs = mlflow.search_runs(experiment_names=["cxr_colorization"])
    assert len(runs) == 1
    assert {"metrics.train_loss", "metrics.val_auc", "metrics.lr_color"} <= set(runs.columns)
