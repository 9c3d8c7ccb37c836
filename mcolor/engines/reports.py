"""Evaluation outputs: ``metrics.json``, a ROC curve PNG and a confusion-matrix PNG.

Attached to an evaluator whose key metric is a :class:`~mcolor.engines.metrics.ClassificationMetrics`;
on ``COMPLETED`` it writes the figures of the last evaluation atomically into ``output_dir``. The PNGs need
the optional ``plots`` extra (matplotlib); ``metrics.json`` never does, so a core install still evaluates.
"""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from ignite.engine import Engine, Events

from mcolor.artifact import METADATA, json_text, read_metadata_file
from mcolor.atomic import atomic_write
from mcolor.engines.metrics import ClassificationMetrics
from mcolor.extras import enabled, pyplot
from mcolor.roc import roc_curve

log = logging.getLogger(__name__)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def roc_figure(probs: np.ndarray, labels: np.ndarray, names: list[str], task: str) -> bytes:
    """ROC curves, one per output (multi-class: one-vs-rest), as PNG bytes.

    The points come from :func:`mcolor.roc.roc_curve` (one per distinct threshold), so the curve drawn
    encloses exactly the AUC reported beside it, tied scores included.
    """
    plt = pyplot("the ROC figure")

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for k, name in enumerate(names):
        if task == "multiclass":
            y, s = (labels.astype(int) == k).astype(float), probs[:, k]
        else:
            keep = ~np.isnan(labels[:, k])
            y, s = labels[keep, k], probs[keep, k]
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(s, y)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    data = _png(fig)
    plt.close(fig)
    return data


def confusion_figure(matrix: list[list[int]], names: list[str]) -> bytes:
    """Confusion matrix (rows: truth, columns: prediction) as PNG bytes."""
    plt = pyplot("the confusion-matrix figure")

    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    data = _png(fig)
    plt.close(fig)
    return data


class MetricsReport:
    """Write ``metrics.json``, ``roc.png`` and ``confusion.png`` after an evaluation run.

    ``plots``: ``auto`` (default) writes the PNGs when the ``plots`` extra is installed and skips them with one
    INFO line when not, so the default ``evaluate.json`` runs on a core install; ``true`` requires them (a
    :class:`~mcolor.errors.MissingExtraError` when the evaluator is built, before any image is read); ``false``
    writes ``metrics.json`` only.

    With ``bundle_root`` and ``update_metadata``, the figures also go into the bundle's ``eval_metrics`` (as
    ``<split>_<figure>``), so the metadata a bundle is shared with states what its own evaluation measured.
    """

    def __init__(self, metric: ClassificationMetrics, output_dir: str | Path, class_names: list[str] | None = None,
                 extra: dict[str, Any] | None = None, plots: bool | str = "auto", bundle_root: str | Path | None = None,
                 update_metadata: bool = False) -> None:
        from mcolor.options import parse_bool

        self.metric = metric
        self.output_dir = Path(output_dir)
        self.class_names = class_names
        self.extra = extra or {}
        self.plots = enabled(plots, "plots", "evaluation plots (roc.png, confusion.png)")
        self.bundle_root = Path(bundle_root) if bundle_root is not None else None
        self.update_metadata = parse_bool(update_metadata, "update_metadata") and self.bundle_root is not None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        last = self.metric.last
        if not last:
            return
        metrics = dict(last["metrics"])
        confusion = metrics.pop("confusion", None)
        report = {**self.extra, "task": self.metric.task, "labels": self.metric.label_names, **metrics}
        if confusion is not None:
            report["confusion_matrix"] = confusion
        path = self.output_dir / "metrics.json"
        atomic_write(path, lambda fh: json.dump(_json_safe(report), fh, indent=2))
        if self.plots:
            names = self.metric.label_names
            atomic_write(self.output_dir / "roc.png",
                         lambda fh: fh.write(roc_figure(last["probs"], last["labels"], names, self.metric.task)),
                         mode="wb")
            if confusion is not None:
                cnames = self.class_names or (["negative", names[0]] if len(names) == 1 else names)
                atomic_write(self.output_dir / "confusion.png",
                             lambda fh: fh.write(confusion_figure(confusion, cnames)), mode="wb")
        if self.update_metadata:
            self._update_metadata(metrics)
        log.info("evaluation: %s -> %s", ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                                                   if isinstance(v, float) and "/" not in k), path)

    def _update_metadata(self, metrics: dict[str, Any]) -> None:
        assert self.bundle_root is not None
        meta = read_metadata_file(self.bundle_root)
        split = str(self.extra.get("split", "test"))
        figures = dict(meta.get("eval_metrics") or {})
        figures.update({f"{split}_{k}": float(v) for k, v in metrics.items()
                        if isinstance(v, int | float) and "/" not in k and math.isfinite(float(v))})
        meta["eval_metrics"] = figures
        atomic_write(self.bundle_root / METADATA, lambda fh: fh.write(json_text(meta)), encoding="utf-8")
