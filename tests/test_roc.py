"""The one ROC implementation (``mcolor.roc``): AUC against MONAI, the curve against a hand-computed case."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from mcolor.engines.metrics import choose_threshold, classification_metrics
from mcolor.roc import roc_auc, roc_counts, roc_curve


def _monai(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(compute_roc_auc(torch.as_tensor(scores), torch.as_tensor(labels)))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("decimals", [0, 1, 2, None])  # 0: three distinct scores, ties everywhere
def test_auc_matches_monai_with_ties_and_without(seed: int, decimals: int | None) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = rng.random(300) + 0.4 * y
    if decimals is not None:
        s = np.round(s, decimals)
        assert len(np.unique(s)) < len(s) / 2
    assert roc_auc(s, y) == pytest.approx(_monai(s, y), abs=1e-12)
    assert roc_auc(s.astype(np.float32), y.astype(float)) == pytest.approx(_monai(s, y), abs=1e-6)


def test_auc_of_degenerate_inputs() -> None:
    assert roc_auc(np.ones(10), np.r_[np.zeros(5), np.ones(5)]) == 0.5  # all tied: chance
    assert roc_auc([0.1, 0.2], [0, 1]) == 1.0 and roc_auc([0.2, 0.1], [0, 1]) == 0.0
    assert math.isnan(roc_auc(np.arange(4.0), np.zeros(4))) and math.isnan(roc_auc([], []))
    assert math.isnan(roc_auc([0.1, np.nan, 0.3], [0, 1, 1]))  # MONAI would rank the NaN arbitrarily


def test_curve_with_ties_by_hand() -> None:
    # distinct thresholds 0.9, 0.8, 0.3; at 0.8 one positive and two negatives tie: one diagonal step
    s = np.array([0.8, 0.3, 0.9, 0.8, 0.3, 0.8])
    y = np.array([1, 1, 1, 0, 0, 0])
    fpr, tpr, thr = roc_curve(s, y)
    np.testing.assert_allclose(fpr, [0, 0, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.8, 0.3])
    # Mann-Whitney by hand: 0.9 beats 3 negatives, 0.8 ties 2 and beats 1, 0.3 ties 1 -> 5.5 of 9 pairs
    assert roc_auc(s, y) == pytest.approx(5.5 / 9)
    assert np.trapezoid(tpr, fpr) == pytest.approx(5.5 / 9)
    with pytest.raises(ValueError, match="both classes"):
        roc_curve(s, np.ones(6))


def test_figure_draws_the_tie_aware_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    from mcolor.engines.reports import roc_figure

    drawn: list[tuple[np.ndarray, np.ndarray]] = []
    plot = matplotlib.axes.Axes.plot

    def record(self: matplotlib.axes.Axes, *args: object, **kwargs: object) -> object:
        drawn.append((np.asarray(args[0], float), np.asarray(args[1], float)))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", record)
    s = np.array([0.8, 0.3, 0.9, 0.8, 0.3, 0.8])
    y = np.array([1, 1, 1, 0, 0, 0], float)
    assert roc_figure(s[:, None], y[:, None], ["finding"], "binary").startswith(b"\x89PNG")
    fpr, tpr = drawn[0]  # then the chance diagonal
    np.testing.assert_allclose(fpr, [0, 0, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1])


def test_area_under_the_curve_is_the_auc() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + y, 1)
    fpr, tpr, _ = roc_curve(s, y)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and fpr[-1] == tpr[-1] == 1.0
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(s, y), abs=1e-12)


def test_counts_leave_masked_labels_out() -> None:
    thr, tp, fp = roc_counts(np.array([0.2, 0.5, 0.5, 0.9]), np.array([0.0, 1.0, np.nan, 1.0]))
    np.testing.assert_array_equal(thr, [0.9, 0.5, 0.2])
    np.testing.assert_array_equal(tp, [1, 2, 2])
    np.testing.assert_array_equal(fp, [0, 0, 1])


@pytest.mark.parametrize("method", ["youden", "sensitivity"])
def test_threshold_choice_matches_its_definition(method: str) -> None:
    """choose_threshold counts with roc_counts; the answer is the per-threshold definition's, ties included."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        y = rng.integers(0, 2, 60).astype(float)
        s = np.round(rng.random(60) * 0.6 + 0.3 * y, 1)
        pos, neg = y == 1, y == 0
        cand = np.unique(s)[::-1]
        sens = np.array([(s[pos] >= t).mean() for t in cand])
        spec = np.array([(s[neg] < t).mean() for t in cand])
        if method == "youden":
            want = cand[int(np.argmax(sens + spec - 1))]
        else:
            ok = np.nonzero(sens >= 0.8)[0]
            want = cand[ok[0]] if len(ok) else cand[-1]
        assert choose_threshold(s, y, method, target_sensitivity=0.8) == want
    assert choose_threshold(np.arange(3.0), np.ones(3)) == 0.5


def test_evaluation_auc_matches_monai_per_label_and_class() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, (200, 2)).astype(float)
    probs = np.round(rng.random((200, 2)) * 0.7 + 0.3 * labels, 1)
    labels[:20, 1] = np.nan  # masked entries are left out of that label's AUC
    out = classification_metrics(probs, labels, "multilabel", ["a", "b"])
    assert out["auc/a"] == pytest.approx(_monai(probs[:, 0], labels[:, 0]), abs=1e-12)
    assert out["auc/b"] == pytest.approx(_monai(probs[20:, 1], labels[20:, 1]), abs=1e-12)
    idx = rng.integers(0, 3, 200)
    p3 = np.round(rng.dirichlet(np.ones(3), 200) + 0.5 * np.eye(3)[idx], 1)
    out = classification_metrics(p3, idx, "multiclass", ["x", "y", "z"])
    assert out["auc/y"] == pytest.approx(_monai(p3[:, 1], (idx == 1).astype(float)), abs=1e-12)
