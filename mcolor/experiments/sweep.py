"""``mcolor sweep``: a grid of bundle runs (backbones x colour modules x schedules x fractions x seeds).

Every run goes through the bundle's own ``train.json`` and ``evaluate.json`` (MONAI ``ConfigWorkflow``,
in-process, so there is no second training loop); training subsets come from the manifest subsampler
(nested, stratified, leak-free). Each finished run leaves ``runs/<id>/result.json`` (written atomically),
so a killed sweep continues where it stopped and finished runs are skipped. Outputs: ``results.csv``,
``summary.md`` (mean test AUC with 95 % intervals from a two-level bootstrap over seeds and test images)
and ``learning_curve.png``.

Colour-module transfer: a ``sources`` section trains named source runs first; a grid entry
``transfer: {source: NAME, freeze: true|false}`` starts a run's colorization module from that source's
exported module (``color_init``), frozen or as initialisation.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mcolor.atomic import atomic_write
from mcolor.data.builders import build_folders, build_medmnist
from mcolor.data.manifests import Manifest, load_manifest, save_manifest
from mcolor.data.subsample import subsample_manifest
from mcolor.errors import ConfigError

log = logging.getLogger(__name__)

try:  # POSIX advisory locks: released by the kernel when the holder dies, so a killed sweep leaves none behind
    import fcntl
except ImportError:  # pragma: no cover - Windows: runs are not locked (shards of one grid never overlap)
    fcntl = None  # type: ignore[assignment]

GRID_KEYS = ("backbone", "color_module", "schedule", "fraction", "seed", "transfer")
TOP_KEYS = ("name", "bundle", "data", "train", "grid", "seeds_per_fraction", "sources", "bootstrap", "description",
            "evaluate_final")
RESULT_FIELDS = ["run_id", "backbone", "color_module", "schedule", "fraction", "seed", "transfer", "train_images",
                 "val_score", "val_auc", "best_epoch", "test_auc", "test_auc_final", "accuracy", "sensitivity",
                 "specificity", "threshold", "epochs", "steps", "wall_s", "cpu_s", "cpu", "params", "color_params"]


@dataclass
class Run:
    """One cell of the grid."""

    backbone: str
    pretrained: str
    color_module: str
    schedule: str
    fraction: float
    seed: int
    transfer: dict[str, Any] | None = None
    name: str | None = None

    @property
    def run_id(self) -> str:
        if self.name:
            return self.name
        t = ""
        if self.transfer:
            t = f"_{self.transfer['source']}-{'frozen' if self.transfer.get('freeze') else 'init'}"
        return f"{self.backbone}_{self.color_module}_{self.schedule}_f{self.fraction:g}_s{self.seed}{t}"


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and check a sweep YAML; relative paths are resolved against the YAML's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep config not found: {path}", reason="missing_file", path=path)
    cfg = yaml.safe_load(path.read_text()) or {}
    unknown = set(cfg) - set(TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; valid: {', '.join(TOP_KEYS)}", reason="bad_option")
    unknown = set(cfg.get("grid", {})) - set(GRID_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown grid keys {sorted(unknown)}; valid: {', '.join(GRID_KEYS)}",
                          reason="bad_option")
    cfg["_dir"] = str(path.resolve().parent)
    return cfg


def _resolve(base: str, value: str | None) -> str | None:
    if value in (None, False, "false", True, "true", "packaged"):
        return value  # type: ignore[return-value]
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else (Path(base) / p).resolve())


def expand_grid(cfg: dict[str, Any]) -> list[Run]:
    """The runs of the grid, with ``seeds_per_fraction`` capping seeds for expensive fractions."""
    grid = cfg.get("grid", {})
    base = cfg["_dir"]
    backbones = [b if isinstance(b, dict) else {"name": b} for b in grid.get("backbone", ["efficientnet_lite0"])]
    caps = {float(k): int(v) for k, v in (cfg.get("seeds_per_fraction") or {}).items()}
    runs = []
    for b, cm, sch, frac, seed, tr in itertools.product(
        backbones, grid.get("color_module", ["coloru"]), grid.get("schedule", ["two_stage"]),
        grid.get("fraction", [1.0]), grid.get("seed", [0]), grid.get("transfer", [None]),
    ):
        seeds = list(grid.get("seed", [0]))
        if float(frac) in caps and seeds.index(seed) >= caps[float(frac)]:
            continue
        if tr and (cfg.get("sources") or {}).get(tr["source"], {}).get("color_module", "coloru") != cm:
            continue  # a transferred module only fits runs of its own colour-module family
        runs.append(Run(b["name"], _resolve(base, b.get("pretrained", "packaged")) or "false", cm, sch,
                        float(frac), int(seed), tr))
    # Seed-major order: a sweep stopped early still covers every arm and fraction for the first seeds.
    seed_rank = {s: i for i, s in enumerate(grid.get("seed", [0]))}
    return sorted(runs, key=lambda r: seed_rank[r.seed])


def prepare_data(cfg: dict[str, Any], out: Path) -> Path:
    """The sweep's base manifest: built once from a MedMNIST file, or an existing manifest."""
    data = cfg.get("data") or {}
    if "manifest" in data:
        return Path(_resolve(cfg["_dir"], data["manifest"]))  # type: ignore[arg-type]
    if "medmnist" in data:
        target = out / "data" / "manifest.csv"
        if not target.is_file():
            build_medmnist(_resolve(cfg["_dir"], data["medmnist"]), out / "data",
                           test_fraction=float(data.get("test_fraction", 0.0)), seed=int(data.get("seed", 0)))
        return target
    if "folders" in data:  # a class-per-folder tree (Kermany), official splits kept, missing ones carved
        target = out / "data" / "manifest.csv"
        if not target.is_file():
            build_folders(_resolve(cfg["_dir"], data["folders"]), out / "data",
                          val_fraction=float(data.get("val_fraction", 0.1)),
                          test_fraction=float(data.get("test_fraction", 0.0)), seed=int(data.get("seed", 0)),
                          task=str(data.get("task", "folders")))
        return target
    if "synthetic" in data:
        from mcolor.data.synthetic import ensure_synthetic_dataset

        spec = data["synthetic"] or {}
        return ensure_synthetic_dataset(n=int(spec.get("n", 160)), size=int(spec.get("size", 64)))
    raise ConfigError("sweep data needs 'medmnist', 'folders', 'manifest' or 'synthetic'", reason="bad_option")


