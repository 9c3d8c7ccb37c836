"""Write the trained model into its bundle: ``models/model.pt`` + ``configs/metadata.json``.

Attached to the validation evaluator. After each validation whose key metric is the best so far, the
network's plain state dict, its spec, the operating point chosen on that validation, the validation figures
(``eval_metrics``) and the provenance go to ``bundle_root`` through :func:`mcolor.artifact.write_trained_model`
(weights first, then the metadata recording their sha256, both atomic). The best score is this handler's
own state, saved in the resume checkpoint, so a resumed run does not forget an earlier best model.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from mcolor import __version__
from mcolor.artifact import METADATA, ModelSpec, OperatingPoint, write_torchscript, write_trained_model
from mcolor.data.manifests import Manifest
from mcolor.errors import ConfigError
from mcolor.machine import environment
from mcolor.networks.classifier import unwrap

log = logging.getLogger(__name__)


def is_main_process() -> bool:
    """Rank 0 (or no process group): only it writes the bundle."""
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def _git_commit(path: Path) -> str | None:
    """The commit of the source tree mcolor runs from, when it is a git checkout (provenance only)."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode or not commit:
        return None
    dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return commit + ("+dirty" if dirty else "")


def manifest_provenance(manifest: Manifest) -> dict[str, Any]:
    """What data trained the model: source, licence, counts per split and a digest of the manifest file."""
    info: dict[str, Any] = {"source": manifest.source, "license": manifest.license, "counts": manifest.counts()}
    if manifest.path is not None and Path(manifest.path).is_file():
        info["manifest"] = Path(manifest.path).name
        info["manifest_sha256"] = hashlib.sha256(Path(manifest.path).read_bytes()).hexdigest()
    for key in ("builder", "subsample", "synthetic"):
        if key in manifest.meta:
            info[key] = manifest.meta[key]
    return info


class TrainedBundleWriter:
    """Event handler: keep the best validated model in ``bundle_root`` as a complete trained bundle.

    Args:
        bundle_root: the bundle folder (must hold ``configs/metadata.json``).
        network: the trained network (DDP is unwrapped).
        spec: the model's :class:`~mcolor.artifact.ModelSpec`.
        operating_point: the thresholds the validation metric chooses (written as they are at the best epoch).
        manifest: the training manifest (provenance).
        metric_name: the evaluator's key metric; higher is better.
        trainer: the trainer whose epoch/iteration the provenance records (optional).
        recipe: free-form description of what trained the model (config files, overrides).
        export_torchscript: write ``models/model.ts`` of the best model when training completes (the fast
            inference path); off only for throw-away runs (tests), since scripting takes seconds.
    """

    def __init__(self, bundle_root: str | Path, network: torch.nn.Module, spec: ModelSpec,
                 operating_point: OperatingPoint, manifest: Manifest | None = None, metric_name: str = "val_score",
                 trainer: Engine | None = None, recipe: Mapping[str, Any] | None = None,
                 export_torchscript: bool | str = True) -> None:
        from mcolor.options import parse_bool

        self.root = Path(bundle_root)
        if not (self.root / METADATA).is_file():
            raise ConfigError(f"bundle_root {self.root} is not a bundle folder (no {METADATA}): run the bundle from "
                              "its own folder, pass --bundle_root pointing at it, or copy it first with "
                              "`mcolor bundle init DEST`", reason="not_a_bundle", path=self.root)
        self.network = network
        self.spec = spec
        self.operating_point = operating_point
        self.manifest = manifest
        self.metric_name = metric_name
        self.trainer = trainer
        self.recipe = dict(recipe or {})
        self.export_torchscript = parse_bool(export_torchscript, "export_torchscript")
        self.best_score = -math.inf
        self.best_epoch = 0
        self.started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def set_trainer(self, trainer: Engine) -> None:
        """Record the trainer (provenance) and export ``models/model.ts`` of the best model when it completes."""
        self.trainer = trainer
        trainer.add_event_handler(Events.COMPLETED, self.export)

    def export(self, _: Engine | None = None) -> None:
        """``models/model.ts`` from the best weights (the fast inference path runs it without timm or MONAI)."""
        if self.export_torchscript and self.best_epoch and is_main_process():
            path = write_torchscript(self.root)
            log.info("exported %s", path)

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": torch.tensor(self.best_score, dtype=torch.float64),
                "best_epoch": torch.tensor(self.best_epoch)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best_score = float(state["best_score"])
        self.best_epoch = int(state["best_epoch"])

    def __call__(self, engine: Engine) -> None:
        if not is_main_process():
            return
        score = float(engine.state.metrics.get(self.metric_name, -math.inf))
        score = score if score == score else -math.inf
        if self.best_epoch and not score > self.best_score:
            return
        self.best_score, self.best_epoch = score, int(engine.state.epoch)
        figures = {k: v for k, v in engine.state.metrics.items() if k.startswith("val_") and k != self.metric_name
                   and isinstance(v, int | float) and "/" not in k}
        net = unwrap(self.network)
        write_trained_model(self.root, net.state_dict(), self.spec, self.operating_point,
                            self.provenance(engine), figures)
        log.info("epoch %d: best %s %.4f so far -> %s", self.best_epoch, self.metric_name, score,
                 self.root / "models" / "model.pt")

    def provenance(self, engine: Engine) -> dict[str, Any]:
        trainer_state = getattr(self.trainer, "state", None)
        return {
            "trained_with": f"mcolor {__version__}",
            "commit": _git_commit(Path(__file__).resolve().parents[2]),
            "started": self.started,
            "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "selected_epoch": self.best_epoch,
            "selected_on": self.metric_name,
            "selected_score": self.best_score if math.isfinite(self.best_score) else None,
            "max_epochs": getattr(trainer_state, "max_epochs", None),
            "iteration": getattr(trainer_state, "iteration", None),
            "data": manifest_provenance(self.manifest) if self.manifest is not None else None,
            "recipe": {"command": " ".join(sys.argv), **self.recipe},
            "environment": environment(),
        }
