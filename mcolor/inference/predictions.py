"""Bundle inference over a list of images: ``predictions.csv`` written atomically at the end.

Used by the bundle's ``inference.json`` (an ``SupervisedEvaluator`` over the images, with
:class:`PredictionWriter` as a handler). Probabilities use the task's activation; the predicted label
uses the operating threshold stored in the checkpoint.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from mcolor.data.datasets import split_records
from mcolor.data.manifests import Manifest
from mcolor.engines.atomic import atomic_write
from mcolor.engines.metrics import probabilities
from mcolor.engines.setup import TrainedModel
from mcolor.errors import ConfigError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def image_items(input_dir: str | Path | None = None, manifest: Manifest | None = None,
                split: str = "test") -> list[dict[str, Any]]:
    """``{"image": path}`` items from a folder (recursive, by suffix, sorted) or a manifest split."""
    if input_dir:
        root = Path(input_dir)
        if not root.is_dir():
            raise ConfigError(f"input_dir is not a folder: {root}", reason="missing_input", path=root)
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}", reason="missing_input")
        return [{"image": str(p)} for p in files]
    if manifest is not None:
        return [{"image": r["image"]} for r in split_records(manifest, split, fallback="val")]
    raise ConfigError("give input_dir or dataset", reason="missing_input")


class PredictionWriter:
    """Collect per-image probabilities and write ``predictions.csv`` when the run completes."""

    def __init__(self, model: TrainedModel, output_dir: str | Path, filename: str = "predictions.csv") -> None:
        self.model = model
        self.path = Path(output_dir) / filename
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def collect(self, engine: Engine) -> None:
        out = engine.state.output
        probs = probabilities(torch.as_tensor(out["pred"]).detach().cpu(), self.model.task).numpy()
        names = self.model.output_names
        thresholds = self.model.operating_point.thresholds
        for path, p in zip(engine.state.batch["image_path"], probs, strict=True):
            row: dict[str, Any] = {"image": path}
            row.update({f"p_{n}": round(float(v), 6) for n, v in zip(names, p, strict=True)})
            if self.model.task == "multiclass":
                row["predicted"] = names[int(p.argmax())]
            elif len(names) == 1:
                row["predicted"] = int(p[0] >= thresholds[0])
            else:
                row["predicted"] = "|".join(n for n, v, t in zip(names, p, thresholds, strict=True) if v >= t)
            self.rows.append(row)

    def write(self, engine: Engine) -> None:
        if not self.rows:
            return
        fields = list(self.rows[0])

        def dump(fh: Any) -> None:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows)

        atomic_write(self.path, dump, newline="")
        log.info("wrote %d predictions to %s", len(self.rows), self.path)