def subset_manifest(base: Manifest, fraction: float, seed: int, out: Path) -> Path:
    """Write (once) and return the training subset for ``(fraction, seed)``; val/test untouched."""
    path = out / "subsets" / f"f{fraction:g}_s{seed}" / "manifest.csv"
    if not path.is_file():
        sub = base if fraction >= 1.0 else subsample_manifest(base, fraction, seed)
        save_manifest(sub, path)
    return path


def _workflow(config: Path, overrides: dict[str, Any]) -> Any:
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(config_file=str(config), workflow_type=None, logging_file=False, **overrides)
    wf.initialize()
    return wf


def train_and_evaluate(run: Run, manifest: Path, run_dir: Path, bundle: Path, train: dict[str, Any],
                       color_init: Path | None = None) -> dict[str, Any]:
    """Train with the bundle's train.json in ``run_dir`` (a copy of the bundle: the trained model lands in its
    ``models/`` and ``configs/metadata.json``), then evaluate that model on the test split with evaluate.json."""
    from mcolor.bundle.installed import init_bundle
    from mcolor.machine import environment
    from mcolor.networks.classifier import unwrap

    t0, c0 = time.time(), time.process_time()
    init_bundle(run_dir, source=bundle)
    overrides = {**train, "bundle_root": str(run_dir), "dataset": str(manifest), "backbone": run.backbone,
                 "pretrained": run.pretrained, "color_module": run.color_module, "schedule": run.schedule,
                 "seed": run.seed, "progress": False, "export_torchscript": False}
    if color_init is not None:
        overrides.update(color_init=str(color_init), freeze_color=bool(run.transfer and run.transfer.get("freeze")))
    wf = _workflow(run_dir / "configs" / "train.json", overrides)
    wf.run()
    trainer = wf.parser.get_parsed_content("train::trainer")
    network = wf.parser.get_parsed_content("network")
    net = unwrap(network)
    result = {
        "epochs": int(trainer.state.epoch), "steps": int(trainer.state.iteration),
        "params": int(sum(p.numel() for p in net.parameters())),
        "color_params": int(sum(p.numel() for p in net.color.parameters())),
        "train_images": len(wf.parser.get_parsed_content("train::dataset")),
    }
    wf.finalize()
    result.update(validation_at_best(run_dir))
    metrics = evaluate_checkpoint(run_dir, manifest, "test_scores.npz")
    result.update({k: metrics.get(k) for k in ("accuracy", "sensitivity", "specificity", "threshold")})
    result["test_auc"] = metrics.get("auc")
    result["wall_s"] = round(time.time() - t0, 1)
    result["cpu_s"] = round(time.process_time() - c0, 1)  # all threads of this process: the compute spent
    env = environment()  # where it ran: runs on two CPU families are not bit-identical (see environment)
    result["cpu"] = f"{env['cpu']} ({env['cpu_capability']})"
    return result


