"""Embedded default data: deterministic chest-radiograph-like phantoms.

No real X-ray set can ship inside the repository, so the default bundle trains on phantoms generated
on first use into a cache folder (``$MCOLOR_CACHE`` or ``~/.cache/mcolor``): a body outline, two lung
fields, a heart shadow and ribs; class 1 ("opacity") adds soft lung opacities. They exist to make the
pipeline runnable end to end on a fresh machine with no data and no network; they say nothing about
clinical performance. The folder holds 8-bit PNGs plus a manifest in the standard format
(``manifest.csv`` + ``manifest.json``), written atomically (temporary folder, then rename).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

VERSION = 1
SPLITS = (("train", 0.6), ("val", 0.2), ("test", 0.2))


def cache_root() -> Path:
    """Folder for generated data: ``$MCOLOR_CACHE`` if set, else ``~/.cache/mcolor``."""
    return Path(os.environ.get("MCOLOR_CACHE", Path.home() / ".cache" / "mcolor"))


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2


def phantom(rng: np.random.Generator, size: int, opacity: bool) -> np.ndarray:
    """One phantom as uint8 (size, size): bright = attenuating, like a radiograph's display."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size), np.float32)
    jitter = lambda s: rng.normal(0.0, s)  # noqa: E731
    body = _ellipse(yy, xx, 0.55 + jitter(0.02), 0.5 + jitter(0.02), 0.52, 0.42 + jitter(0.02))
    img += 0.55 * (body < 1)
    lungs = np.zeros_like(img)
    for side in (-1, 1):
        e = _ellipse(yy, xx, 0.48 + jitter(0.02), 0.5 + side * (0.17 + jitter(0.01)), 0.27 + jitter(0.02),
                     0.12 + jitter(0.01))
        lungs = np.maximum(lungs, np.clip(1.2 - e, 0, 1))
    img -= 0.35 * lungs
    heart = _ellipse(yy, xx, 0.62 + jitter(0.02), 0.54 + jitter(0.02), 0.13, 0.11 + jitter(0.01))
    img += 0.3 * np.clip(1.0 - heart, 0, 1)
    for k in range(9):  # ribs: arcs across both lungs
        cy = 0.25 + 0.055 * k + jitter(0.004)
        arc = np.abs(yy - cy - 0.25 * (xx - 0.5) ** 2)
        img += 0.12 * (arc < 0.008) * (body < 1)
    if opacity:
        for _ in range(int(rng.integers(1, 4))):
            side = rng.choice((-1, 1))
            cy, cx = 0.45 + jitter(0.08), 0.5 + side * (0.17 + jitter(0.03))
            r = abs(rng.normal(0.06, 0.015)) + 0.02
            img += rng.uniform(0.12, 0.25) * np.exp(-_ellipse(yy, xx, cy, cx, r, r))
    img += rng.normal(0.0, 0.02, img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    return (img * 255).round().astype(np.uint8)


def ensure_synthetic_dataset(root: str | Path | None = None, n: int = 160, size: int = 128, seed: int = 0) -> Path:
    """Return the manifest of the phantom set, generating it first if it is not cached.

    The set is balanced, split 60/20/20 into train/val/test with one phantom per "patient".
    Generation is deterministic in ``(n, size, seed)``; the folder name records them.
    """
    base = Path(root) if root is not None else cache_root() / "synthetic"
    folder = base / f"v{VERSION}-n{n}-s{size}-seed{seed}"
    manifest = folder / "manifest.csv"
    if manifest.is_file() and (folder / "manifest.json").is_file():
        return manifest
    base.mkdir(parents=True, exist_ok=True)
    log.info("generating %d synthetic chest phantoms (%d px) into %s", n, size, folder)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
    try:
        rng = np.random.default_rng(seed)
        rows = []
        counts = {name: 0 for name, _ in SPLITS}
        bounds = np.cumsum([int(round(frac * n)) for _, frac in SPLITS])
        for i in range(n):
            label = i % 2
            split = next(name for (name, _), b in zip(SPLITS, bounds, strict=True) if i < b)
            rel = f"{split}/{i:05d}.png"
            (tmp / split).mkdir(exist_ok=True)
            Image.fromarray(phantom(rng, size, bool(label))).save(tmp / rel)
            rows.append({"image": rel, "split": split, "label": label, "patient_id": f"phantom{i:05d}"})
            counts[split] += 1
        with open(tmp / "manifest.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["image", "split", "label", "patient_id"])
            writer.writeheader()
            writer.writerows(rows)
        sidecar = {
            "task": "binary", "labels": ["clear", "opacity"],
            "source": f"mcolor synthetic chest phantoms v{VERSION} (n={n}, size={size}, seed={seed})",
            "license": "CC0-1.0 (generated)", "counts": counts,
        }
        (tmp / "manifest.json").write_text(json.dumps(sidecar, indent=2))
        try:
            tmp.rename(folder)
        except OSError:  # another process won the race: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
