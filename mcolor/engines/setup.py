"""Small constructors the bundle configs call by ``_target_`` so that configs stay declarative."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine

from mcolor.data.manifests import Manifest
from mcolor.engines.checkpoint import ModelSpec, load_checkpoint, restore
from mcolor.engines.metrics import OperatingPoint
from mcolor.errors import ConfigError
from mcolor.networks import ColorizedClassifier

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"bad device {device!r}: {exc}", reason="bad_option") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available", reason="bad_option")
    return dev


def resolve_amp(amp: bool | str, device: torch.device) -> bool:
    """``auto`` -> AMP on CUDA, off on CPU. AMP on CPU is refused (it is slower there and untested)."""
    if amp in ("auto", None):
        return device.type == "cuda"
    flag = str(amp).lower() in ("1", "true", "yes", "on")
    if flag and device.type != "cuda":
        log.warning("amp requested on %s: ignored (AMP is for CUDA)", device)
        return False
    return flag


def amp_kwargs(dtype: str = "float16") -> dict[str, Any]:
    """``autocast`` keyword arguments for the trainer: ``float16`` (with GradScaler) or ``bfloat16``."""
    if dtype not in ("float16", "bfloat16"):
        raise ConfigError(f"amp_dtype must be float16 or bfloat16, got {dtype!r}", reason="bad_option")
    return {"dtype": getattr(torch, dtype)}


def output_names(manifest: Manifest) -> list[str]:
    """Names of the network outputs: the positive class (binary), the classes, or the findings."""
    labels = list(manifest.labels)
    return labels[1:2] if manifest.task == "binary" else labels


def prepare_network(network: ColorizedClassifier, device: torch.device, color_init: str | None = None,
                    channels_last: bool = False) -> torch.nn.Module:
    """Move to ``device``, optionally start the colorization module from an exported one."""
    if color_init:
        from mcolor.engines.transfer import load_color_module

        load_color_module(network, color_init)
    network = network.to(device)
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    return network


def metric_score(engine: Engine, name: str = "val_score") -> float:
    """Score for early stopping / best-model selection: a metric from ``engine.state.metrics``."""
    value = engine.state.metrics.get(name, float("nan"))
    return float(value) if value == value else float("-inf")


@dataclass
class TrainedModel:
    """A network rebuilt from a checkpoint's ``spec`` (no config code run), with its thresholds."""

    network: ColorizedClassifier
    spec: dict[str, Any]
    operating_point: OperatingPoint
    path: Path

    @property
    def task(self) -> str:
        return str(self.spec["task"])

    @property
    def output_names(self) -> list[str]:
        return list(self.spec["output_names"])

    @property
    def image_size(self) -> int:
        return int(self.spec["image_size"])

    @property
    def letterbox(self) -> str:
        return str(self.spec.get("letterbox", "pad"))


def load_trained_model(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild the network named in the checkpoint's spec from mcolor's registry and load its weights."""
    ckpt = load_checkpoint(path)
    if "spec" not in ckpt or "model" not in ckpt:
        raise ConfigError(f"{path} is not an mcolor model checkpoint (keys: {sorted(ckpt)})",
                          reason="checkpoint_incomplete", path=path)
    spec = ModelSpec()
    spec.load_state_dict(ckpt["spec"])
    s = spec.spec
    network = ColorizedClassifier(color_module=s["color_module"], backbone=s["backbone"],
                                  num_classes=int(s["num_classes"]), pretrained=False,
                                  imagenet_norm=s.get("imagenet_norm", "auto"))
    op = OperatingPoint(int(s["num_classes"]))
    objects: dict[str, Any] = {"model": network}
    if "operating_point" in ckpt:
        objects["operating_point"] = op
    restore(objects, ckpt, path)
    network.to(resolve_device(device)).eval()
    return TrainedModel(network, s, op, Path(path))


def image_only_batch(batchdata: dict[str, Any], device: torch.device | None = None, non_blocking: bool = False,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """``prepare_batch`` for unlabelled inference: the image tensor and no target."""
    return batchdata["image"].to(device=device, non_blocking=non_blocking, **kwargs), None
