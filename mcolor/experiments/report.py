"""Sweep reports: the Markdown summary table and the learning-curve plot (the ``plots`` extra, when installed)."""

from __future__ import annotations

import io
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mcolor.atomic import atomic_write
from mcolor.experiments.stats import hierarchical_bootstrap, paired_bootstrap
from mcolor.extras import enabled, pyplot

log = logging.getLogger(__name__)

#: (per-image score file, result field) for the selected checkpoint and for the last one (no selection).
SELECTED = ("test_scores.npz", "test_auc")
FINAL = ("test_scores_final.npz", "test_auc_final")


def _scores(out: Path, run_id: str, name: str = SELECTED[0]) -> tuple[np.ndarray, np.ndarray] | None:
    f = out / "runs" / run_id / name
    if not f.is_file():
        return None
    data = np.load(f)
    probs, labels = data["probs"], data["labels"]
    if probs.ndim == 2 and probs.shape[1] == 1:  # binary: one column of each
        return probs[:, 0], labels.reshape(len(labels), -1)[:, 0]
    return probs, labels.reshape(-1)


def aggregate(rows: list[dict[str, Any]], out: Path, n_boot: int = 1000,
              which: tuple[str, str] = SELECTED) -> list[dict[str, Any]]:
    """One entry per arm and fraction: mean test AUC, 95 % CI (seeds x test images), seeds, mean wall time."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["backbone"], r["color_module"], r["schedule"], r.get("transfer", ""), float(r["fraction"]))].append(r)
    arms = []
    for (backbone, cm, sch, tr, frac), rs in sorted(groups.items()):
        scored = [s for s in (_scores(out, r["run_id"], which[0]) for r in rs) if s is not None]
        mean, lo, hi = hierarchical_bootstrap(scored, n_boot=n_boot) if scored else (math.nan,) * 3
        aucs = [r[which[1]] for r in rs if r.get(which[1]) is not None]
        arms.append({"backbone": backbone, "color_module": cm, "schedule": sch, "transfer": tr, "fraction": frac,
                     "n_seeds": len(rs), "mean_auc": mean, "lo": lo, "hi": hi,
                     "sd_over_seeds": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else math.nan,
                     "mean_acc": float(np.mean([r["accuracy"] for r in rs if r.get("accuracy") is not None]))
                     if rs else math.nan,
                     "mean_wall_s": float(np.mean([r["wall_s"] for r in rs]))})
    return arms


def markdown_table(arms: list[dict[str, Any]]) -> str:
    """Rows: arms; columns: training fractions; cells: mean AUC [95 % CI] (n seeds)."""
    fracs = sorted({a["fraction"] for a in arms})
    keys = sorted({(a["backbone"], a["color_module"], a["schedule"], a["transfer"]) for a in arms})
    head = "| backbone | colour module | schedule | transfer | " + " | ".join(f"{f * 100:g} %" for f in fracs) + " |"
    lines = [head, "|" + " --- |" * (4 + len(fracs))]
    index = {(a["backbone"], a["color_module"], a["schedule"], a["transfer"], a["fraction"]): a for a in arms}
    for k in keys:
        cells = []
        for f in fracs:
            a = index.get((*k, f))
            cells.append("" if a is None else f"{a['mean_auc']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}] (n={a['n_seeds']})")
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3] or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def reference_of(arm: tuple[str, str, str, str]) -> tuple[str, str, str, str] | None:
    """The arm a difference is measured against: the same arm learned from scratch for a transferred colour
    module, plain channel replication (same backbone and schedule) for any other colour module."""
    backbone, cm, sch, tr = arm
    if tr:
        return backbone, cm, sch, ""
    if cm != "replicate":
        return backbone, "replicate", sch, ""
    return None


def _cpu(row: dict[str, Any]) -> str:
    return str(row.get("cpu") or "")


def across_cpus(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two runs are known to have run on different CPUs: the same run on another CPU family takes other
    float kernels and ends at other weights, so such a pair's difference carries a machine effect too."""
    return bool(_cpu(a)) and bool(_cpu(b)) and _cpu(a) != _cpu(b)


