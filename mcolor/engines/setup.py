"""Small constructors the bundle configs call by ``_target_`` so that configs stay declarative.

``resolve_device``/``resolve_amp``/``amp_kwargs`` live in :mod:`mcolor.options` and ``load_trained_model`` in
:mod:`mcolor.artifact`; they are re-exported here because configs of earlier versions name them here.
"""

from __future__ import annotations

import logging

import torch
from ignite.engine import Engine

from mcolor.artifact import TrainedModel, load_trained_model
from mcolor.data.manifests import Manifest
from mcolor.errors import ConfigError
from mcolor.networks import ColorizedClassifier
from mcolor.options import amp_kwargs, parse_bool, resolve_amp, resolve_device

__all__ = ["TrainedModel", "amp_kwargs", "load_trained_model", "metric_score", "output_names", "prepare_network",
           "resolve_amp", "resolve_device"]

log = logging.getLogger(__name__)


def output_names(manifest: Manifest) -> list[str]:
    """Names of the network outputs: the positive class (binary), the classes, or the findings."""
    labels = list(manifest.labels)
    return labels[1:2] if manifest.task == "binary" else labels


def prepare_network(network: ColorizedClassifier, device: torch.device, color_init: str | None = None,
                    channels_last: bool = False, manifest: Manifest | None = None,
                    distributed: bool | str = False) -> torch.nn.Module:
    """Check the head against the data, optionally start the colour module from an exported one, move to
    ``device``, and wrap in DDP under ``torchrun`` (``multi_gpu_train.json`` sets ``distributed``).

    The head's size comes from the data when a dataset is given, else from the bundle's own model (see
    :func:`mcolor.data.datasets.num_outputs`); a mismatch (a 3-class bundle trained on the binary synthetic
    default, or ``--num_classes`` contradicting the data) is refused before any step.
    """
    if manifest is not None and network.num_classes != manifest.num_outputs:
        raise ConfigError(
            f"the network has {network.num_classes} output(s) but the manifest {manifest.path or '(synthetic)'} "
            f"needs {manifest.num_outputs} ({manifest.task}: {list(manifest.labels)}); give the data with "
            f"--dataset (the embedded synthetic data is binary) or --num_classes {manifest.num_outputs}",
            reason="num_classes_mismatch")
    if color_init:
        from mcolor.color_transfer import load_color_module

        load_color_module(network, color_init)
    network = network.to(device)
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    if parse_bool(distributed, "distributed"):
        from mcolor.engines.distributed import wrap_ddp

        return wrap_ddp(network, device)
    return network


def metric_score(engine: Engine, name: str = "val_score") -> float:
    """Score for early stopping / best-model selection: a metric from ``engine.state.metrics``."""
    value = engine.state.metrics.get(name, float("nan"))
    return float(value) if value == value else float("-inf")
