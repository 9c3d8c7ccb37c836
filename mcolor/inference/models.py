"""The model an inference run uses, loaded once from a trained bundle (folder or zip).

A bundle's configs are never executed here: the spec, thresholds and temperature come from its
``configs/metadata.json`` (data, read by :mod:`mcolor.artifact`), the weights from ``models/model.pt``.

Backends: ``torchscript`` runs ``models/model.ts`` (written by training and by ``mcolor bundle pack``) with
torch alone, so a run never imports timm or MONAI; it is used only when the TorchScript file embeds the
same weights digest as the metadata (a stale export is never run). ``eager`` rebuilds the network from
mcolor's registry (Grad-CAM previews need it: hooks on layers). ``onnx`` runs ``models/model.onnx`` with
ONNX Runtime (the ``onnx`` extra). ``auto`` prefers TorchScript, then eager.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mcolor.artifact import (
    MODEL_ONNX,
    SECTION,
    TrainedModel,
    is_legacy_checkpoint,
    load_trained_model,
    read_weights,
)
from mcolor.errors import BundleError, ConfigError, McolorError
from mcolor.extras import require
from mcolor.options import resolve_device

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torchscript", "eager", "onnx")


@dataclass
class InferenceModel:
    """A trained model plus what the outputs must say about it (name, version, thresholds, backend)."""

    trained: TrainedModel
    network: Any
    engine: str = "eager"
    thresholds: list[float] = field(default_factory=list)
    threshold_source: str = "model"

    @property
    def name(self) -> str:
        return self.trained.name

    @property
    def version(self) -> str:
        return self.trained.version

    @property
    def eager(self) -> nn.Module:
        """The eager ``ColorizedClassifier``: colorize/Grad-CAM need it whatever the backend (built on use)."""
        return self.trained.network

    @property
    def task(self) -> str:
        return self.trained.task

    @property
    def output_names(self) -> list[str]:
        return self.trained.output_names

    @property
    def labels(self) -> list[str]:
        return self.trained.labels

    @property
    def image_size(self) -> int:
        return self.trained.image_size

    @property
    def letterbox(self) -> str:
        return self.trained.letterbox

    @property
    def num_outputs(self) -> int:
        return self.trained.num_outputs

    @property
    def device(self) -> torch.device:
        return self.trained.device

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The network's logits for a batch ``(B, 1, S, S)`` on this model's backend."""
        if self.engine == "onnx":
            out = self.network.run(None, {self.network.get_inputs()[0].name: images.cpu().numpy()})[0]
            return torch.from_numpy(np.asarray(out))
        with torch.inference_mode():
            return self.network(images.to(self.device))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities (:func:`mcolor.artifact.probabilities`, the one place this is computed)."""
        return self.trained.probabilities(logits.detach().float().cpu())

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
            "temperature": list(self.trained.operating_point.temperature),
            "engine": self.engine,
            "image_size": self.image_size,
            "letterbox": self.letterbox,
            "backbone": spec.backbone,
            "color_module": spec.color_module,
        }


def _thresholds(trained: TrainedModel, threshold: float | None) -> tuple[list[float], str]:
    if threshold is None:
        return list(trained.operating_point.thresholds), "model"
    if not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {threshold}", reason="bad_threshold")
    if trained.task == "multiclass":
        log.warning("--threshold is ignored for a multi-class model (the arg-max class is predicted)")
    return [float(threshold)] * len(trained.operating_point.thresholds), "override"


def embedded_metadata(ts_path: Path) -> dict[str, Any]:
    """The ``metadata.json`` a TorchScript file carries (MONAI's ``ckpt_export`` format), or ``{}``."""
    import zipfile

    try:
        with zipfile.ZipFile(ts_path) as zf:
            names = [n for n in zf.namelist() if n.endswith("/extra/metadata.json")]
            return json.loads(zf.read(names[0])) if names else {}
    except (OSError, zipfile.BadZipFile, ValueError, KeyError):
        return {}


def torchscript_is_current(trained: TrainedModel, ts_path: Path) -> bool:
    """Whether ``model.ts`` was exported from the weights the metadata describes (digests equal)."""
    want = ((trained.metadata.get(SECTION) or {}).get("provenance") or {}).get("weights_sha256")
    got = ((embedded_metadata(ts_path).get(SECTION) or {}).get("provenance") or {}).get("weights_sha256")
    return bool(want) and want == got


def _load_torchscript(trained: TrainedModel) -> nn.Module | None:
    ts_path = trained.ts_path
    if ts_path is None:
        return None
    if not torchscript_is_current(trained, ts_path):
        log.warning("%s was not exported from models/model.pt (weights digests differ): running the eager "
                    "network", ts_path.name)
        return None
    try:
        return torch.jit.load(str(ts_path), map_location=trained.device).eval()
    except Exception as exc:  # a broken export must not end the run: the eager network is the reference
        log.warning("%s could not be loaded (%s): running the eager network", ts_path.name, type(exc).__name__)
        return None


def _load_onnx(trained: TrainedModel) -> Any:
    path = trained.weights.parent / Path(MODEL_ONNX).name
    if not path.is_file():
        raise BundleError(f"--backend onnx: bundle {trained.name} has no {MODEL_ONNX}; export one with "
                          "`mcolor bundle pack --onnx` or `mcolor bundle export-onnx`", reason="missing_model",
                          path=path)
    ort = require("onnx", "--backend onnx", "onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def from_trained(trained: TrainedModel, threshold: float | None = None, backend: str = "auto") -> InferenceModel:
    """An :class:`InferenceModel` over ``trained`` on ``backend`` (see the module doc)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}", reason="bad_option")
    thresholds, source = _thresholds(trained, threshold)
    if backend == "onnx":
        return InferenceModel(trained, _load_onnx(trained), "onnx", thresholds, source)
    if backend in ("auto", "torchscript"):
        scripted = _load_torchscript(trained)
        if scripted is not None:
            return InferenceModel(trained, scripted, "torchscript", thresholds, source)
        if backend == "torchscript":
            raise BundleError(f"bundle {trained.name} has no current models/model.ts", reason="missing_model",
                              path=trained.weights.parent)
    try:
        network = trained.network
    except BundleError:
        raise
    except McolorError as exc:
        reason = "unsafe_checkpoint" if exc.reason == "unsafe_checkpoint" else "bad_model"
        raise BundleError(f"{trained.weights}: cannot load the model: {exc}", reason=reason,
                          path=trained.weights) from exc
    return InferenceModel(trained, network, "eager", thresholds, source)


def bundle_model(bundle_root: str | Path, threshold: float | None = None,
                 device: str | torch.device = "cpu") -> InferenceModel:
    """The bundle's own model for ``inference.json``'s outputs (identity, thresholds); the network runs there
    from the config's ``network``, so none is loaded here until something asks for :attr:`InferenceModel.eager`."""
    trained = load_trained_model(bundle_root, device)
    thresholds, source = _thresholds(trained, threshold)
    return InferenceModel(trained, None, "config", thresholds, source)


def load_inference_model(source: str | Path, device: str | torch.device = "auto", threshold: float | None = None,
                         backend: str = "auto") -> InferenceModel:
    """Load ``source`` (bundle folder, bundle ``.zip``, or a bundle's ``models/model.pt``) once for a whole run.

    Raises:
        BundleError: missing or invalid bundle, missing or refused model, a legacy checkpoint (the CLI's
            exit code 3).
    """
    from mcolor.bundle.loading import open_bundle

    dev = resolve_device(device)
    src = Path(source).expanduser()
    if src.is_file() and src.suffix == ".pt":
        if src.parent.name != "models" and is_legacy_checkpoint(read_weights(src)):
            load_trained_model(src)  # raises the legacy-checkpoint error with the converter command
        src = src.parent.parent if src.parent.name == "models" else src
    bundle = open_bundle(src, trust_bundle=False)
    trained = bundle.load_model(dev)
    model = from_trained(trained, threshold, backend)
    log.info("model %s %s (%s + %s, %s on %s)", model.name, model.version, trained.spec.color_module,
             trained.spec.backbone, model.engine, dev)
    return model


def load_checkpoint_model(path: str | Path, device: str | torch.device = "cpu", threshold: float | None = None,
                          bundle_root: str | Path | None = None) -> InferenceModel:
    """The name ``inference.json`` of mcolor 0.1 called: kept so such a bundle fails with the converter's name
    (its ``model.pt`` is a legacy checkpoint) instead of an import error; a new-format path just loads."""
    del bundle_root
    return from_trained(load_trained_model(path, device), threshold, "eager")