def differences(rows: list[dict[str, Any]], out: Path, n_boot: int = 1000,
                which: tuple[str, str] = SELECTED, same_cpu: bool = False) -> list[dict[str, Any]]:
    """Paired differences in test AUC against each arm's reference, per fraction, over the seeds both ran.

    Each result counts its pairs that ran on two different CPUs (``n_cross_cpu``, from the ``cpu`` column);
    ``same_cpu=True`` leaves those pairs out instead."""
    by_key: dict[tuple, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        key = (r["backbone"], r["color_module"], r["schedule"], r.get("transfer", "") or "", float(r["fraction"]))
        by_key[key][int(r["seed"])] = r
    result = []
    for key in sorted(by_key):
        ref = reference_of(key[:4])
        if ref is None or (*ref, key[4]) not in by_key:
            continue
        mine, theirs = by_key[key], by_key[(*ref, key[4])]
        pairs, deltas, cross = [], [], 0
        for s in sorted(set(mine) & set(theirs)):
            if same_cpu and across_cpus(mine[s], theirs[s]):
                continue
            a, b = _scores(out, mine[s]["run_id"], which[0]), _scores(out, theirs[s]["run_id"], which[0])
            if a is not None and b is not None:
                pairs.append((a, b))
                deltas.append(mine[s][which[1]] - theirs[s][which[1]])
                cross += across_cpus(mine[s], theirs[s])
        if not pairs:
            continue
        mean, lo, hi = paired_bootstrap(pairs, n_boot=n_boot)
        result.append({"arm": key[:4], "reference": ref, "fraction": key[4], "n_pairs": len(pairs),
                       "wins": sum(d > 0 for d in deltas), "n_cross_cpu": cross, "mean_diff": mean, "lo": lo,
                       "hi": hi})
    return result


def differences_table(diffs: list[dict[str, Any]]) -> str:
    """Rows: arm vs reference; columns: fractions; cells: mean difference [95 % CI] (wins/pairs; and how many of
    those pairs ran on two different CPUs, when any did)."""
    fracs = sorted({d["fraction"] for d in diffs})
    keys = sorted({(d["arm"], d["reference"]) for d in diffs})
    lines = ["| arm | reference | " + " | ".join(f"{f * 100:g} %" for f in fracs) + " |",
             "|" + " --- |" * (2 + len(fracs))]
    index = {(d["arm"], d["reference"], d["fraction"]): d for d in diffs}

    def name(arm: tuple[str, str, str, str]) -> str:
        return " / ".join(x for x in (arm[0], arm[1], arm[3]) if x)

    for arm, ref in keys:
        cells = []
        for f in fracs:
            d = index.get((arm, ref, f))
            cross = f"; {d['n_cross_cpu']} across CPUs" if d is not None and d.get("n_cross_cpu") else ""
            cells.append("" if d is None else
                         f"{d['mean_diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] ({d['wins']}/{d['n_pairs']}{cross})")
        lines.append(f"| {name(arm)} | {name(ref)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def learning_curve_png(arms: list[dict[str, Any]]) -> bytes:
    """Test AUC against training fraction (log axis), one line per colour module, one panel per backbone."""
    plt = pyplot("the sweep's learning curve")

    # One panel per backbone and schedule, one line per colour module (and transfer), on a shared y axis so
    # that panels compare at a glance.
    panels = sorted({(a["backbone"], a["schedule"]) for a in arms})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False, sharey=True)
    for ax, (bb, sch) in zip(axes[0], panels, strict=True):
        for cm, tr in sorted({(a["color_module"], a["transfer"]) for a in arms}):
            pts = sorted((a["fraction"], a["mean_auc"], a["lo"], a["hi"]) for a in arms
                         if (a["backbone"], a["schedule"], a["color_module"], a["transfer"]) == (bb, sch, cm, tr))
            if not pts:
                continue
            x, m, lo, hi = map(np.array, zip(*pts, strict=True))
            ax.errorbar(x * 100, m, yerr=[m - lo, hi - m], marker="o", capsize=3,
                        label=f"{cm} ({tr})" if tr else cm, linestyle="--" if tr else "-")
        ax.set_xscale("log")
        ax.set(xlabel="training fraction (%)", ylabel="test ROC AUC", title=f"{bb} / {sch}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def summarise(rows: list[dict[str, Any]], out: Path, n_boot: int = 1000) -> list[dict[str, Any]]:
    """Write ``summary.md`` and ``learning_curve.png`` for the finished runs.

    The plot needs the ``plots`` extra and is skipped (one INFO line) without it: the sweep's results are the
    table, and a sweep of many hours must not fail at its last step for a figure."""
    arms = aggregate(rows, out, n_boot)
    if not arms:
        return arms
    text = ("Mean test ROC AUC [95 % CI: bootstrap over seeds, then test images] (n = seeds)\n\n"
            + markdown_table(arms))
    diffs = differences(rows, out, n_boot)
    if diffs:
        text += ("\nPaired difference in test ROC AUC against the reference arm (same seeds, so the same training "
                 "subsets and test images) [95 % CI: paired bootstrap over seeds, then test images] "
                 "(seeds won / seed pairs)\n\n" + differences_table(diffs))
        n_cross = sum(d["n_cross_cpu"] for d in diffs)
        if n_cross:  # runs are not bit-identical across CPU families: show the pairs free of that effect too
            text += (f"\n{n_cross} of these seed pairs ran on two different CPUs (the `cpu` column of results.csv); "
                     "the same run on another CPU family ends at other weights, so their differences carry a "
                     "machine effect as well. The same table with those pairs left out:\n\n"
                     + differences_table(differences(rows, out, n_boot, same_cpu=True)))
    final = [r for r in rows if r.get(FINAL[1]) is not None]
    unscored = [r["run_id"] for which, rs in ((SELECTED, rows), (FINAL, final)) for r in rs
                if not (out / "runs" / r["run_id"] / which[0]).is_file()]
    if unscored:  # a damaged or hand-copied run folder: say so rather than quietly shrink the intervals
        log.warning("%d finished runs have no per-image test scores and are left out of the intervals and "
                    "paired differences: %s", len(unscored), ", ".join(sorted(set(unscored))))
        text += ("\n**Left out of the intervals and paired differences** (a finished run without its per-image "
                 f"test scores): {', '.join(sorted(set(unscored)))}.\n")
    if final:
        text += ("\n## Last checkpoint, no selection\n\nThe same runs scored with their last checkpoint instead of "
                 "the one chosen on validation (a check on the selection rule).\n\n"
                 + markdown_table(aggregate(final, out, n_boot, FINAL)))
        fdiffs = differences(final, out, n_boot, FINAL)
        if fdiffs:
            text += "\nPaired difference, last checkpoint\n\n" + differences_table(fdiffs)
    atomic_write(out / "summary.md", lambda fh: fh.write(text))
    if enabled("auto", "plots", "the sweep's learning_curve.png"):
        png = learning_curve_png(arms)
        atomic_write(out / "learning_curve.png", lambda fh: fh.write(png), mode="wb")
    return arms
