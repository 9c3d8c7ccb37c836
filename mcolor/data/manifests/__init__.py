"""Data manifests: one CSV of images + one JSON sidecar, the single way datasets enter mcolor.

The format is specified in ``docs/CONTRACTS.md``. A manifest is deliberately plain (CSV readable by a
spreadsheet, JSON readable by a human) so a user can audit exactly which images and labels a model
saw, and so every dataset (MedMNIST, Kermany folders, CheXpert, NIH) reaches training through the
same code path.

* :func:`load_manifest` is strict: it refuses a manifest whose structure or labels are wrong, with a
  :class:`~mcolor.errors.ManifestError` naming the file, the CSV line and a ``reason`` code, because
  a silently mis-read label is worse than a crash.
* :func:`validate_manifest` is thorough and total: it never raises on bad content, it lists every
  problem (missing images, patient leakage, duplicates, bad labels, unknown splits) with its line.
* :func:`write_manifest` is atomic (temporary file + fsync + ``os.replace``), so an interrupted
  builder never leaves a half-written manifest that would later load.

Layout: :mod:`.reading` (schema: :class:`Manifest`, :class:`Issue`, constants, parsing, :func:`load_manifest`),
:mod:`.writing` (:func:`write_manifest`, :func:`save_manifest`, :func:`image_reference`) and
:mod:`.validation` (:func:`validate_manifest`, cross-split checks). Import from ``mcolor.data.manifests``:
the names below are the public interface, and bundle configs refer to them by this path.
"""

from __future__ import annotations

from mcolor.data.manifests.reading import (
    OPTIONAL_COLUMNS,
    RESERVED_COLUMNS,
    SPLITS,
    TASKS,
    Issue,
    Manifest,
    load_manifest,
    sidecar_path,
)
from mcolor.data.manifests.validation import validate_manifest
from mcolor.data.manifests.writing import image_reference, save_manifest, write_manifest

__all__ = [
    "Issue",
    "Manifest",
    "OPTIONAL_COLUMNS",
    "RESERVED_COLUMNS",
    "SPLITS",
    "TASKS",
    "image_reference",
    "load_manifest",
    "save_manifest",
    "sidecar_path",
    "validate_manifest",
    "write_manifest",
]

