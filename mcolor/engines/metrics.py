"""Clinical classification metrics and the operating threshold.

* ROC AUC per label and their macro mean, computed with :func:`mcolor.roc.roc_auc` (tie-aware, equal to
  MONAI's ``compute_roc_auc``) on the labelled entries of each output (masked/unknown labels are left
  out, per label).
* An operating threshold chosen on the validation set (Youden's J by default, or the highest threshold
  reaching a target sensitivity), kept in :class:`OperatingPoint`, which is saved inside every
  checkpoint so that evaluation and inference use the same threshold.
* Accuracy, sensitivity, specificity and F1 at that threshold (binary and multi-label: per label, then
  macro; multi-class: arg-max accuracy and macro one-vs-rest sensitivity/specificity/F1).

:class:`ClassificationMetrics` is an ignite ``Metric``: its value (used as the engine's key metric for
"best" checkpoints and early stopping) is the macro AUC, and it also writes every other figure into
``engine.state.metrics`` under ``<name>_<figure>``. Predictions are gathered across ranks under DDP.

Checkpoint selection never keeps a model without skill. With a few dozen training images, a
near-constant model that predicts the class prior can have the lowest validation loss of a run (this
kept a COLORU model with validation AUC 0.48 in the 64 px PneumoniaMNIST sweep). So a validation result
whose macro AUC does not beat chance, ``0.5 + 2 * SE`` where SE is the Hanley-McNeil standard error of
an AUC of 0.5 with the same class counts (a one-sided 97.5 % test), scores ``-inf``: it cannot become
"best", and it counts as no improvement for early stopping.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine
from ignite.metrics import Metric

from mcolor.artifact import OperatingPoint, probabilities
from mcolor.roc import roc_auc, roc_counts

TASKS = ("binary", "multiclass", "multilabel")

log = logging.getLogger(__name__)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, task: str) -> list[float]:
    """Temperature scaling (Guo et al., 2017) fitted on validation logits by minimising the log-loss.

    One temperature per output (sigmoid outputs, masked labels left out) or one for the softmax; searched
    on a log grid then refined (golden section), within [0.05, 20]. Ranking (AUC) is unchanged by it.
    """
    def nll(t: float, z: np.ndarray, y: np.ndarray) -> float:
        if task == "multiclass":
            s = z / t
            s = s - s.max(1, keepdims=True)
            logp = s - np.log(np.exp(s).sum(1, keepdims=True))
            return float(-logp[np.arange(len(y)), y.astype(int)].mean())
        s = z / t
        return float(np.mean(np.logaddexp(0, s) - y * s))

    def search(z: np.ndarray, y: np.ndarray) -> float:
        if len(y) < 2:
            return 1.0
        grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 61))
        k = int(np.argmin([nll(t, z, y) for t in grid]))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
        g = (math.sqrt(5) - 1) / 2
        for _ in range(40):
            a, b = hi - g * (hi - lo), lo + g * (hi - lo)
            if nll(a, z, y) < nll(b, z, y):
                hi = b
            else:
                lo = a
        return float((lo + hi) / 2)

    if task == "multiclass":
        return [search(logits.astype(np.float64), labels.reshape(-1))]
    out = []
    for k in range(logits.shape[1]):
        keep = ~np.isnan(labels[:, k])
        out.append(search(logits[keep, k].astype(np.float64), labels[keep, k]))
    return out


def choose_threshold(scores: np.ndarray, labels: np.ndarray, method: str = "youden",
                     target_sensitivity: float = 0.9) -> float:
    """Threshold on ``scores`` for binary ``labels``: Youden's J, or a target sensitivity.

    Candidate thresholds are the observed scores; ties resolve to the higher threshold. With only one
    class present the threshold stays at 0.5 (nothing to choose from).
    """
    n_pos, n_neg = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    if n_pos == 0 or n_neg == 0:
        return 0.5
    cand, tp, fp = roc_counts(scores, labels)
    sens = tp / n_pos
    spec = (n_neg - fp) / n_neg
    if method == "youden":
        return float(cand[int(np.argmax(sens + spec - 1))])
    if method == "sensitivity":
        ok = np.nonzero(sens >= target_sensitivity)[0]
        return float(cand[ok[0]]) if len(ok) else float(cand[-1])
    raise ValueError(f"unknown threshold method {method!r}; valid: youden, sensitivity")


def binary_stats(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, F1 and the confusion counts at ``threshold``."""
    pred = scores >= threshold
    tp = float(np.sum(pred & (labels == 1)))
    tn = float(np.sum(~pred & (labels == 0)))
    fp = float(np.sum(pred & (labels == 0)))
    fn = float(np.sum(~pred & (labels == 1)))
    n = tp + tn + fp + fn
    sens = tp / (tp + fn) if tp + fn else math.nan
    spec = tn / (tn + fp) if tn + fp else math.nan
    prec = tp / (tp + fp) if tp + fp else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else math.nan
    return {"accuracy": (tp + tn) / n if n else math.nan, "sensitivity": sens, "specificity": spec,
            "precision": prec, "f1": f1, "tp": tp, "tn": tn, "fp": fp, "fn": fn}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE of binary probabilities: the bin-weighted mean |observed rate - mean probability|, 10 equal bins."""
    if len(probs) == 0:
        return math.nan
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() * abs(float(labels[sel].mean()) - float(probs[sel].mean()))
    return total / len(probs)


def chance_auc_se(n_pos: int, n_neg: int) -> float:
    """Hanley-McNeil (1982) standard error of an AUC of 0.5 on ``n_pos`` positives and ``n_neg`` negatives."""
    return math.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))


def chance_auc_bound(counts: list[tuple[int, int]]) -> float:
    """Macro AUC a model must exceed to beat chance, for the ``(positives, negatives)`` of each output.

    ``0.5 + 2 * SE`` of the macro mean of the outputs that have both classes (the mean of K AUCs at 0.5
    has SE ``sqrt(sum SE_k^2) / K``); 1.0 when no output has both classes (no evidence of skill).
    """
    ses = [chance_auc_se(p, n) for p, n in counts if p > 0 and n > 0]
    if not ses:
        return 1.0
    return 0.5 + 2.0 * math.sqrt(sum(se * se for se in ses)) / len(ses)


def _class_counts(labels: np.ndarray, task: str, num_outputs: int) -> list[tuple[int, int]]:
    """``(positives, negatives)`` per output (multi-class: one-vs-rest), masked labels left out."""
    if task == "multiclass":
        idx = labels.astype(int).reshape(-1)
        return [(int(np.sum(idx == k)), int(np.sum(idx != k))) for k in range(num_outputs)]
    lab = labels.reshape(len(labels), -1)
    return [(int(np.sum(lab[:, k] == 1)), int(np.sum(lab[:, k] == 0))) for k in range(lab.shape[1])]


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def classification_metrics(probs: np.ndarray, labels: np.ndarray, task: str, label_names: list[str],
                           thresholds: list[float] | None = None) -> dict[str, Any]:
    """All figures for one evaluation. ``labels`` is (N, L) with NaN = masked, or (N,) class indices.

    Returns a flat dict: ``auc``, ``auc/<label>``, ``accuracy``, ``sensitivity``, ``specificity``, ``f1``,
    ``threshold`` (binary) or ``threshold/<label>``, and ``n``.
    """
    out: dict[str, Any] = {"n": int(len(probs))}
    if task == "multiclass":
        idx = labels.astype(int)
        onehot = np.eye(probs.shape[1])[idx]
        per = {}
        for k, name in enumerate(label_names):
            per[name] = roc_auc(probs[:, k], onehot[:, k])
            out[f"auc/{name}"] = per[name]
        out["auc"] = _nanmean(list(per.values()))
        pred = probs.argmax(1)
        out["accuracy"] = float((pred == idx).mean()) if len(idx) else math.nan
        stats = [binary_stats((pred == k).astype(float), onehot[:, k], 0.5) for k in range(probs.shape[1])]
        for key in ("sensitivity", "specificity", "f1"):
            out[key] = _nanmean([s[key] for s in stats])
        out["confusion"] = [[int(np.sum((idx == a) & (pred == b))) for b in range(probs.shape[1])]
                            for a in range(probs.shape[1])]
        out["ece"] = expected_calibration_error(probs.max(1), (pred == idx).astype(float)) if len(idx) else math.nan
        return out
    thresholds = thresholds or [0.5] * probs.shape[1]
    stats = []
    for k, name in enumerate(label_names):
        keep = ~np.isnan(labels[:, k])
        s, y = probs[keep, k], labels[keep, k]
        out[f"auc/{name}"] = roc_auc(s, y)
        out[f"ece/{name}"] = expected_calibration_error(s, y)
        st = binary_stats(s, y, thresholds[k])
        stats.append(st)
        out[f"threshold/{name}"] = thresholds[k]
        if len(label_names) > 1:
            for key in ("accuracy", "sensitivity", "specificity", "f1"):
                out[f"{key}/{name}"] = st[key]
    out["auc"] = _nanmean([out[f"auc/{n}"] for n in label_names])
    out["ece"] = _nanmean([out[f"ece/{n}"] for n in label_names])
    for key in ("accuracy", "sensitivity", "specificity", "f1"):
        out[key] = _nanmean([s[key] for s in stats])
    if len(label_names) == 1:
        out["threshold"] = thresholds[0]
        out["confusion"] = [[int(stats[0]["tn"]), int(stats[0]["fp"])], [int(stats[0]["fn"]), int(stats[0]["tp"])]]
    return out


def _gather_uneven(t: torch.Tensor) -> torch.Tensor:
    """all_gather along dim 0 when ranks hold different numbers of rows (uneven validation shards)."""
    sizes = idist.all_gather(torch.tensor([t.shape[0]]))
    n = int(sizes.max())
    padded = torch.cat([t, t.new_zeros((n - t.shape[0], *t.shape[1:]))]) if t.shape[0] < n else t
    gathered = idist.all_gather(padded.contiguous()).reshape(len(sizes), n, *t.shape[1:])
    return torch.cat([gathered[r, : int(sizes[r])] for r in range(len(sizes))])


class ClassificationMetrics(Metric):
    """ignite metric: a score as its value (macro AUC or -loss), every figure into ``engine.state.metrics``.

    Args:
        task: ``binary``, ``multiclass`` or ``multilabel``.
        label_names: names of the outputs (binary: the positive class name).
        operating_point: thresholds used for the threshold-dependent figures.
        select_threshold: choose new thresholds on this data (validation) before computing the figures.
        loss_fn: optional loss reported as ``<prefix>_loss``.
        score: what the metric's own value (the engine's key metric: best checkpoint, early stopping) is:
            ``auc`` (macro ROC AUC) or ``loss`` (the negated loss, so that higher is better; needs
            ``loss_fn``). Selecting on loss helps where validation AUC saturates.
        require_skill: score ``-inf`` when the macro AUC does not beat chance (see the module doc), so a
            model without skill is never kept as the best checkpoint.
        calibrate: with ``select_threshold``, also fit a temperature on this data (temperature scaling) and
            choose thresholds on the calibrated probabilities; both are stored in ``operating_point``.
    """

    def __init__(self, task: str, label_names: list[str], operating_point: OperatingPoint | None = None,
                 select_threshold: bool = False, loss_fn: Any = None, score: str = "auc",
                 require_skill: bool = True, calibrate: bool = False,
                 output_transform: Any = lambda out: (out["pred"], out["label"]),
                 device: str | torch.device = "cpu") -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
        if score not in ("auc", "loss") or (score == "loss" and loss_fn is None):
            raise ValueError(f"score must be 'auc' or 'loss' (with loss_fn), got {score!r}")
        self.score = score
        self.require_skill = bool(require_skill)
        self.calibrate = bool(calibrate)
        self.task = task
        self.label_names = list(label_names)
        self.operating_point = operating_point or OperatingPoint(1 if task == "multiclass" else len(label_names))
        self.select_threshold = select_threshold
        self.loss_fn = loss_fn
        self.last: dict[str, Any] = {}
        super().__init__(output_transform=output_transform, device=device)

    def reset(self) -> None:
        self._logits: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def update(self, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        logits, labels = output
        self._logits.append(torch.as_tensor(logits).detach().float().cpu())
        self._labels.append(torch.as_tensor(labels).detach().cpu())

    def gathered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All logits and labels seen this epoch, across ranks."""
        logits = torch.cat(self._logits) if self._logits else torch.zeros(0, 1)
        labels = torch.cat(self._labels) if self._labels else torch.zeros(0, 1)
        if idist.get_world_size() > 1:
            logits, labels = _gather_uneven(logits), _gather_uneven(labels)
        return logits, labels

    def compute(self) -> dict[str, Any]:
        logits, labels = self.gathered()
        lab = labels.numpy().astype(np.float64) if self.task != "multiclass" else labels.numpy().reshape(-1)
        if self.task != "multiclass":
            lab = lab.reshape(len(lab), -1)
        op = self.operating_point
        if self.select_threshold:
            op.temperature = (fit_temperature(logits.numpy(), lab, self.task) if self.calibrate and len(logits)
                              else [1.0] * len(op.thresholds))
        probs = probabilities(logits, self.task, op.temperature).numpy()
        if self.task != "multiclass":
            if self.select_threshold:
                op.thresholds = [
                    choose_threshold(probs[~np.isnan(lab[:, k]), k], lab[~np.isnan(lab[:, k]), k],
                                     op.method, op.target_sensitivity)
                    for k in range(lab.shape[1])
                ]
        result = classification_metrics(probs, lab, self.task, self.label_names,
                                        None if self.task == "multiclass" else self.operating_point.thresholds)
        if self.loss_fn is not None and len(logits):
            result["loss"] = float(self.loss_fn(logits, labels))
        result["chance_auc"] = chance_auc_bound(_class_counts(lab, self.task, probs.shape[1]))
        self.last = {"probs": probs, "labels": lab, "metrics": result}
        return result

    def completed(self, engine: Engine, name: str) -> None:
        result = self.compute()
        value = result["auc"] if self.score == "auc" else -result.get("loss", math.inf)
        if self.require_skill and not result["auc"] > result["chance_auc"]:  # NaN AUC fails too
            log.warning("validation AUC %.4f does not beat chance (%.4f): this model cannot be kept as the best",
                        result["auc"], result["chance_auc"])
            value = float("-inf")
        engine.state.metrics[name] = value if value == value else float("-inf")
        prefix = name.rsplit("_", 1)[0] if "_" in name else name
        for key, value in result.items():
            if key != "confusion":
                engine.state.metrics[f"{prefix}_{key}"] = value
