"""``mcolor sweep`` on the smoke experiment (real bundle runs on phantoms), and the sweep statistics."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from mcolor.cli import main
from mcolor.errors import ConfigError
from mcolor.experiments.report import summarise
from mcolor.experiments.stats import auc, hierarchical_bootstrap, paired_bootstrap
from mcolor.experiments.sweep import (
    expand_grid,
    import_records,
    load_config,
    parse_shard,
    prepare_data,
    run_lock,
    split_fingerprint,
)

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "experiments" / "smoke.yaml"


def test_auc_matches_monai_and_handles_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200) + 0.3 * y, 1)  # rounded: many ties
    assert auc(s, y) == pytest.approx(float(compute_roc_auc(torch.tensor(s), torch.tensor(y))), abs=1e-9)
    assert np.isnan(auc(s, np.zeros(200)))


def test_hierarchical_bootstrap_interval_brackets_the_mean() -> None:
    rng = np.random.default_rng(1)
    runs = []
    for shift in (0.8, 1.0, 1.2):
        y = rng.integers(0, 2, 300)
        runs.append((rng.normal(size=300) + shift * y, y))
    mean, lo, hi = hierarchical_bootstrap(runs, n_boot=300)
    assert lo < mean < hi and 0.5 < lo and hi < 1.0
    one = hierarchical_bootstrap(runs[:1], n_boot=300)
    assert one[1] < one[0] < one[2]


def test_paired_bootstrap_sees_a_shift_that_independent_intervals_miss() -> None:
    rng = np.random.default_rng(2)
    pairs, same = [], []
    for _ in range(3):
        y = rng.integers(0, 2, 400)
        hard = rng.normal(size=400) + 1.0 * y  # both arms share the hard images
        better = hard + 0.1 * y + rng.normal(scale=0.1, size=400)
        pairs.append(((better, y), (hard, y)))
        same.append(((hard, y), (hard, y)))
    mean, lo, hi = paired_bootstrap(pairs, n_boot=300)
    assert 0 < lo < mean < hi
    # each arm's own interval (seeds, then test images) is wide enough to hold the other arm's mean
    better_mean, better_lo, _ = hierarchical_bootstrap([a for a, _ in pairs], n_boot=300)
    hard_mean, _, hard_hi = hierarchical_bootstrap([b for _, b in pairs], n_boot=300)
    assert better_lo < hard_mean < better_mean < hard_hi
    assert better_mean - hard_mean == pytest.approx(mean)
    assert paired_bootstrap(same, n_boot=100) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same test images"):
        paired_bootstrap([((hard, y), (hard, y[::-1]))], n_boot=10)


def test_a_run_without_its_scores_is_named_in_the_summary(tmp_path: Path) -> None:
    """A finished run whose per-image scores are gone (a damaged folder) must not quietly shrink the intervals:
    the summary names it."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    rows = []
    for cm in ("replicate", "coloru"):
        for seed in (0, 1):
            run_id = f"r18_{cm}_s{seed}"
            (tmp_path / "runs" / run_id).mkdir(parents=True)
            np.savez(tmp_path / "runs" / run_id / "test_scores.npz", probs=rng.normal(size=(200, 1)) + y[:, None],
                     labels=y[:, None])
            rows.append({"run_id": run_id, "backbone": "resnet18", "color_module": cm, "schedule": "two_stage",
                         "transfer": "", "fraction": 0.1, "seed": seed, "test_auc": 0.8, "accuracy": 0.7,
                         "wall_s": 1.0})
    summarise(rows, tmp_path, n_boot=50)
    whole = (tmp_path / "summary.md").read_text()
    assert "Left out" not in whole and re.search(r"\] \([0-2]/2\) \|", whole)  # both seeds paired
    (tmp_path / "runs" / "r18_replicate_s1" / "test_scores.npz").unlink()
    summarise(rows, tmp_path, n_boot=50)
    summary = (tmp_path / "summary.md").read_text()
    assert "Left out of the intervals and paired differences" in summary and "r18_replicate_s1" in summary
    assert re.search(r"\| resnet18 / coloru \| resnet18 / replicate \| [+-]\d\.\d{3} \[[^]]*\] \([01]/1\)", summary)


