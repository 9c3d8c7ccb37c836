"""From a manifest split to a MONAI dataset, with optional caching.

``cache``: ``none`` (decode every epoch), ``memory`` (MONAI ``CacheDataset``: the deterministic prefix of
the transform chain, i.e. reading + letterboxing, is computed once and kept in RAM) or ``disk`` (MONAI
``PersistentDataset`` under ``cache_dir``, reused across runs). Random transforms always run per epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monai.data import CacheDataset, Dataset, PersistentDataset

from mcolor.data.manifests import Manifest, load_manifest
from mcolor.data.synthetic import ensure_synthetic_dataset
from mcolor.errors import ConfigError, ManifestError

log = logging.getLogger(__name__)

CACHE_MODES = ("none", "memory", "disk")
SYNTHETIC = ("", "synthetic", "none", "null")


def manifest_in(folder: str | Path | None) -> str | None:
    """``folder/manifest.csv`` for MONAI's ``dataset_dir`` property, or None (the synthetic default)."""
    return str(Path(folder) / "manifest.csv") if folder else None


def num_outputs(dataset: str | Path | None, default: int) -> int:
    """Outputs the network needs: the manifest's when a dataset is given, else ``default`` (the bundle's model).

    So a bundle config builds the network of its own trained model without touching any data (what
    ``monai.bundle.load`` needs), and training on a new manifest sizes the head from the data.
    """
    if dataset is None or str(dataset).strip().lower() in SYNTHETIC:
        return int(default)
    return resolve_manifest(dataset).num_outputs


def resolve_manifest(dataset: str | Path | None = None) -> Manifest:
    """Load the manifest at ``dataset``; with no dataset, the embedded synthetic phantoms (logged)."""
    if dataset is None or str(dataset).strip().lower() in SYNTHETIC:
        path = ensure_synthetic_dataset()
        log.warning("no dataset given: using the embedded synthetic chest phantoms (%s). They make the "
                    "pipeline runnable anywhere and say nothing about clinical performance; pass "
                    "--dataset path/to/manifest.csv for real data.", path)
        return load_manifest(path)
    path = Path(dataset).expanduser()
    if not path.exists():
        raise ManifestError(f"dataset manifest not found: {path}", reason="missing_file", path=path)
    return load_manifest(path)


def split_records(manifest: Manifest, split: str, fallback: str | None = None) -> list[dict[str, Any]]:
    """``{"image", "label"}`` records of ``split``; ``fallback`` is used (and logged) when it is empty."""
    records = manifest.records(split)
    if not records and fallback:
        log.warning("manifest %s has no %r split: using %r instead", manifest.path, split, fallback)
        split, records = fallback, manifest.records(fallback)
    if not records:
        raise ManifestError(f"manifest {manifest.path} has no images in split {split!r} "
                            f"(splits: {manifest.splits()})", reason="empty_split", path=manifest.path)
    return [{"image": r["image"], "label": r["label"]} for r in records]


def build_dataset(manifest: Manifest, split: str, transform: Callable, cache: str = "none",
                  cache_dir: str | Path | None = None, fallback: str | None = None,
                  num_workers: int = 0) -> Dataset:
    """A MONAI dataset over one manifest split with the requested caching."""
    data = split_records(manifest, split, fallback)
    if cache == "none":
        return Dataset(data, transform)
    if cache == "memory":
        return CacheDataset(data, transform, num_workers=num_workers or None, progress=False)
    if cache == "disk":
        if cache_dir is None:
            raise ConfigError("cache='disk' needs cache_dir", reason="bad_option")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        return PersistentDataset(data, transform, cache_dir=cache_dir)
    raise ConfigError(f"unknown cache mode {cache!r}; valid: {', '.join(CACHE_MODES)}", reason="bad_option")