def parse_shard(shard: str | None) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N``; ``None`` -> ``(0, 1)`` (the whole grid)."""
    if shard is None:
        return 0, 1
    try:
        k, n = (int(x) for x in str(shard).split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like K/N (e.g. 0/2), got {shard!r}", reason="bad_option") from None
    if n < 1 or not 0 <= k < n:
        raise ConfigError(f"--shard {shard}: need 0 <= K < N", reason="bad_option")
    return k, n


def evaluate_checkpoint(model_dir: Path, manifest: Path, scores_name: str, run_dir: Path | None = None
                        ) -> dict[str, Any]:
    """Evaluate the trained bundle ``model_dir`` on the test split with its own evaluate.json (files go to
    ``model_dir/eval``); keep the per-image scores as ``(run_dir or model_dir)/scores_name`` for the bootstrap
    and return the metrics."""
    ev = _workflow(model_dir / "configs" / "evaluate.json",
                   {"bundle_root": str(model_dir), "dataset": str(manifest), "split": "test", "progress": False})
    ev.run()
    metric = ev.parser.get_parsed_content("metric")
    np.savez_compressed((run_dir or model_dir) / scores_name, probs=metric.last["probs"],
                        labels=metric.last["labels"])
    ev.finalize()
    return json.loads((model_dir / "eval" / "metrics.json").read_text())


def final_bundle(run_dir: Path) -> Path | None:
    """The run's *last* model (no checkpoint selection) as a bundle in ``run_dir/final``, or None."""
    from mcolor.artifact import ModelSpec, OperatingPoint, load_trained_model, read_weights, write_trained_model
    from mcolor.bundle.installed import init_bundle

    final = run_dir / "eval" / "checkpoints" / "model_final.pt"
    if not final.is_file():
        return None
    target = run_dir / "final"
    if target.exists():
        shutil.rmtree(target)
    init_bundle(target, source=run_dir)
    ckpt = read_weights(final)
    spec: ModelSpec = load_trained_model(run_dir).spec
    op = OperatingPoint(len(ckpt["operating_point"]["thresholds"]))
    op.load_state_dict(ckpt["operating_point"])
    write_trained_model(target, ckpt["model"], spec, op, {"selected_on": "last epoch (no selection)"})
    return target


