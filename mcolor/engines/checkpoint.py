"""Checkpoints: what is saved with a model, and resuming from the last epoch.

Writing is MONAI's ``CheckpointSaver`` made atomic (:class:`AtomicCheckpointSaver`): MONAI builds
its ignite ``DiskSaver`` with ``atomic=False``, and a process killed mid-write then leaves a truncated
``.pt`` under the checkpoint's name (seen in the SIGKILL test). Here every file goes to a temporary
sibling, is fsynced and renamed into place. Reading always uses ``torch.load(weights_only=True)``
and turns any failure into a :class:`~mcolor.errors.TrainingError` naming the file.
"""

from __future__ import annotations

import io
import logging
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from monai.handlers import CheckpointSaver

from mcolor.artifact import ModelSpec, read_weights
from mcolor.atomic import atomic_open
from mcolor.errors import TrainingError, WeightsError

__all__ = ["AtomicCheckpointSaver", "ModelSpec", "ResumeFromLast", "find_last_checkpoint", "load_checkpoint", "restore"]

log = logging.getLogger(__name__)

_EPOCH = re.compile(r"checkpoint_epoch=(\d+)\.pt$")


def _atomic_save_func(self: Any, checkpoint: Mapping, path: Path, func: Any) -> None:
    # Serialise in memory first: torch's zip writer turns a full disk into an opaque "unexpected pos"
    # error; writing the bytes ourselves gives an OSError we can name.
    buf = io.BytesIO()
    func(checkpoint, buf, **self.kwargs)
    try:
        with atomic_open(path, "wb") as fh:
            fh.write(buf.getbuffer())
    except OSError as exc:
        raise TrainingError(f"cannot write checkpoint {path}: {exc.strerror or exc}", reason="output_not_writable",
                            path=path) from exc


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` (same arguments) whose files are written atomically."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if ckpt is not None:
                ckpt.save_handler._save_func = types.MethodType(_atomic_save_func, ckpt.save_handler)


def find_last_checkpoint(folder: str | Path) -> Path | None:
    """The ``checkpoint_epoch=N.pt`` with the largest N in ``folder``, or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _EPOCH.search(p.name))]
    return max(found)[1] if found else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (:func:`mcolor.artifact.read_weights`) as a TrainingError naming it."""
    try:
        return read_weights(path)
    except WeightsError as exc:
        raise TrainingError(str(exc), reason=exc.reason, path=path) from exc


def restore(objects: Mapping[str, Any], checkpoint: Mapping[str, Any], path: str | Path = "?",
            strict: bool = True) -> None:
    """Load each object's state from ``checkpoint``; keys missing from the file are an error."""
    missing = [k for k in objects if k not in checkpoint]
    if missing:
        raise TrainingError(f"checkpoint {path} lacks {missing}; it holds {sorted(checkpoint)}",
                            reason="checkpoint_incomplete", path=path)
    try:
        Checkpoint.load_objects(to_load=dict(objects), checkpoint=dict(checkpoint), strict=strict)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise TrainingError(f"checkpoint {path} does not fit this run: {exc}", reason="checkpoint_mismatch",
                            path=path) from exc


class ResumeFromLast:
    """On ``STARTED``, restore every object in ``load_dict`` from the last epoch checkpoint.

    Args:
        folder: where ``checkpoint_epoch=N.pt`` files are written.
        load_dict: the same mapping given to the epoch ``CheckpointSaver`` (trainer, network, optimizer,
            lr scheduler, RNG state, ...).
        resume: off -> nothing happens; on -> resume, or start fresh with a log line if no checkpoint exists.
    """

    def __init__(self, folder: str | Path, load_dict: Mapping[str, Any], resume: bool = False) -> None:
        self.folder = Path(folder)
        self.load_dict = load_dict
        self.resume = bool(resume)

    def attach(self, engine: Engine) -> None:
        if self.resume:
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        path = find_last_checkpoint(self.folder)
        if path is None:
            log.info("resume requested but no checkpoint in %s: starting from epoch 1", self.folder)
            return
        prior_max_epochs = engine.state.max_epochs
        restore(self.load_dict, load_checkpoint(path), path)
        if prior_max_epochs is not None and engine.state.epoch > prior_max_epochs:
            raise TrainingError(f"{path} is at epoch {engine.state.epoch}, beyond max_epochs={prior_max_epochs}",
                                reason="checkpoint_mismatch", path=path)
        if prior_max_epochs is not None:
            engine.state.max_epochs = prior_max_epochs  # a resumed run may be given more epochs
        log.info("resumed from %s at epoch %d (iteration %d)", path, engine.state.epoch, engine.state.iteration)
