"""From network outputs to per-file results, shared by ``mcolor infer`` and the bundle's ``inference.json``.

:class:`PredictionWriter` is the evaluator handler: after each batch it stores probabilities and the
predicted label (at the stored operating threshold, or the ``--threshold`` override) into the batch's
:class:`~mcolor.inference.scan.FileRecord` objects, and turns decode failures into ``error`` records.
:func:`run_engine` runs the evaluator (skipped when nothing was selected) and writes
``predictions.csv`` + ``report.json`` atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcolor.inference.models import InferenceModel
from mcolor.inference.outputs import write_tables
from mcolor.inference.scan import FileRecord
from mcolor.options import parse_bool

log = logging.getLogger(__name__)


def predicted_label(probs: Sequence[float], model: InferenceModel) -> str:
    """The decision for one image: positive/negative label (binary), arg-max class, or positive findings.

    Binary models have one output (the positive class); the label names come from the checkpoint's
    ``labels`` (``[negative, positive]``). Multi-label: the findings at or above their thresholds joined
    with ``|`` (``none`` when there are none).
    """
    names, thresholds = model.output_names, model.thresholds
    if model.task == "multiclass":
        return names[int(np.argmax(probs))]
    if model.task == "binary" and len(names) == 1:
        labels = model.labels
        negative = labels[0] if len(labels) == 2 else f"not {names[0]}"
        return names[0] if probs[0] >= thresholds[0] else negative
    hits = [n for n, p, t in zip(names, probs, thresholds, strict=True) if p >= t]
    return "|".join(hits) or "none"


class PredictionWriter:
    """Evaluator handler filling ``records`` from each batch; :meth:`finish` writes the tables."""

    def __init__(
        self,
        model: InferenceModel,
        records: list[FileRecord],
        output_dir: str | Path,
        rules: dict[str, Any] | None = None,
        keep_phi: bool = False,
    ) -> None:
        self.model = model
        self.records = records
        self.output_dir = Path(output_dir)
        self.rules = rules
        self.keep_phi = parse_bool(keep_phi, "keep_phi")

    def attach(self, engine: Any) -> None:
        """ignite handler form (``inference.json``): the evaluator's output ``pred`` holds probabilities."""
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)

    def collect(self, engine: Any) -> None:
        pred = engine.state.output["pred"] if engine.state.batch["index"] else None
        self.collect_batch(engine.state.batch, pred)

    def __call__(self, batch: dict[str, Any], probs: Any) -> None:
        self.collect_batch(batch, probs)

    def collect_batch(self, batch: dict[str, Any], probs: Any) -> None:
        """Store one batch's results: ``probs`` are the calibrated probabilities of ``batch["index"]``."""
        for index, reason, message in batch["failed"]:
            self.records[index].fail(reason, message)
        if not batch["index"]:
            return
        probs = torch.as_tensor(probs).detach().float().cpu().numpy()
        for index, p in zip(batch["index"], probs, strict=True):
            record = self.records[index]
            record.probabilities = [float(v) for v in p]
            record.predicted = predicted_label(record.probabilities, self.model)
            record.status = "predicted"

    def finish(self) -> dict[str, int]:
        """Close any record still pending (cannot happen unless a run was cut short) and write the tables."""
        for record in self.records:
            if record.status == "pending":
                record.fail("not_processed", "the run ended before this file was predicted")
        return write_tables(self.output_dir, self.records, self.model, self.rules, self.keep_phi)


def run_engine(evaluator: Any, writer: PredictionWriter) -> dict[str, int]:
    """Run ``evaluator`` over the selected files (if any) and write the tables; returns status counts."""
    if len(evaluator.data_loader.dataset) > 0:
        evaluator.run()
    counts = writer.finish()
    log.info(
        "%d files: %d predicted, %d skipped, %d errors -> %s",
        sum(counts.values()),
        counts["predicted"],
        counts["skipped"],
        counts["error"],
        writer.output_dir / "predictions.csv",
    )
    return counts