def evaluate_final(run: Run, out: Path, bundle: Path, manifest: Path) -> None:
    """Add the last checkpoint's test AUC (no checkpoint selection) to a finished run's ``result.json``.

    A sensitivity check on the selection rule: with a few dozen training images, the lowest validation
    loss can belong to a near-constant early model, so tables are reported both ways.
    """
    del bundle
    run_dir = out / "runs" / run.run_id
    result = json.loads((run_dir / "result.json").read_text())
    if "test_auc_final" in result:
        return
    target = final_bundle(run_dir)
    if target is None:
        log.warning("run %s has no final checkpoint; test_auc_final left empty", run.run_id)
        return
    metrics = evaluate_checkpoint(target, manifest, "test_scores_final.npz", run_dir)
    result["test_auc_final"] = metrics.get("auc")
    atomic_write(run_dir / "result.json", lambda fh: json.dump(result, fh, indent=2))


@contextmanager
def run_lock(out: Path, run_id: str, wait: bool = False) -> Iterator[bool]:
    """Hold the lock of run ``run_id`` of the sweep folder ``out`` while the body runs; yields whether it is held.

    Two sweep processes whose grids overlap (two configs sharing runs, or a sharded and an unsharded command
    on one folder) would otherwise both start a run, and the second would delete the first one's half-written
    folder. With ``wait=False`` a run another process holds is reported as not held, to be skipped; with
    ``wait=True`` (a transfer source the grid needs) the caller waits for it."""
    if fcntl is None:  # pragma: no cover
        yield True
        return
    locks = out / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{run_id}.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_sweep(config: str | Path, out: str | Path, max_runs: int | None = None, dry_run: bool = False,
              shard: str | None = None, import_from: str | Path | None = None,
              export_to: str | Path | None = None) -> Path:
    """Run (or continue) the sweep described by ``config`` into ``out``; returns ``results.csv``.

    ``shard="K/N"`` runs only runs K, K+N, K+2N, ... of the seed-major grid, so N processes (one thread
    each) can share a small machine. Each run is trained under its lock (:func:`run_lock`), so processes whose
    grids overlap skip each other's running runs; a transfer source is trained by whichever process gets there
    first while the others wait for it (train it alone first, ``max_runs=0``, to keep their cores busy).
    Reports always cover every finished run of the grid, whichever process ran it.

    ``import_from`` first brings back the records an earlier sweep kept with ``export_to`` (runs already
    finished are then skipped, and reports cover them); ``export_to`` keeps the records after the reports.
    """
    k, n = parse_shard(shard)
    from mcolor.artifact import load_trained_model
    from mcolor.color_transfer import export_color_module

    cfg = load_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = Path(_resolve(cfg["_dir"], cfg.get("bundle", "../../bundles/cxr_colorization")))  # type: ignore[arg-type]
    runs = expand_grid(cfg)
    mine = runs[k::n]
    log.info("sweep %s: %d runs (%d in shard %d/%d) into %s", cfg.get("name", Path(config).stem), len(runs),
             len(mine), k, n, out)
    if dry_run:
        for r in mine:
            print(r.run_id)
        return out / "results.csv"
    manifest_path = prepare_data(cfg, out)
    if import_from is not None:
        log.info("sweep: %d finished runs brought back from %s", import_records(cfg, out, Path(import_from)),
                 import_from)
    base = load_manifest(manifest_path)
    train = dict(cfg.get("train") or {})
    sources: dict[str, Path] = {}
    for name, spec in (cfg.get("sources") or {}).items():
        src = Run(spec["backbone"], _resolve(cfg["_dir"], spec.get("pretrained", "packaged")) or "false",
                  spec.get("color_module", "coloru"), spec.get("schedule", "two_stage"),
                  float(spec.get("fraction", 1.0)), int(spec.get("seed", 0)), None, name=f"source_{name}")
        src_dir = out / "runs" / src.run_id
        color = src_dir / "color.pt"
        with run_lock(out, src.run_id, wait=True):  # another shard training it: wait, the grid needs it
            if not color.is_file():
                # A source may learn on other data (another task or dataset) with other settings: the transfer
                # across tasks and datasets; its data and subsets then live apart from the grid's.
                src_out, src_base = out, base
                if spec.get("data"):
                    src_out = out / "sources" / name
                    src_base = load_manifest(prepare_data({"_dir": cfg["_dir"], "data": spec["data"]}, src_out))
                _execute(src, src_base, out, bundle, {**train, **(spec.get("train") or {})}, None, src_out)
                export_color_module(load_trained_model(src_dir).network, color)
        sources[name] = color
    done = 0
    for run in mine:
        if max_runs is not None and done >= max_runs:
            break
        with run_lock(out, run.run_id) as held:
            if not held:
                log.info("run %s: running in another process, skipped here", run.run_id)
                continue
            if not (out / "runs" / run.run_id / "result.json").is_file():
                init = None
                if run.transfer:
                    if run.transfer["source"] not in sources:
                        raise ConfigError(f"run {run.run_id}: unknown transfer source {run.transfer['source']!r}",
                                          reason="bad_option")
                    init = sources[run.transfer["source"]]
                _execute(run, base, out, bundle, train, init)
                done += 1
            if cfg.get("evaluate_final"):  # also back-fills runs finished before the option was set
                evaluate_final(run, out, bundle, subset_manifest(base, run.fraction, run.seed, out))
    path = write_reports(cfg, out, runs, n_boot=int(cfg.get("bootstrap", 1000)))
    if export_to is not None:
        log.info("sweep: records of %d runs kept in %s", export_records(cfg, out, Path(export_to)), export_to)
    return path


