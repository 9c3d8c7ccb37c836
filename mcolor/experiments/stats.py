"""Statistics for sweep results: macro ROC AUC, and a two-level bootstrap for confidence intervals.

The interval on an arm's mean test AUC accounts for both sources of variation the issue asks for:
seeds are resampled with replacement (spread over training runs), then test images are resampled within
each chosen run (finite test set). The 2.5 and 97.5 percentiles of the resampled means give the 95 % CI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mcolor.roc import roc_auc


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC (:func:`mcolor.roc.roc_auc`: ties count one half); NaN with one class only.

    ``scores`` of shape ``(N, K)`` with K > 1 are multi-class probabilities and ``labels`` class indices: the
    macro mean of the one-vs-rest AUCs (as the bundle's evaluation reports it), so that a sweep over any
    task can be bootstrapped with the same call.
    """
    scores = np.asarray(scores)
    if scores.ndim == 2 and scores.shape[1] > 1:
        idx = np.asarray(labels).reshape(-1).astype(int)
        per = [roc_auc(scores[:, k], idx == k) for k in range(scores.shape[1])]
        finite = [v for v in per if not math.isnan(v)]
        return float(np.mean(finite)) if finite else math.nan
    return roc_auc(scores, labels)


def hierarchical_bootstrap(runs: Sequence[tuple[np.ndarray, np.ndarray]], n_boot: int = 1000,
                           seed: int = 0) -> tuple[float, float, float]:
    """Mean AUC over runs and its 95 % interval from resampling runs, then test images within runs.

    With a single run the interval reflects the test set only (say so when reporting it).
    """
    if not runs:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    mean = float(np.nanmean([auc(s, y) for s, y in runs]))
    means = np.empty(n_boot)
    for b in range(n_boot):
        picks = rng.integers(0, len(runs), len(runs))
        vals = []
        for i in picks:
            s, y = runs[i]
            idx = rng.integers(0, len(s), len(s))
            vals.append(auc(s[idx], y[idx]))
        means[b] = np.nanmean(vals)
    lo, hi = np.nanpercentile(means, [2.5, 97.5])
    return mean, float(lo), float(hi)


def paired_bootstrap(pairs: Sequence[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
                     n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean AUC difference (arm minus reference) over paired runs and its 95 % interval.

    A pair is two runs that share everything but the arm: the same seed, hence the same training subset
    and the same test images in the same order. Resampling pairs (seeds), then one set of test-image
    indices used for both runs of a pair, keeps that pairing, so the interval is much tighter than the
    difference of two independent intervals when both arms err on the same hard images.
    """
    if not pairs:
        return math.nan, math.nan, math.nan
    for (_, ya), (_, yb) in pairs:
        if len(ya) != len(yb) or not np.array_equal(ya, yb):
            raise ValueError("paired runs must be scored on the same test images in the same order")
    rng = np.random.default_rng(seed)
    mean = float(np.nanmean([auc(sa, ya) - auc(sb, yb) for (sa, ya), (sb, yb) in pairs]))
    diffs = np.empty(n_boot)
    for b in range(n_boot):
        vals = []
        for i in rng.integers(0, len(pairs), len(pairs)):
            (sa, y), (sb, _) = pairs[i]
            idx = rng.integers(0, len(y), len(y))
            vals.append(auc(sa[idx], y[idx]) - auc(sb[idx], y[idx]))
        diffs[b] = np.nanmean(vals)
    lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
    return mean, float(lo), float(hi)
