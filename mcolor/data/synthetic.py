"""Embedded default data: deterministic chest-radiograph-like phantoms.

No real X-ray set can ship inside the repository, so the default bundle trains on phantoms generated
on first use into a cache folder (``$MCOLOR_CACHE`` or ``~/.cache/mcolor``): a body outline, two lung
fields, a heart shadow and ribs; class 1 ("opacity") adds one or two visible lung opacities. They exist to
make the pipeline runnable end to end on a fresh machine with no data and no network, and to show that it
learns (the default bundle reaches a validation AUC above 0.9 on them in under a minute on 2 CPU cores,
``tests/test_first_run.py``); they say nothing about clinical performance. The folder holds 8-bit PNGs
plus a manifest in the standard format (``manifest.csv`` + ``manifest.json``, by ``write_manifest``), built
in a temporary folder and renamed into place.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from mcolor.data.manifests import write_manifest

log = logging.getLogger(__name__)

VERSION = 2
#: How much the lung fields darken the soft tissue; an opacity fills most of it back in.
LUNG_DARKENING = 0.35
#: Phantoms in the default set, and its splits: validation as large as training, so that a validation AUC
#: is a measurement (about +-0.03 at 0.9) rather than noise.
N_DEFAULT = 288
SPLITS = (("train", 1 / 3), ("val", 1 / 3), ("test", 1 / 3))


def cache_root() -> Path:
    """Folder for generated data: ``$MCOLOR_CACHE`` if set, else ``~/.cache/mcolor``."""
    return Path(os.environ.get("MCOLOR_CACHE", Path.home() / ".cache" / "mcolor"))


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2


def phantom(rng: np.random.Generator, size: int, opacity: bool) -> np.ndarray:
    """One phantom as uint8 (size, size): bright = attenuating, like a radiograph's display.

    Every phantom has the same anatomy with random jitter (body, two lung fields, heart, ribs, noise). Class 1
    adds one or two *lung opacities*: soft-edged discs lying wholly inside a lung field, of radius 6-9 % of
    the image side, that fill in 70-100 % of the lung's darkening (the contrast of a consolidation on a
    radiograph). The label is that visible feature and nothing else: both classes draw the same anatomy.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size), np.float32)
    jitter = lambda s: rng.normal(0.0, s)  # noqa: E731
    body = _ellipse(yy, xx, 0.55 + jitter(0.02), 0.5 + jitter(0.02), 0.52, 0.42 + jitter(0.02))
    img += 0.55 * (body < 1)
    lungs = np.zeros_like(img)
    fields = []
    for side in (-1, 1):
        field = (0.48 + jitter(0.02), 0.5 + side * (0.17 + jitter(0.01)), 0.27 + jitter(0.02), 0.12 + jitter(0.01))
        fields.append(field)
        lungs = np.maximum(lungs, np.clip(1.2 - _ellipse(yy, xx, *field), 0, 1))
    img -= LUNG_DARKENING * lungs
    heart = _ellipse(yy, xx, 0.62 + jitter(0.02), 0.54 + jitter(0.02), 0.13, 0.11 + jitter(0.01))
    img += 0.3 * np.clip(1.0 - heart, 0, 1)
    for k in range(9):  # ribs: arcs across both lungs
        cy = 0.25 + 0.055 * k + jitter(0.004)
        arc = np.abs(yy - cy - 0.25 * (xx - 0.5) ** 2)
        img += 0.12 * (arc < 0.008) * (body < 1)
    if opacity:
        for _ in range(int(rng.integers(1, 3))):
            fy, fx, ry, rx = fields[int(rng.integers(0, 2))]
            r = rng.uniform(0.06, 0.09)
            # a centre whose disc stays inside the field: a random point of the field shrunk by the radius
            angle, reach = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1))
            cy = fy + reach * max(ry - r, 0.0) * np.sin(angle)
            cx = fx + reach * max(rx - r, 0.0) * np.cos(angle)
            dist = np.sqrt(_ellipse(yy, xx, cy, cx, r, r))
            disc = np.clip((1.0 - dist) / 0.3, 0, 1)  # flat core, soft rim (30 % of the radius)
            img += rng.uniform(0.7, 1.0) * LUNG_DARKENING * disc
    img += rng.normal(0.0, 0.02, img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    return (img * 255).round().astype(np.uint8)


def ensure_synthetic_dataset(root: str | Path | None = None, n: int = N_DEFAULT, size: int = 128,
                             seed: int = 0) -> Path:
    """Return the manifest of the phantom set, generating it first if it is not cached.

    The set is balanced in every split, split by :data:`SPLITS` with one phantom per "patient"; the manifest
    is written by :func:`~mcolor.data.manifests.write_manifest`. Generation is deterministic in
    ``(n, size, seed)``; the folder name records them.
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
        bounds = np.cumsum([2 * int(round(frac * n / 2)) for _, frac in SPLITS])  # even: balanced splits
        for i in range(n):
            label = i % 2
            split = next((name for (name, _), b in zip(SPLITS, bounds, strict=True) if i < b), SPLITS[-1][0])
            rel = f"{split}/{i:05d}.png"
            (tmp / split).mkdir(exist_ok=True)
            Image.fromarray(phantom(rng, size, bool(label))).save(tmp / rel)
            rows.append({"image": rel, "split": split, "patient_id": f"phantom{i:05d}", "label": label})
        write_manifest(rows, ["clear", "opacity"], "binary", tmp / "manifest.csv",
                       source=f"mcolor synthetic chest phantoms v{VERSION} (n={n}, size={size}, seed={seed})",
                       license="CC0-1.0 (generated)")
        try:
            tmp.rename(folder)
        except OSError:  # another process won the race: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
