"""Data-scarcity subsets (the paper's 5 % / 10 % / 25 % / 100 % experiments) and seeded group splits.

A subset must answer "what does colorization buy with less data?" without confounds, so it is:

* **train-only**: val and test rows are copied untouched, so every fraction is evaluated on the same
  images as the full run;
* **grouped**: a patient's images are all in or all out (no patient-level shortcut);
* **stratified**: each label stratum is sampled separately, with at least one group per stratum, so
  a tiny fraction still sees every class;
* **nested and deterministic**: each group gets a seeded rank from a hash of ``(seed, group id)``;
  a fraction takes the first ``ceil(fraction * n)`` groups of each stratum's ranking. For a fixed
  seed the 5 % subset is therefore inside the 10 %, inside the 25 %, inside 100 % — the learning
  curve varies one thing only. Ranks depend only on the group's own id, not on row order, NumPy's
  RNG or the platform.

Strata: binary/multiclass rows use their class (``unknown`` when blank). Multilabel rows use the
*rarest* label they are positive for (rarity = positive count among the candidate rows), or
``none`` without positives: exact label combinations are far too many (2^14 for NIH) and leave most
strata with a single patient, while the rarest-positive key still guarantees every finding a
positive example. A group takes the rarest stratum of its rows, by the same rule.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from mcolor.data.manifests import Manifest, load_manifest, save_manifest
from mcolor.data.manifests.reading import _parse_number
from mcolor.errors import ConfigError, ManifestError

log = logging.getLogger(__name__)

__all__ = [
    "carve_groups",
    "default_group_column",
    "group_strata",
    "label_strata",
    "ranked_groups",
    "subsample_manifest",
    "write_subsample",
]


def label_strata(task: str, labels: Sequence[str], values: Sequence[Sequence[float | None]]) -> list[str]:
    """One stratum key per row from its label values (None = blank), as described in the module doc."""
    if task != "multilabel":
        return ["unknown" if v[0] is None else str(int(v[0])) for v in values]
    positives = Counter(j for v in values for j, x in enumerate(v) if x == 1)
    keys = []
    for v in values:
        hits = [j for j, x in enumerate(v) if x == 1]
        keys.append(labels[min(hits, key=lambda j: (positives[j], j))] if hits else "none")
    return keys


def group_strata(groups: Sequence[str], row_keys: Sequence[str]) -> dict[str, str]:
    """Stratum of each group: the rarest key among its rows (ties broken by name, deterministic)."""
    freq = Counter(row_keys)
    out: dict[str, str] = {}
    for group, key in zip(groups, row_keys, strict=True):
        if group not in out or (freq[key], key) < (freq[out[group]], out[group]):
            out[group] = key
    return out


def _rank(group: str, seed: int, salt: str) -> str:
    return hashlib.sha256(f"{salt}\x00{seed}\x00{group}".encode()).hexdigest()


def ranked_groups(group_stratum: Mapping[str, str], seed: int, salt: str) -> dict[str, list[str]]:
    """Per stratum, its groups in a seeded order that depends only on (salt, seed, group id)."""
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for group, stratum in group_stratum.items():
        by_stratum[stratum].append(group)
    return {s: sorted(g, key=lambda x: (_rank(x, seed, salt), x)) for s, g in sorted(by_stratum.items())}


def carve_groups(
    groups: Sequence[str], row_keys: Sequence[str], fraction: float, seed: int, salt: str
) -> set[str]:
    """Groups to move out of a split (test/val carving): ``round(fraction * n)`` of each stratum.

    Used by the builders to carve a fixed held-out split from train; ``salt`` keeps the carve
    independent of later subsampling with the same seed.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"fraction to carve must be in [0, 1), got {fraction}", reason="bad_fraction")
    chosen: set[str] = set()
    for ordered in ranked_groups(group_strata(groups, row_keys), seed, salt).values():
        chosen.update(ordered[: int(round(fraction * len(ordered)))])
    return chosen


def default_group_column(manifest: Manifest) -> str:
    """The column that keeps related images together: ``group_id`` when present, else ``patient_id``."""
    return "group_id" if "group_id" in manifest.columns else "patient_id"


def _row_values(manifest: Manifest, rows: Sequence[Mapping[str, str]]) -> list[list[float | None]]:
    return [[_parse_number(r.get(c, "")) for c in manifest.label_columns] for r in rows]


def subsample_manifest(
    manifest: Manifest,
    fraction: float,
    seed: int,
    stratify: bool = True,
    group: str | None = "auto",
) -> Manifest:
    """A nested, stratified, patient-grouped subset of the train split; val/test rows kept as they are.

    ``fraction`` counts groups (patients), not images, per stratum (``ceil``, so at least one per
    stratum). When the manifest has no ``group`` column (MedMNIST has no patient ids) every image is
    its own group. ``group="auto"`` uses ``group_id`` when present (patients joined with every patient
    sharing a pixel-identical image, see :mod:`mcolor.data.builders.folders`), else ``patient_id``.
    Returns an in-memory manifest; :func:`write_subsample` saves it.
    """
    if not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
        raise ConfigError(f"--fraction must be in (0, 1], got {fraction}", reason="bad_fraction")
    seed = int(seed)
    train = [i for i, r in enumerate(manifest.rows) if r["split"] == "train"]
    if not train:
        raise ManifestError(
            "the manifest has no train rows to subsample", reason="no_train", path=manifest.path
        )
    if group == "auto":
        group = default_group_column(manifest)
    if group is not None and group not in manifest.columns:
        log.warning("column %r not in the manifest: every image is its own group", group)
        group = None
    train_rows = [manifest.rows[i] for i in train]
    groups = [
        (r.get(group) if group else "") or f"line:{manifest.lines[i]}"
        for i, r in zip(train, train_rows, strict=True)
    ]
    if stratify:
        keys = label_strata(manifest.task, manifest.labels, _row_values(manifest, train_rows))
    else:
        keys = ["all"] * len(train_rows)
    ordered = ranked_groups(group_strata(groups, keys), seed, salt="subsample")
    chosen: set[str] = set()
    for stratum_groups in ordered.values():
        chosen.update(stratum_groups[: math.ceil(fraction * len(stratum_groups))])
    keep = {train[j] for j, g in enumerate(groups) if g in chosen}
    indices = [i for i in range(len(manifest.rows)) if manifest.rows[i]["split"] != "train" or i in keep]
    if manifest.path is not None:
        parent = str(manifest.path.absolute())
    else:  # a subset of an in-memory subset keeps pointing at the file it came from
        parent = manifest.meta.get("subsample", {}).get("parent")
    strata = "rarest_positive_label" if manifest.task == "multilabel" else "label"
    info = {
        "fraction": fraction,
        "seed": seed,
        "parent": parent,
        "stratify": strata if stratify else None,
        "group": group,
        "train_groups": len(chosen),
        "parent_train_groups": sum(len(g) for g in ordered.values()),
        "parent_train_rows": len(train),
    }
    return manifest.with_rows(
        [manifest.rows[i] for i in indices], [manifest.lines[i] for i in indices], subsample=info
    )


def write_subsample(
    manifest_path: str | Path,
    out_csv: str | Path,
    fraction: float,
    seed: int,
    stratify: bool = True,
    group: str | None = "auto",
) -> Manifest:
    """Load a manifest, subsample it and write ``out_csv`` + sidecar (with the ``subsample`` record)."""
    parent = load_manifest(manifest_path)
    subset = subsample_manifest(parent, fraction, seed, stratify=stratify, group=group)
    return save_manifest(subset, out_csv)