def test_shards_split_the_grid_without_overlap() -> None:
    assert parse_shard(None) == (0, 1) and parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError):
            parse_shard(bad)
    runs = [r.run_id for r in expand_grid(load_config(SMOKE))]
    parts = [runs[k::2] for k in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(runs) and not set(parts[0]) & set(parts[1])


def test_grid_expansion_caps_seeds_and_matches_transfer_modules() -> None:
    runs = expand_grid(load_config(SMOKE))
    ids = [r.run_id for r in runs]
    assert len(ids) == len(set(ids))
    assert not [r for r in runs if r.fraction == 1.0 and r.seed == 1]  # seeds_per_fraction {1.0: 1}
    assert all(r.color_module == "coloru" for r in runs if r.transfer)  # never replicate <- coloru
    assert any(r.transfer for r in runs)


def test_bad_sweep_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngrid: {colour_module: [deconv]}\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2


def test_records_of_another_sweep_or_carve_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCOLOR_CACHE", str(tmp_path / "cache"))
    cfg = load_config(SMOKE)
    out = tmp_path / "sweep"
    fingerprint = split_fingerprint(prepare_data(cfg, out))
    records = tmp_path / "records"
    (records / "runs" / "r").mkdir(parents=True)
    (records / "runs" / "r" / "result.json").write_text("{}")
    for info, why in (({"sweep": "other", "split_fingerprint": fingerprint}, "records of sweep 'other'"),
                      ({"sweep": cfg["name"], "split_fingerprint": "0" * 64}, "another train/val/test carve")):
        (records / "records.json").write_text(json.dumps(info))
        with pytest.raises(ConfigError, match=why):
            import_records(cfg, out, records)
        assert main(["sweep", str(SMOKE), "--out", str(out), "--import-records", str(records)]) == 2
    assert not (out / "runs").exists()  # nothing was brought back, nothing trained
    with pytest.raises(ConfigError, match="no sweep records"):
        import_records(cfg, out, tmp_path)


def test_a_run_another_process_holds_is_skipped_not_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sweep processes with overlapping grids: the second leaves the first one's running run alone (it used
    to delete its half-written folder and start it again), both in the grid loop and when importing records."""
    monkeypatch.setenv("MCOLOR_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "one.yaml"
    config.write_text(f"name: one\nbundle: {REPO / 'bundles' / 'cxr_colorization'}\n"
                      "data: {synthetic: {n: 40, size: 32}}\n"
                      "grid: {backbone: [{name: resnet18, pretrained: false}], color_module: [replicate], "
                      "fraction: [1.0], seed: [0]}\n")
    cfg = load_config(config)
    out = tmp_path / "sweep"
    (run_id,) = [r.run_id for r in expand_grid(cfg)]
    running = out / "runs" / run_id
    running.mkdir(parents=True)
    (running / "train.log").write_text("half-way through")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from mcolor.experiments.sweep import run_lock\n"
         f"with run_lock(Path({str(out)!r}), {run_id!r}) as held:\n    print(held, flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        assert main(["sweep", str(config), "--out", str(out)]) == 0
        assert (running / "train.log").read_text() == "half-way through"  # not deleted, not restarted
        assert list(csv.DictReader(open(out / "results.csv"))) == []
        records = tmp_path / "records"
        (records / "runs" / run_id).mkdir(parents=True)
        (records / "runs" / run_id / "result.json").write_text("{}")
        (records / "records.json").write_text(json.dumps(
            {"sweep": "one", "split_fingerprint": split_fingerprint(prepare_data(cfg, out))}))
        assert import_records(cfg, out, records) == 0 and not (running / "result.json").exists()
        with run_lock(out, run_id) as held:
            assert not held
    finally:
        holder.communicate("")  # the holder leaves its with-block and exits
    assert holder.returncode == 0
    with run_lock(out, run_id) as held:  # released when its holder went
        assert held
    assert import_records(cfg, out, records) == 1 and (running / "result.json").is_file()


@pytest.mark.slow
def test_smoke_sweep_runs_resumes_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCOLOR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sweep"
    assert main(["sweep", str(SMOKE), "--out", str(out), "--max-runs", "2"]) == 0  # a "killed" sweep
    first = sorted(p.parent.name for p in out.glob("runs/*/result.json"))
    assert len(first) == 3  # the transfer source + 2 grid runs
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/result.json")}
    assert main(["sweep", str(SMOKE), "--out", str(out), "--shard", "1/2"]) == 0  # one of two processes
    assert main(["sweep", str(SMOKE), "--out", str(out)]) == 0  # continues, skipping finished runs
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    rows = list(csv.DictReader(open(out / "results.csv")))
    expected = len(expand_grid(load_config(SMOKE)))
    assert len(rows) == expected
    for r in rows:
        assert 0.0 <= float(r["test_auc"]) <= 1.0 and int(r["steps"]) == 6 and int(r["params"]) > 0
        assert 0.0 <= float(r["val_auc"]) <= 1.0 and int(r["best_epoch"]) in (1, 2)  # of the kept checkpoint
        assert 0.0 <= float(r["test_auc_final"]) <= 1.0  # evaluate_final: the last checkpoint, no selection
        assert r["cpu"].endswith(f"({torch.backends.cpu.get_cpu_capability()})")  # the machine it ran on
    transferred = [r for r in rows if r["transfer"]]
    assert transferred and all(r["transfer"] == "r18_coloru:frozen" for r in transferred)
    # the frozen transferred module is exactly the exported source module
    exported = torch.load(out / "runs" / "source_r18_coloru" / "color.pt", weights_only=True)["state_dict"]
    ckpt = torch.load(out / "runs" / transferred[0]["run_id"] / "eval" / "checkpoints" / "model_final.pt",
                      weights_only=True)
    for k, v in exported.items():
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(ckpt["model"][f"color.{k}"], v), k
    summary = (out / "summary.md").read_text()
    assert "replicate" in summary and "coloru" in summary and "[" in summary
    assert "Paired difference" in summary and re.search(r"coloru / r18_coloru:frozen \| resnet18 / coloru \|", summary)
    assert re.search(r"\| resnet18 / coloru \| resnet18 / replicate \| [+-]\d\.\d{3} \[", summary)
    assert "Last checkpoint, no selection" in summary
    assert (out / "learning_curve.png").stat().st_size > 5000
    run_dir = out / "runs" / rows[0]["run_id"]
    assert json.loads((run_dir / "eval" / "metrics.json").read_text())["split"] == "test"
    assert (run_dir / "models" / "model.pt").is_file() and (run_dir / "final" / "models" / "model.pt").is_file()

    # The records outlive the machine: kept light, brought back into a fresh folder, the grid is complete there
    # (nothing retrains, not even the transfer source) and the reports are the same.
    records = tmp_path / "records"
    assert main(["sweep", str(SMOKE), "--out", str(out), "--max-runs", "0", "--export-records", str(records)]) == 0
    assert {p.name for p in records.rglob("*.pt")} == {"color.pt"}  # the source's module; no checkpoints
    assert sum(p.stat().st_size for p in records.rglob("*") if p.is_file()) < 2_000_000
    again = tmp_path / "again"
    assert main(["sweep", str(SMOKE), "--out", str(again), "--import-records", str(records)]) == 0
    assert not list(again.glob("runs/*/models"))  # every run, and the source, came from the records
    assert list(csv.DictReader(open(again / "results.csv"))) == rows
    assert (again / "summary.md").read_text() == summary


def test_pairs_across_two_cpus_are_counted_and_also_left_out(tmp_path: Path) -> None:
    """The same run on two CPU families ends at other weights, so a pair whose runs ran on different CPUs mixes a
    machine effect into the difference: the summary counts such pairs and repeats the table without them."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    rows = []
    for cm in ("replicate", "coloru"):
        for seed in (0, 1, 2):
            run_id = f"r18_{cm}_s{seed}"
            (tmp_path / "runs" / run_id).mkdir(parents=True)
            np.savez(tmp_path / "runs" / run_id / "test_scores.npz", probs=rng.normal(size=(200, 1)) + y[:, None],
                     labels=y[:, None])
            cpu = "Intel Xeon" if (cm, seed) == ("replicate", 2) else "AMD EPYC"
            rows.append({"run_id": run_id, "backbone": "resnet18", "color_module": cm, "schedule": "two_stage",
                         "transfer": "", "fraction": 0.1, "seed": seed, "test_auc": 0.8, "accuracy": 0.7,
                         "wall_s": 1.0, "cpu": cpu})
    summarise(rows, tmp_path, n_boot=50)
    summary = (tmp_path / "summary.md").read_text()
    assert re.search(r"\| resnet18 / coloru \| resnet18 / replicate \| [^|]*\([0-3]/3; 1 across CPUs\) \|", summary)
    assert "1 of these seed pairs ran on two different CPUs" in summary
    same = summary.split("1 of these seed pairs ran on two different CPUs")[1]
    assert re.search(r"\| resnet18 / coloru \| resnet18 / replicate \| [^|]*\([0-2]/2\) \|", same)
    for r in rows:  # one machine (or none recorded): no count, no second table
        r["cpu"] = "" if r["seed"] == 2 else "AMD EPYC"
    summarise(rows, tmp_path, n_boot=50)
    summary = (tmp_path / "summary.md").read_text()
    assert "across CPUs" not in summary and "different CPUs" not in summary
    assert re.search(r"\| resnet18 / coloru \| resnet18 / replicate \| [^|]*\([0-3]/3\) \|", summary)
