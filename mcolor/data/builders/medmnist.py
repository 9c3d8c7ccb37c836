"""MedMNIST ``.npz`` -> PNG files + manifest (PneumoniaMNIST, ChestMNIST, any 2D MedMNIST file).

Images are written as 8-bit PNGs named ``<source key>/<index in that array>.png`` (for example
``train/000123.png`` is ``train_images[123]``), so every manifest row can be traced back to the npz
even after a test split is carved. Splits come from the file's ``train_``/``val_``/``test_`` keys.

When the file has no test split (our ``pneumoniamnist_dev.npz`` ships without the official one),
``test_fraction`` carves a stratified test split from **train only** (never from val, whose role as
the model-selection set stays as published). The carve is deterministic for a given seed: each image
gets a rank from a hash of (seed, its pixels' SHA-256), see :mod:`mcolor.data.subsample`; grouping by
pixel content keeps identical images on one side of the carve. MedMNIST files hold a few identical
images across their own splits (8 train/val pairs in PneumoniaMNIST): they are counted in the
sidecar (``cross_split_pixel_duplicates``) and listed by ``mcolor manifest validate --hash``.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mcolor.data.manifests import Manifest, write_manifest
from mcolor.data.subsample import carve_groups, label_strata
from mcolor.errors import ConfigError, ManifestError

log = logging.getLogger(__name__)

NIH_FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)  # fmt: skip
"""The 14 ChestX-ray14 findings in NIH's (and ChestMNIST's) column order."""

KNOWN_FILES = {
    "pneumoniamnist": ("PneumoniaMNIST", ("normal", "pneumonia")),
    "chestmnist": ("ChestMNIST", NIH_FINDINGS),
}
MEDMNIST_LICENSE = "CC BY 4.0"
SPLIT_KEYS = ("train", "val", "test")


def _load_npz(npz_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not npz_path.is_file():
        raise ManifestError(f"MedMNIST file not found: {npz_path}", reason="missing_file", path=npz_path)
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            keys = set(data.files)
            splits = {
                s: (data[f"{s}_images"], data[f"{s}_labels"])
                for s in SPLIT_KEYS
                if f"{s}_images" in keys and f"{s}_labels" in keys
            }
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ManifestError(
            f"{npz_path}: not a readable .npz ({exc})", reason="bad_input", path=npz_path
        ) from exc
    if not splits:
        raise ManifestError(
            f"{npz_path}: no '<split>_images'/'<split>_labels' arrays (found {sorted(keys)}); "
            "expected the MedMNIST layout train_images, train_labels, val_images, ...",
            reason="bad_input",
            path=npz_path,
        )
    for split, (images, labels) in splits.items():
        if len(images) != len(labels) or images.ndim not in (3, 4) or labels.ndim not in (1, 2):
            raise ManifestError(
                f"{npz_path}: {split}_images {images.shape} and {split}_labels {labels.shape} do not match "
                "(expected (N, H, W[, C]) and (N[, L]))",
                reason="bad_input",
                path=npz_path,
            )
    return splits


def _task(label_arrays: Sequence[np.ndarray]) -> tuple[str, int]:
    """binary (1 column of 0/1), multilabel (several columns) or multiclass; and the label count."""
    columns = {1 if a.ndim == 1 else a.shape[1] for a in label_arrays}
    if len(columns) != 1:
        raise ManifestError(
            f"label arrays disagree on the number of columns: {sorted(columns)}", reason="bad_input"
        )
    (n_cols,) = columns
    values = np.unique(np.concatenate([a.reshape(-1) for a in label_arrays]))
    if n_cols > 1:
        return "multilabel", n_cols
    if set(values.tolist()) <= {0, 1}:
        return "binary", 2
    if values.min() < 0:
        raise ManifestError(
            f"negative class index {values.min()} in a single-column label", reason="bad_label"
        )
    return "multiclass", int(values.max()) + 1


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    lo, hi = float(image.min()), float(image.max())
    scaled = (image.astype(np.float64) - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros(image.shape)
    return np.round(scaled).astype(np.uint8)


def build_medmnist(
    npz_path: str | Path,
    out_dir: str | Path,
    test_fraction: float = 0.0,
    seed: int = 0,
    labels: Sequence[str] | None = None,
) -> Manifest:
    """Write PNGs and ``out_dir/manifest.csv`` (+ sidecar) from a MedMNIST ``.npz``.

    ``labels`` names the classes/findings when the file name is not a known MedMNIST dataset.
    ``test_fraction`` (> 0) carves a stratified test split from train when the file has none.
    """
    from PIL import Image

    npz_path, out_dir = Path(npz_path), Path(out_dir)
    splits = _load_npz(npz_path)
    task, n_labels = _task([lab for _, lab in splits.values()])
    stem = npz_path.name.lower()
    dataset, known = next(
        ((d, names) for key, (d, names) in KNOWN_FILES.items() if stem.startswith(key)), (None, None)
    )
    if labels is None:
        labels = known if known is not None and len(known) == n_labels else None
    if labels is None:
        labels = (
            ("negative", "positive") if task == "binary" else tuple(f"class_{k}" for k in range(n_labels))
        )
        log.warning(
            "unknown MedMNIST file %s: naming labels %s (pass labels=... to name them)", npz_path.name, labels
        )
    if len(labels) != n_labels:
        raise ConfigError(
            f"{len(labels)} label names given for {n_labels} labels in {npz_path}", reason="bad_labels"
        )
    if "test" in splits and test_fraction > 0:
        raise ConfigError(
            f"{npz_path} already has a test split; do not pass a test fraction", reason="bad_fraction"
        )

    rows, digests = [], []
    for split, (images, label_array) in splits.items():
        folder = out_dir / split
        folder.mkdir(parents=True, exist_ok=True)
        label_array = label_array.reshape(len(label_array), -1)
        for index, (image, label) in enumerate(zip(images, label_array, strict=True)):
            name = f"{split}/{index:06d}.png"
            pixels = _to_uint8(np.squeeze(image))
            Image.fromarray(pixels).save(out_dir / name, compress_level=1)
            digests.append(hashlib.sha256(pixels.tobytes()).hexdigest())
            row = {"image": name, "split": split}
            if task == "multilabel":
                row.update({lab: int(v) for lab, v in zip(labels, label, strict=True)})
            else:
                row["label"] = int(label[0])
            rows.append(row)

    # MedMNIST files contain exact pixel duplicates across splits (8 train/val pairs in PneumoniaMNIST):
    # report them, and carve by pixel content so a carve never creates new duplicates across splits.
    splits_of: dict[str, set[str]] = {}
    for row, digest in zip(rows, digests, strict=True):
        splits_of.setdefault(digest, set()).add(row["split"])
    duplicates = sum(len(v) > 1 for v in splits_of.values())
    if duplicates:
        log.warning("%s: %d images have identical pixels in two splits", npz_path.name, duplicates)
    carved = 0
    if "test" not in splits and test_fraction > 0:
        train = [(r, d) for r, d in zip(rows, digests, strict=True) if r["split"] == "train"]
        columns = list(labels) if task == "multilabel" else ["label"]
        keys = label_strata(task, labels, [[r[c] for c in columns] for r, _ in train])
        test = carve_groups([d for _, d in train], keys, test_fraction, seed, salt="test")
        for row, digest in train:
            if digest in test:
                row["split"] = "test"
                carved += 1
    elif "test" not in splits:
        log.warning(
            "%s has no test split and test_fraction is 0: the manifest has no test rows", npz_path.name
        )

    name = dataset or npz_path.stem
    source = f"MedMNIST v2 {name} (Yang et al., Sci Data 2023, https://medmnist.com), file {npz_path.name}"
    extra = {
        "builder": {
            "name": "medmnist",
            "input": npz_path.name,
            "test_fraction": test_fraction,
            "seed": seed,
            "test_carved_from": "train" if carved else None,
            "test_carved": carved,
            "cross_split_pixel_duplicates": duplicates,
        }
    }
    return write_manifest(rows, labels, task, out_dir / "manifest.csv", source, MEDMNIST_LICENSE, extra)
