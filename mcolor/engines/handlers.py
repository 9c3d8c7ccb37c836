"""Event handlers for MONAI/ignite engines: transfer schedule, NaN guard, RNG state, LR logging, and the
factories of the handlers that need an optional extra (TensorBoard, MLflow).

Each handler has ``attach(engine)`` (MONAI convention, so bundle configs list them under
``train_handlers``) and, where it carries state across a resume, ``state_dict``/``load_state_dict`` so it
can be put into the checkpoint's ``save_dict``.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.transforms import Randomizable

from mcolor.errors import ConfigError, TrainingError
from mcolor.extras import enabled as extra_enabled
from mcolor.extras import require
from mcolor.networks.classifier import unwrap

log = logging.getLogger(__name__)

SCHEDULES = ("two_stage", "all", "head_only")


def stage_for_epoch(schedule: str, epoch: int, color_epochs: int) -> str:
    """Stage name at 1-based ``epoch``: ``color`` (backbone frozen), ``all`` or ``head_only``."""
    if schedule == "two_stage":
        return "color" if epoch <= color_epochs else "all"
    if schedule == "all":
        return "all"
    if schedule == "head_only":
        return "head_only"
    raise ConfigError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}", reason="bad_option")


class TransferSchedule:
    """Freeze/unfreeze parameter groups at each epoch start according to the transfer schedule.

    * ``two_stage``: epochs 1..``color_epochs`` train the colorization module and the head with the
      backbone frozen (stage ``color``); later epochs train everything (stage ``all``).
    * ``all``: full fine-tuning from the start. ``head_only``: backbone frozen throughout; the head and
      the colorization module (if it has parameters) train.

    The stage is a pure function of the epoch, so a resumed run lands in the right stage by itself.
    ``freeze_color`` keeps the colorization module frozen in every stage (transferred colour modules).
    """

    def __init__(self, network: torch.nn.Module, schedule: str = "two_stage", color_epochs: int = 1,
                 freeze_color: bool = False) -> None:
        stage_for_epoch(schedule, 1, color_epochs)  # validates the name
        self.network = network
        self.schedule = schedule
        self.color_epochs = int(color_epochs)
        self.freeze_color = bool(freeze_color)
        self.stage = ""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def apply(self, epoch: int) -> str:
        stage = stage_for_epoch(self.schedule, epoch, self.color_epochs)
        net = unwrap(self.network)
        train_backbone = stage == "all"
        net.set_trainable(color=not self.freeze_color, backbone=train_backbone, head=True)
        if stage != self.stage:
            log.info("epoch %d: transfer stage %r (trainable: %s)", epoch, stage,
                     ", ".join(g for g in ("color", "backbone", "head") if g not in net.frozen_groups()))
        self.stage = stage
        return stage

    def __call__(self, engine: Engine) -> None:
        self.apply(engine.state.epoch)


class NonFiniteLossGuard:
    """Stop training with :class:`TrainingError` the moment the loss is NaN or infinite.

    ignite's ``TerminateOnNan`` ends the run quietly; here the run fails loudly, naming the epoch and the
    iteration, before any handler can save NaN weights as "best" or "final".
    """

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        value = loss_value(engine.state.output)
        if not math.isfinite(value):
            raise TrainingError(
                f"non-finite loss ({value}) at epoch {engine.state.epoch}, iteration {engine.state.iteration}; "
                "lower the learning rate, check the inputs, or disable AMP",
                reason="non_finite_loss",
            )


class LearningRateLogger:
    """Log each parameter group's learning rate at the end of every epoch (and into ``state.metrics``)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.optimizer.param_groups)}
        for name, lr in lrs.items():
            engine.state.metrics[f"lr_{name}"] = lr
        log.info("epoch %d learning rates: %s", engine.state.epoch,
                 ", ".join(f"{k}={v:.3g}" for k, v in lrs.items()))


