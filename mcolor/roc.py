"""ROC analysis in one place: the tie-aware AUC and ROC curve behind every figure mcolor reports.

Training metrics and the ROC figure (``mcolor.engines``) and the sweep and model-card bootstraps
(``mcolor.experiments``) must agree to the last digit, so there is one implementation. It lives here,
numpy only, rather than in ``mcolor.engines.metrics``: a sweep report or a model card then loads without
torch, ignite or MONAI, and the bootstraps, which call :func:`roc_auc` thousands of times, stay
vectorised (one sort per call, no Python loop over thresholds).

Ties matter: rounded or saturated probabilities share scores between positives and negatives. A tied
positive/negative pair counts one half (Mann-Whitney with average ranks), which is exactly the area under
the curve of :func:`roc_curve`, whose points are the distinct thresholds (a tie moves diagonally), and
equals MONAI's ``compute_roc_auc`` (tested).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["roc_auc", "roc_counts", "roc_curve"]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of binary ``labels`` (true/nonzero = positive) by ``scores``, ties counting one half.

    NaN when only one class is present or any score is NaN (a diverged model has no ranking to judge).
    """
    scores = np.asarray(scores).reshape(-1)
    positive = np.asarray(labels).reshape(-1).astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0 or np.isnan(scores).any():
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based rank of each distinct score, ties averaged
    rank_sum = average_rank[inverse.reshape(-1)[positive]].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, tp, fp)`` at each distinct score, highest first: the counts of ``score >= threshold``.

    Positives are ``labels == 1``, negatives ``labels == 0``; anything else (NaN: masked) is counted in
    neither but its score is still a threshold. Counts (not rates) so that callers can form rates in
    whichever exact arithmetic they need (:func:`mcolor.engines.metrics.choose_threshold`).
    """
    scores = np.asarray(scores).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    values, inverse = np.unique(scores, return_inverse=True)
    inverse = inverse.reshape(-1)
    tp = np.cumsum(np.bincount(inverse[labels == 1], minlength=len(values))[::-1])
    fp = np.cumsum(np.bincount(inverse[labels == 0], minlength=len(values))[::-1])
    return values[::-1], tp, fp


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: (0, 0) at ``+inf``, then one point per distinct score, highest first.

    Tied scores form one point, so a tie between a positive and a negative draws a diagonal step instead of
    a staircase whose shape depends on the sort order. Raises ``ValueError`` with a single class (no curve).
    """
    thresholds, tp, fp = roc_counts(scores, labels)
    n_pos, n_neg = (int(tp[-1]), int(fp[-1])) if len(thresholds) else (0, 0)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"a ROC curve needs both classes; got {n_pos} positives and {n_neg} negatives")
    return (np.concatenate([[0.0], fp / n_neg]), np.concatenate([[0.0], tp / n_pos]),
            np.concatenate([[np.inf], thresholds]))