def _execute(run: Run, base: Manifest, out: Path, bundle: Path, train: dict[str, Any], init: Path | None,
             data_out: Path | None = None) -> None:
    run_dir = out / "runs" / run.run_id  # the caller holds the run's lock (run_lock): no other process is in it
    if run_dir.exists():  # a run killed part-way (no result.json): start it afresh, no stale checkpoints
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    subset = subset_manifest(base, run.fraction, run.seed, data_out or out)
    log.info("run %s", run.run_id)
    result = train_and_evaluate(run, subset, run_dir, bundle, train, init)
    result.update({"run_id": run.run_id, "backbone": run.backbone, "color_module": run.color_module,
                   "schedule": run.schedule, "fraction": run.fraction, "seed": run.seed,
                   "transfer": "" if not run.transfer else
                   f"{run.transfer['source']}:{'frozen' if run.transfer.get('freeze') else 'init'}"})
    atomic_write(run_dir / "result.json", lambda fh: json.dump(result, fh, indent=2))
    log.info("run %s: test AUC %.4f (%.0f s)", run.run_id, result["test_auc"] or float("nan"), result["wall_s"])


#: The light per-run records a sweep's reports are computed from: kept by ``export_records`` and brought back
#: by ``import_records`` (checkpoints and bundles stay behind: they are megabytes per run).
RECORD_FILES = ("result.json", "test_scores.npz", "test_scores_final.npz", "color.pt")


def split_fingerprint(manifest: Path) -> str:
    """sha256 of the manifest's (image, split, label) rows, with images named by their last two path parts so
    that the same carve on another machine (another data root) has the same fingerprint. Records made on
    another carve would pair runs scored on different test images, so importing them is refused."""
    import hashlib

    with open(manifest, newline="") as fh:
        rows = sorted(f"{'/'.join(Path(r['image']).parts[-2:])},{r['split']},{r['label']}"
                      for r in csv.DictReader(fh))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _copy_atomic(src: Path, dst: Path) -> None:
    """Copy through :func:`atomic_write`: an interrupted export never leaves a truncated record to import."""
    atomic_write(dst, lambda fh: fh.write(src.read_bytes()), mode="wb")


