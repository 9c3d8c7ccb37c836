"""The model an inference run uses, loaded once: from a bundle (folder or zip) or a bare checkpoint.

A bundle's configs are never executed here (``open_bundle(trust_bundle=False)``): the network is rebuilt
from the checkpoint's spec. When the bundle also ships ``models/model.ts`` it runs the forward passes
(TorchScript, no Python model code needed), after a check that it agrees with the eager network on a
random batch. ``eager=True`` forces the eager network, which Grad-CAM previews need (hooks on layers).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mcolor.engines.setup import TrainedModel, load_trained_model, resolve_device
from mcolor.errors import BundleError, ConfigError, McolorError

log = logging.getLogger(__name__)

_TS_TOLERANCE = 1e-3


@dataclass
class InferenceModel:
    """A trained model plus what the outputs must say about it (name, version, thresholds, engine)."""

    trained: TrainedModel
    name: str
    version: str
    network: nn.Module
    engine: str = "eager"
    thresholds: list[float] = field(default_factory=list)
    threshold_source: str = "checkpoint"

    @property
    def eager(self) -> nn.Module:
        """The eager ``ColorizedClassifier``: colorize/Grad-CAM need it even under TorchScript."""
        return self.trained.network

    @property
    def task(self) -> str:
        return self.trained.task

    @property
    def output_names(self) -> list[str]:
        return self.trained.output_names

    @property
    def labels(self) -> list[str]:
        return [str(v) for v in self.trained.spec.get("labels") or self.output_names]

    @property
    def image_size(self) -> int:
        return self.trained.image_size

    @property
    def letterbox(self) -> str:
        return self.trained.letterbox

    @property
    def num_outputs(self) -> int:
        return int(self.trained.spec["num_classes"])

    def describe(self) -> dict[str, Any]:
        """The model block of ``report.json``."""
        spec = self.trained.spec
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "labels": self.labels,
            "output_names": self.output_names,
            "thresholds": self.thresholds,
            "threshold_source": self.threshold_source,
            "engine": self.engine,
            "image_size": self.image_size,
            "letterbox": self.letterbox,
            "backbone": spec.get("backbone"),
            "color_module": spec.get("color_module"),
        }


def _thresholds(trained: TrainedModel, threshold: float | None) -> tuple[list[float], str]:
    if threshold is None:
        return list(trained.operating_point.thresholds), "checkpoint"
    if not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {threshold}", reason="bad_threshold")
    if trained.task == "multiclass":
        log.warning("--threshold is ignored for a multi-class model (the arg-max class is predicted)")
    return [float(threshold)] * len(trained.operating_point.thresholds), "override"


def _torchscript(path: Path, trained: TrainedModel, device: torch.device) -> nn.Module | None:
    """Load ``model.ts`` and check it against the eager network; ``None`` (eager used) if they disagree."""
    try:
        scripted = torch.jit.load(str(path), map_location=device).eval()
        x = torch.rand(2, 1, trained.image_size, trained.image_size, device=device)
        with torch.no_grad():
            diff = float((scripted(x).float() - trained.network(x).float()).abs().max())
    except Exception as exc:
        log.warning("%s could not be used (%s): running the eager network", path.name, type(exc).__name__)
        return None
    if not diff < _TS_TOLERANCE:
        log.warning("%s disagrees with models/model.pt (max |diff| %.2g): running the eager network", path.name, diff)
        return None
    return scripted


def bundle_identity(bundle_root: str | Path | None) -> tuple[str, str]:
    """``(name, version)`` from a bundle's ``configs/metadata.json`` (the bundle config's own model)."""
    if bundle_root is None:
        return "checkpoint", "unknown"
    try:
        meta = json.loads((Path(bundle_root) / "configs" / "metadata.json").read_text(encoding="utf-8"))
        return str(meta.get("name") or Path(bundle_root).name), str(meta.get("version") or "unknown")
    except (OSError, ValueError):
        return Path(bundle_root).name, "unknown"


def load_checkpoint_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    threshold: float | None = None,
    bundle_root: str | Path | None = None,
) -> InferenceModel:
    """An eager model from a ``model.pt`` (the bundle config's ``model``, and ``--bundle model.pt``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BundleError(f"model checkpoint not found: {path}", reason="missing_model", path=path)
    try:
        trained = load_trained_model(path, device)
    except McolorError as exc:
        raise BundleError(f"{path}: cannot load the model: {exc}", reason="bad_model", path=path) from exc
    name, version = bundle_identity(bundle_root)
    if bundle_root is None:
        name, version = path.stem, str(trained.spec.get("mcolor_version", "unknown"))
    thresholds, source = _thresholds(trained, threshold)
    return InferenceModel(trained, name, version, trained.network, "eager", thresholds, source)


def load_inference_model(
    source: str | Path,
    device: str | torch.device = "auto",
    threshold: float | None = None,
    eager: bool = False,
) -> InferenceModel:
    """Load ``source`` (bundle folder, bundle ``.zip`` or ``model.pt``) once for a whole run.

    Raises:
        BundleError: missing or invalid bundle, missing or refused model (the CLI's exit code 3).
    """
    from mcolor.bundle import open_bundle

    dev = resolve_device(device)
    src = Path(source).expanduser()
    if src.is_file() and src.suffix == ".pt":
        return load_checkpoint_model(src, dev, threshold)
    bundle = open_bundle(src, trust_bundle=False)
    trained = bundle.load_model(dev)
    thresholds, source_kind = _thresholds(trained, threshold)
    network: nn.Module = trained.network
    engine = "eager"
    ts_path = bundle.ts_path
    if ts_path is not None and not eager:
        bundle.check_hashes(["models/model.ts"])
        scripted = _torchscript(ts_path, trained, dev)
        if scripted is not None:
            network, engine = scripted, "torchscript"
    log.info("model %s %s (%s, %s on %s)", bundle.name, bundle.version, trained.spec.get("backbone"), engine, dev)
    return InferenceModel(trained, bundle.name, bundle.version, network, engine, thresholds, source_kind)
