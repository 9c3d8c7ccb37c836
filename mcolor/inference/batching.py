"""MONAI engine pieces for the bundle's ``inference.json``: evaluator, inferer and progress handler.

``mcolor infer`` runs the same dataset (:mod:`mcolor.inference.dataset`), preprocessing and writer in its own
loop (:mod:`mcolor.inference.engine`) without importing MONAI; this module is the bundle's MONAI-native path,
which MONAI Deploy's bundle operator also reads (``inferer``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator
from monai.inferers import SimpleInferer
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mcolor.inference.dataset import InferenceDataset, make_loader, tolerant_collate
from mcolor.options import parse_bool

__all__ = ["BatchInferer", "InferenceDataset", "ProgressHandler", "make_evaluator", "make_loader", "prepare_batch",
           "tolerant_collate"]


def prepare_batch(
    batchdata: dict[str, Any], device: torch.device | None = None, non_blocking: bool = False, **kwargs: Any
) -> tuple[torch.Tensor, None]:
    """``prepare_batch`` for :func:`tolerant_collate` batches: the image tensor, no target."""
    return batchdata["image"].to(device=device, non_blocking=non_blocking, **kwargs), None


class BatchInferer(SimpleInferer):
    """``SimpleInferer`` that answers an all-failed (empty) batch without calling the network."""

    def __init__(self, num_outputs: int) -> None:
        super().__init__()
        self.num_outputs = int(num_outputs)

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        if inputs.numel() == 0:
            return torch.zeros(0, self.num_outputs)
        return super().__call__(inputs, network, *args, **kwargs)


class ProgressHandler:
    """A tqdm bar counting files (decoded or failed), not batches; silent when stderr is not a terminal."""

    def __init__(self, total: int, enabled: bool | str = True, desc: str = "predict") -> None:
        self.total, self.enabled, self.desc = total, parse_bool(enabled, "progress"), desc
        self.bar: Any = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._step)
        engine.add_event_handler(Events.COMPLETED, self._close)

    def _start(self, _: Engine) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="img", disable=not self.enabled or None, leave=False)

    def _step(self, engine: Engine) -> None:
        batch = engine.state.batch
        self.bar.update(len(batch["index"]) + len(batch["failed"]))

    def _close(self, _: Engine) -> None:
        self.bar.close()


def make_evaluator(
    network: torch.nn.Module,
    val_data_loader: DataLoader,
    device: torch.device,
    inferer: BatchInferer,
    val_handlers: Sequence[Any] = (),
    amp: bool = False,
    postprocessing: Callable[[Any], Any] | None = None,
) -> SupervisedEvaluator:
    """The bundle's prediction engine: no grad, eval mode, batches not decollated, ``postprocessing`` on outputs.

    Argument names are ``SupervisedEvaluator``'s, so MONAI's bundle property checks
    (``evaluator#val_handlers`` -> ``@handlers``, ``evaluator#postprocessing`` -> ``@postprocessing``) read the
    config as they would the plain engine.
    """
    return SupervisedEvaluator(
        device=device,
        val_data_loader=val_data_loader,
        network=network,
        inferer=inferer,
        prepare_batch=prepare_batch,
        postprocessing=postprocessing,
        val_handlers=list(val_handlers),
        amp=amp,
        decollate=False,
    )