def _random_transforms(transform: Any) -> list[Randomizable]:
    """Every Randomizable reachable from ``transform``, nested ones included, in a stable order.

    Dictionary transforms hold array transforms (``RandAffined.rand_affine`` -> ``RandAffineGrid``) with
    generators of their own, so attributes are walked too, not only ``Compose.transforms``.
    """
    found: list[Randomizable] = []
    seen: set[int] = set()
    stack = [transform]
    while stack:
        t = stack.pop(0)
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        if isinstance(t, Randomizable):
            found.append(t)
        children = list(getattr(t, "transforms", ()) or ())
        if hasattr(t, "__dict__"):
            children += [v for _, v in sorted(vars(t).items()) if callable(v) and hasattr(v, "__dict__")
                         and type(v).__module__.startswith("monai.transforms")]
        stack.extend(children)
    return found


class RNGState:
    """Random-number state saved with the "last" checkpoint so that a resumed run continues exactly.

    Covers torch's CPU generator, numpy's and Python's global generators, and the private generators of
    MONAI random transforms in ``dataset.transform`` (which persist between epochs when the loader uses
    no worker processes). Stored as tensors and plain lists so ``torch.load(weights_only=True)`` reads it.
    """

    def __init__(self, dataset: Any = None) -> None:
        self.dataset = dataset

    def _transforms(self) -> list[Randomizable]:
        return _random_transforms(getattr(self.dataset, "transform", None)) if self.dataset is not None else []

    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        py_state = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_rest": [int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [int(py_state[0]), list(py_state[1])],
            "transforms": [torch.from_numpy(t.R.get_state()[1].astype(np.int64)) for t in self._transforms()],
            "transforms_pos": [int(t.R.get_state()[2]) for t in self._transforms()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        pos, has_gauss, cached = state["numpy_rest"]
        np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), int(pos), int(has_gauss),
                             float(cached)))
        version, internal = state["python"]
        random.setstate((version, tuple(internal), None))
        for t, keys, p in zip(self._transforms(), state["transforms"], state["transforms_pos"], strict=False):
            t.R.set_state(("MT19937", keys.numpy().astype(np.uint32), int(p), 0, 0.0))


def progress_bar(enabled: bool | str = True) -> Any:
    """ignite's ``ProgressBar`` (one bar per epoch, not kept), or a disabled one: the configs' one progress option."""
    from ignite.handlers import ProgressBar

    from mcolor.options import parse_bool

    return ProgressBar(persist=False, disable=not parse_bool(enabled, "progress"))


def loss_value(output: Any) -> float:
    """``output_transform`` for Stats/TensorBoard handlers: the batch loss as a Python float."""
    if isinstance(output, list) and output and isinstance(output[0], Mapping):  # decollate=true
        output = output[0]
    loss = output.get("loss") if isinstance(output, Mapping) else output
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


class Skipped:
    """A handler that attaches nothing: what an ``auto`` optional handler becomes when its extra is missing
    (engines call ``attach`` on every item of their handler lists, so ``None`` would not do)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def attach(self, engine: Engine) -> None:
        return None

    def __repr__(self) -> str:
        return f"Skipped({self.what!r})"


def tensorboard_handler(log_dir: str, enabled: bool | str = "auto", **kwargs: Any) -> Any:
    """MONAI's ``TensorBoardStatsHandler`` writing to ``log_dir`` (``kwargs`` go to it), or :class:`Skipped`.

    ``enabled``: ``auto`` (train.json's default) logs when the ``tensorboard`` extra is installed and skips
    with one INFO line when not, so the default training runs on a core install; ``true`` requires it
    (``MissingExtraError`` naming ``mcolor[tensorboard]`` while the config is parsed, before training starts);
    ``false`` never logs.
    """
    if not extra_enabled(enabled, "tensorboard", "TensorBoard logging"):
        return Skipped("TensorBoardStatsHandler")
    from monai.handlers import TensorBoardStatsHandler

    return TensorBoardStatsHandler(log_dir=log_dir, **kwargs)


def mlflow_handler(**kwargs: Any) -> Any:
    """MONAI's ``MLFlowHandler(**kwargs)`` once the ``tracking`` extra imports (``configs/mlflow_tracking.json``).

    Tracking is asked for explicitly (``--tracking``), so a missing ``mlflow`` is an error naming
    ``mcolor[tracking]``, raised when the settings are parsed, not MONAI's ``OptionalImportError`` traceback.
    """
    require("tracking", "MLflow tracking (--tracking)")
    from monai.handlers import MLFlowHandler

    return MLFlowHandler(**kwargs)