def export_records(cfg: dict[str, Any], out: Path, dest: Path) -> int:
    """Copy every finished run's records (result, per-image test scores, a source's colour module) and the
    reports from the sweep folder ``out`` to ``dest``, with the carve's fingerprint; returns the runs kept.

    A sweep of several CPU-hours outlives one machine only through these records: ``import_records`` puts
    them back so a later session continues the grid and reports over every run, not only its own."""
    manifest = prepare_data(cfg, out)
    n = 0
    for run_dir in sorted((out / "runs").glob("*")):
        if not (run_dir / "result.json").is_file():
            continue
        for name in RECORD_FILES:
            if (run_dir / name).is_file():
                (dest / "runs" / run_dir.name).mkdir(parents=True, exist_ok=True)
                _copy_atomic(run_dir / name, dest / "runs" / run_dir.name / name)
        n += 1
    for name in ("results.csv", "summary.md", "learning_curve.png"):
        if (out / name).is_file():
            _copy_atomic(out / name, dest / name)
    info = {"sweep": cfg.get("name"), "split_fingerprint": split_fingerprint(manifest), "runs": n}
    atomic_write(dest / "records.json", lambda fh: json.dump(info, fh, indent=2))
    return n


def import_records(cfg: dict[str, Any], out: Path, src: Path) -> int:
    """Bring back the records ``export_records`` wrote into the sweep folder ``out``: runs already there are
    left alone, and records of another sweep or another carve are refused. Returns the runs brought back."""
    info_path = src / "records.json"
    if not info_path.is_file():
        raise ConfigError(f"{src} holds no sweep records (no records.json)", reason="missing_file")
    info = json.loads(info_path.read_text())
    if info.get("sweep") != cfg.get("name"):
        raise ConfigError(f"{src} holds records of sweep {info.get('sweep')!r}, not {cfg.get('name')!r}",
                          reason="bad_option")
    if info.get("split_fingerprint") != split_fingerprint(prepare_data(cfg, out)):
        raise ConfigError(f"{src} was made on another train/val/test carve than this sweep's: its runs would "
                          "not pair with new ones", reason="bad_option")
    n = 0
    for run_dir in sorted((src / "runs").glob("*")):
        target = out / "runs" / run_dir.name
        if (target / "result.json").is_file() or not (run_dir / "result.json").is_file():
            continue
        with run_lock(out, run_dir.name) as held:
            if not held:  # another process is running it here: its own result will come
                continue
            if target.exists():  # a run killed part-way here: the record replaces it
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for name in RECORD_FILES:
                if (run_dir / name).is_file() and name != "result.json":
                    shutil.copyfile(run_dir / name, target / name)
            shutil.copyfile(run_dir / "result.json", target / "result.json")  # last: it marks the run finished
        n += 1
    return n


def validation_at_best(run_dir: Path) -> dict[str, Any]:
    """Validation AUC and epoch of the kept model, from the run's bundle metadata (empty for runs of
    mcolor 0.1, whose TensorBoard log held them)."""
    meta_path = run_dir / "configs" / "metadata.json"
    if not meta_path.is_file():
        return {}
    meta = json.loads(meta_path.read_text())
    prov = (meta.get("mcolor_model") or {}).get("provenance") or {}
    figures = meta.get("eval_metrics") or {}
    out: dict[str, Any] = {}
    if "selected_epoch" in prov:
        out["best_epoch"] = prov["selected_epoch"]
    if "val_auc" in figures:
        out["val_auc"] = figures["val_auc"]
    if prov.get("selected_score") is not None:
        out["val_score"] = prov["selected_score"]
    return out


def write_reports(cfg: dict[str, Any], out: Path, runs: list[Run], n_boot: int = 1000) -> Path:
    """``results.csv`` (one row per finished run), ``summary.md`` and ``learning_curve.png``."""
    from mcolor.experiments.report import summarise

    rows = []
    for run in runs:
        f = out / "runs" / run.run_id / "result.json"
        if f.is_file():
            row = json.loads(f.read_text())
            if "val_auc" not in row:
                row.update(validation_at_best(f.parent))
            rows.append(row)
    path = out / "results.csv"

    def dump(fh: Any) -> None:
        w = csv.DictWriter(fh, fieldnames=RESULT_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    atomic_write(path, dump, newline="")
    summarise(rows, out, n_boot=n_boot)
    return path
