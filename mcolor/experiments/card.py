"""``mcolor card``: the figures of a model card for a trained binary bundle, on a held-out manifest split.

What a reader of a model card needs, each with a 95 % interval: ROC AUC, and accuracy, sensitivity and
specificity at the model's *stored* operating point (chosen on validation, never on the test split); the
calibration (expected calibration error and a reliability plot, before and after the stored temperature);
the ROC curve and confusion matrix; sensitivity per subgroup (e.g. bacterial and viral pneumonia from the
manifest's ``subtype`` column); and a few colorized views (what the backbone sees).

Intervals come from a bootstrap over *patients* (``group_id``/``patient_id`` of the manifest), not images:
images of one child are correlated, and resampling them independently would understate the uncertainty.
The evaluation itself is the bundle's own ``evaluate.json``.
"""

from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mcolor.atomic import atomic_write
from mcolor.experiments.stats import auc
from mcolor.extras import pyplot, require


def _confusion_figures(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    pred = probs >= threshold
    pos, neg = labels == 1, labels == 0
    return {
        "accuracy": float(np.mean(pred == pos)) if len(labels) else math.nan,
        "sensitivity": float(np.mean(pred[pos])) if pos.any() else math.nan,
        "specificity": float(np.mean(~pred[neg])) if neg.any() else math.nan,
    }


def figures(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """AUC, accuracy/sensitivity/specificity at ``threshold``, and ECE of binary ``probs``."""
    from mcolor.engines.metrics import expected_calibration_error

    return {"auc": auc(probs, labels), **_confusion_figures(probs, labels, threshold),
            "ece": expected_calibration_error(probs, labels.astype(float))}


def grouped_bootstrap(probs: np.ndarray, labels: np.ndarray, groups: list[str], threshold: float,
                      n_boot: int = 2000, seed: int = 0,
                      masks: dict[str, np.ndarray] | None = None) -> dict[str, tuple[float, float, float]]:
    """``{figure: (estimate, 2.5 %, 97.5 %)}``, resampling groups (patients) with replacement.

    ``masks`` add subgroup sensitivities (``sensitivity/<name>``: the positives inside each mask).
    """
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        by_group[g].append(i)
    members = [np.asarray(v) for v in by_group.values()]

    def compute(idx: np.ndarray) -> dict[str, float]:
        out = figures(probs[idx], labels[idx], threshold)
        for name, mask in (masks or {}).items():
            sel = idx[mask[idx] & (labels[idx] == 1)]
            out[f"sensitivity/{name}"] = float(np.mean(probs[sel] >= threshold)) if len(sel) else math.nan
        return out

    point = compute(np.arange(len(labels)))
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(n_boot):
        pick = rng.integers(0, len(members), len(members))
        idx = np.concatenate([members[k] for k in pick])
        for key, value in compute(idx).items():
            samples[key].append(value)
    result = {}
    for key, value in point.items():
        lo, hi = np.nanpercentile(samples[key], [2.5, 97.5])
        result[key] = (value, float(lo), float(hi))
    return result


def reliability_png(probs_raw: np.ndarray, probs_cal: np.ndarray, labels: np.ndarray, bins: int = 10) -> bytes:
    """Reliability diagram: observed positive rate against mean predicted probability, per bin."""
    plt = pyplot("the reliability diagram")

    from mcolor.engines.metrics import expected_calibration_error

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    edges = np.linspace(0, 1, bins + 1)
    for probs, name in ((probs_raw, "uncalibrated (T = 1)"), (probs_cal, "temperature-scaled (stored T)")):
        idx = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
        xs, ys = [], []
        for b in range(bins):
            sel = idx == b
            if sel.sum() >= 5:
                xs.append(float(probs[sel].mean()))
                ys.append(float(labels[sel].mean()))
        ece = expected_calibration_error(probs, labels.astype(float))
        ax.plot(xs, ys, marker="o", label=f"{name}, ECE {ece:.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate of pneumonia", xlim=(0, 1), ylim=(0, 1),
           title="reliability (bins with >= 5 images)")
    ax.legend(fontsize=7, loc="upper left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def colorized_png(model: Any, images: list[np.ndarray], titles: list[str]) -> bytes:
    """Input radiographs above what the backbone sees (the colorization output, per-image min-max to RGB)."""
    plt = pyplot("the colorized examples figure")
    import torch

    from mcolor.transforms.functional import network_input

    net = model.network
    x = torch.stack([network_input(img, model.image_size, model.letterbox) for img in images])
    with torch.no_grad():
        colour = net.colorize(x).float()
    fig, axes = plt.subplots(2, len(images), figsize=(2.6 * len(images), 5.4), squeeze=False)
    for k in range(len(images)):
        c = colour[k]
        c = (c - c.amin(dim=(1, 2), keepdim=True)) / (c.amax(dim=(1, 2), keepdim=True)
                                                      - c.amin(dim=(1, 2), keepdim=True)).clamp_min(1e-8)
        axes[0][k].imshow(x[k, 0].numpy(), cmap="gray")
        axes[0][k].set_title(titles[k], fontsize=8)
        axes[1][k].imshow(c.permute(1, 2, 0).numpy())
        for ax in (axes[0][k], axes[1][k]):
            ax.axis("off")
    axes[0][0].set_ylabel("input")
    fig.suptitle("input (top) and colorization output fed to the backbone (bottom, each channel min-max scaled)",
                 fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def model_card(bundle_root: str | Path, manifest_path: str | Path, out_dir: str | Path, split: str = "test",
               subgroup_column: str = "subtype", n_boot: int = 2000) -> dict[str, Any]:
    """Evaluate the trained binary bundle on ``split`` and write ``card.json`` + figures into ``out_dir``."""
    from mcolor.artifact import load_trained_model
    from mcolor.data.manifests import load_manifest
    from mcolor.engines.reports import confusion_figure, roc_figure
    from mcolor.errors import ConfigError
    from mcolor.experiments.sweep import evaluate_checkpoint
    from mcolor.io import read_radiograph

    require("plots", "mcolor card")  # its figures are the point: known before the evaluation, not after
    root, out = Path(bundle_root), Path(out_dir)
    model = load_trained_model(root)
    if model.task != "binary":
        raise ConfigError("mcolor card handles binary models", reason="bad_option")
    metrics = evaluate_checkpoint(root, Path(manifest_path), "card_scores.npz")
    scores = np.load(root / "card_scores.npz")
    probs, labels = scores["probs"][:, 0], scores["labels"].reshape(-1)
    manifest = load_manifest(manifest_path)
    rows = [r for r in manifest.rows if r["split"] == split]
    if len(rows) != len(labels):
        raise ConfigError(f"{split} has {len(rows)} rows but {len(labels)} scores", reason="bad_option")
    groups = [r.get("group_id") or r.get("patient_id") or f"row{i}" for i, r in enumerate(rows)]
    subgroups = {}
    if subgroup_column in manifest.columns:
        for value in sorted({r[subgroup_column] for r in rows if r[subgroup_column]}):
            subgroups[value] = np.array([r[subgroup_column] == value for r in rows])
    # a sensitivity needs positives: a subgroup without any (the normal children) gets none
    masks = {k: m for k, m in subgroups.items() if np.any(labels[m] == 1)}
    threshold = float(model.operating_point.thresholds[0])
    table = grouped_bootstrap(probs, labels, groups, threshold, n_boot, masks=masks)
    temperature = float(model.operating_point.temperature[0])
    raw = probs
    if temperature != 1.0:  # undo the stored temperature: logit(p) * T is the network's own logit
        import torch

        logit = torch.logit(torch.as_tensor(probs, dtype=torch.float64), eps=1e-12) * temperature
        raw = torch.sigmoid(logit).numpy()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "reliability.png", lambda fh: fh.write(reliability_png(raw, probs, labels)), mode="wb")
    names = list(model.output_names)
    atomic_write(out / "roc.png", lambda fh: fh.write(roc_figure(probs[:, None], labels[:, None].astype(float),
                                                                 names, "binary")), mode="wb")
    pred = probs >= threshold
    confusion = [[int(np.sum(~pred & (labels == 0))), int(np.sum(pred & (labels == 0)))],
                 [int(np.sum(~pred & (labels == 1))), int(np.sum(pred & (labels == 1)))]]
    atomic_write(out / "confusion.png",
                 lambda fh: fh.write(confusion_figure(confusion, [model.labels[0], names[0]])), mode="wb")
    picks = _examples(rows, labels, subgroups)
    images = [read_radiograph(manifest.image_path(rows[i]))[0] for i in picks]
    titles = [f"{rows[i].get(subgroup_column) or labels[i]}: p={probs[i]:.2f}" for i in picks]
    atomic_write(out / "colorized.png", lambda fh: fh.write(colorized_png(model, images, titles)), mode="wb")
    card = {
        "bundle": str(root), "split": split, "n_images": int(len(labels)), "n_patients": len(set(groups)),
        "positives": int(labels.sum()), "threshold": threshold, "temperature": temperature,
        "figures": {k: {"estimate": v[0], "ci95": [v[1], v[2]]} for k, v in table.items()},
        "ece_uncalibrated": figures(raw, labels, threshold)["ece"],
        "confusion": confusion, "evaluate_json_metrics": metrics, "bootstrap": f"{n_boot} resamples of patients",
        "spec": model.spec.to_dict(), "provenance": (model.metadata.get("mcolor_model") or {}).get("provenance"),
    }
    atomic_write(out / "card.json", lambda fh: json.dump(card, fh, indent=2))
    return card


def _examples(rows: list[dict[str, str]], labels: np.ndarray, masks: dict[str, np.ndarray], k: int = 2) -> list[int]:
    """A few test images per subgroup (or per class), the first ones in the manifest's order."""
    picks: list[int] = []
    if masks:
        for mask in masks.values():
            picks += [int(i) for i in np.nonzero(mask)[0][:k]]
    else:
        for c in (0, 1):
            picks += [int(i) for i in np.nonzero(labels == c)[0][:k]]
    return picks


def card_markdown(card: dict[str, Any]) -> str:
    """The figures of ``card`` as a Markdown table (estimate [95 % CI])."""
    lines = ["| figure | estimate [95 % CI] |", "| --- | --- |"]
    for key, value in card["figures"].items():
        lo, hi = value["ci95"]
        lines.append(f"| {key} | {value['estimate']:.3f} [{lo:.3f}, {hi:.3f}] |")
    return "\n".join(lines) + "\n"
