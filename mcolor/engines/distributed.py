"""Multi-process training under ``torchrun``: process group, DDP wrapping, rank-0-only handlers.

``multi_gpu_train.json`` calls these by ``_target_``. The backend is ``nccl`` when CUDA is available and
``gloo`` otherwise, so the same config runs on a GPU node and, for tests, on CPU processes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from torch.nn.parallel import DistributedDataParallel

from mcolor.options import parse_bool

log = logging.getLogger(__name__)

#: Handler class names that only rank 0 runs (logging, checkpoints, reports, progress bars).
RANK_ZERO_ONLY = ("StatsHandler", "TensorBoardStatsHandler", "ProgressBar", "MetricsReport", "MLFlowHandler",
                  "TrainedBundleWriter")


def setup_distributed(backend: str = "auto") -> torch.device:
    """Join the process group started by ``torchrun`` and return this rank's device."""
    use_cuda = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if use_cuda:
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def wrap_ddp(network: torch.nn.Module, device: torch.device) -> DistributedDataParallel:
    """DDP with ``find_unused_parameters`` (frozen groups get no gradient during the colour stage)."""
    return DistributedDataParallel(network, device_ids=[device] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def main_process_only(handlers: Sequence[Any] | None) -> list[Any]:
    """All handlers on rank 0; on other ranks, drop those that log, save or report."""
    handlers = list(handlers or [])
    if not dist.is_initialized() or dist.get_rank() == 0:
        return handlers
    return [h for h in handlers if type(h).__name__ not in RANK_ZERO_ONLY]


def cleanup() -> None:
    """Leave the process group (end of run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


class ShardLog:
    """Write, per rank, the dataset indices its sampler yields each epoch (``shards/rank<r>.json``).

    An audit of data parallelism: the shards of one epoch must be disjoint and together cover the data.
    """

    def __init__(self, output_dir: str | Path, enabled: bool = True) -> None:
        self.folder = Path(output_dir) / "shards"
        self.enabled = parse_bool(enabled, "shard_log")
        self.epochs: dict[int, list[int]] = {}

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        sampler = getattr(engine.data_loader, "sampler", None)
        if sampler is None:
            return
        self.epochs[engine.state.epoch] = [int(i) for i in iter(sampler)]
        rank = dist.get_rank() if dist.is_initialized() else 0
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{rank}.json").write_text(json.dumps(self.epochs))
