"""Which PneumoniaMNIST test images did the Kermany source module train on, and does transfer hold without them?

PneumoniaMNIST's train and val images (5,214) are thumbnails of the Kermany training split (5,216), so the test
split carved from them for ``configs/experiments/kermany_to_pneumoniamnist.yaml`` shares children, indeed
images, with the split the Kermany source module was trained on. This script matches every PneumoniaMNIST image
to its Kermany original (centre crop of the 224 px copy at the best of a few widths, 28 px, Pearson correlation;
MedMNIST centre-cropped, the 224 px copy squashed), labels each carved test image by what the source did with its
original (trained on it, selected on it, or never used it), and rescores every arm of the transfer sweep on the
test images the source never used, with the sweep's own bootstrap statistics.

    python docs/results/kermany_pmnist_overlap.py --sweep runs/kermany_to_pmnist --shared ../shared

Prints Markdown (the tables in docs/results.md, section 1.4). Needs the sweep folder (its ``test_scores.npz``
files, or the records kept with ``--export-records``) and ``../shared``.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from mcolor.experiments.report import reference_of
from mcolor.experiments.stats import auc, hierarchical_bootstrap, paired_bootstrap

MATCH_R = 0.95  # a PneumoniaMNIST image and a Kermany image at r >= 0.95 are the same radiograph


def _z(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    return a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-6)


def match(npz: Path, kermany: Path) -> tuple[dict[str, str], dict[str, float]]:
    """PneumoniaMNIST ``split/index.png`` name -> Kermany file name, and the correlation of that match."""
    d = np.load(npz)
    names = [f"train/{i:06d}.png" for i in range(len(d["train_images"]))]
    names += [f"val/{i:06d}.png" for i in range(len(d["val_images"]))]
    pm = _z(np.concatenate([d["train_images"], d["val_images"]]).reshape(len(names), -1).astype(np.float32))
    files = sorted(kermany.glob("train/*/*.jpeg"))
    imgs = [Image.open(f).convert("L") for f in files]
    best = np.full(len(names), -1.0)
    arg = np.zeros(len(names), int)
    for r in (0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0):
        w = round(224 * r)
        o = (224 - w) // 2
        k = np.stack([np.asarray(im.crop((o, 0, o + w, 224)).resize((28, 28), Image.BICUBIC), np.float32).ravel()
                      for im in imgs])
        c = pm @ _z(k).T
        b, a = c.max(1), c.argmax(1)
        better = b > best
        best[better], arg[better] = b[better], a[better]
    return ({n: files[a].name for n, a, b in zip(names, arg, best, strict=True) if b >= MATCH_R},
            dict(zip(names, best.tolist(), strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", type=Path, required=True, help="the kermany_to_pneumoniamnist sweep folder")
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    pairs, corr = match(args.shared / "data/pneumoniamnist/pneumoniamnist_dev.npz",
                        args.shared / "data/kermany224")
    source = {Path(r["image"]).name: r["split"] for r in
              csv.DictReader(open(args.sweep / "sources/kermany_binary_coloru/data/manifest.csv"))}
    test = [r for r in csv.DictReader(open(args.sweep / "data/manifest.csv")) if r["split"] == "test"]
    role = ["unmatched" if r["image"] not in pairs else
            {"train": "trained on", "val": "selected on", "test": "never used"}[source[pairs[r["image"]]]]
            for r in test]
    print(f"Matched {len(pairs)} of {len(corr)} PneumoniaMNIST images (r >= {MATCH_R}) to "
          f"{len(set(pairs.values()))} distinct Kermany files; median r {np.median(list(corr.values())):.3f}.\n")
    counts = Counter(role)
    labels = np.array([int(r["label"]) for r in test])
    print("| PneumoniaMNIST test images (704) | images | pneumonia |\n| --- | --- | --- |")
    for k in ("trained on", "selected on", "never used", "unmatched"):
        sel = np.array([x == k for x in role])
        print(f"| the source module {k} | {counts[k]} | {labels[sel].sum() if sel.any() else 0} |"
              if k != "unmatched" else f"| no Kermany match | {counts[k]} | {labels[sel].sum()} |")
    keep = np.array([x == "never used" for x in role])

    rows = [json.loads(f.read_text()) for f in sorted(args.sweep.glob("runs/*/result.json"))
            if not f.parent.name.startswith("source_")]
    groups: dict[tuple[str, str, float], dict[int, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for r in rows:
        s = np.load(args.sweep / "runs" / r["run_id"] / "test_scores.npz")
        probs, y = s["probs"].reshape(-1), s["labels"].reshape(-1)
        if not np.array_equal(y, labels):
            raise SystemExit(f"{r['run_id']}: test scores are not in the manifest's order")
        groups[(r["color_module"], r["transfer"] or "", float(r["fraction"]))][int(r["seed"])] = (probs[keep], y[keep])
    print(f"\nMean test ROC AUC on the {keep.sum()} test images the source never used "
          "[95 % CI: seeds, then images] (n = seeds)\n")
    fracs = sorted({k[2] for k in groups})
    arms = sorted({k[:2] for k in groups})
    print("| colour module | transfer | " + " | ".join(f"{f * 100:g} %" for f in fracs) + " |")
    print("|" + " --- |" * (2 + len(fracs)))
    for cm, tr in arms:
        cells = []
        for f in fracs:
            runs = list(groups.get((cm, tr, f), {}).values())
            m, lo, hi = hierarchical_bootstrap(runs, n_boot=args.bootstrap)
            cells.append(f"{m:.3f} [{lo:.3f}, {hi:.3f}] (n={len(runs)})" if runs else "")
        print(f"| {cm} | {tr or '-'} | " + " | ".join(cells) + " |")
    print("\nPaired difference on those images [95 % CI: paired bootstrap] (seeds won / pairs)\n")
    print("| arm | reference | " + " | ".join(f"{f * 100:g} %" for f in fracs) + " |")
    print("|" + " --- |" * (2 + len(fracs)))
    for cm, tr in arms:
        full = reference_of(("", cm, "", tr))  # the sweep report's rule: scratch for transfer, else replicate
        if full is None:
            continue
        ref = (full[1], full[3])
        cells = []
        for f in fracs:
            mine, theirs = groups.get((cm, tr, f), {}), groups.get((*ref, f), {})
            common = sorted(set(mine) & set(theirs))
            if not common:
                cells.append("")
                continue
            m, lo, hi = paired_bootstrap([(mine[s], theirs[s]) for s in common], n_boot=args.bootstrap)
            wins = sum(auc(*mine[s]) > auc(*theirs[s]) for s in common)
            cells.append(f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}] ({wins}/{len(common)})")
        print(f"| {' / '.join(x for x in (cm, tr) if x)} | {ref[0]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
