"""Writing manifests: :func:`write_manifest`, :func:`save_manifest` and :func:`image_reference`.

Both files are written atomically (:func:`mcolor.atomic.atomic_write`: temporary file, fsync, rename,
folder fsync), so an interrupted builder never leaves a half-written manifest that would later load; rows
that :func:`~mcolor.data.manifests.load_manifest` would reject are refused before anything is written.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcolor.atomic import atomic_write
from mcolor.data.manifests.reading import OPTIONAL_COLUMNS, Manifest, _row_issues, _sidecar_problem, sidecar_path
from mcolor.errors import ManifestError


def image_reference(image: str | Path, out_dir: str | Path) -> str:
    """How a manifest in ``out_dir`` should name ``image``: relative when inside ``out_dir``, else absolute.

    Relative paths keep a dataset folder relocatable; absolute paths keep a manifest stored away from
    its images valid wherever the manifest itself is moved.
    """
    image_abs = os.path.abspath(image)
    out_abs = os.path.abspath(out_dir)
    try:
        if os.path.commonpath([image_abs, out_abs]) == out_abs:
            return Path(os.path.relpath(image_abs, out_abs)).as_posix()
    except ValueError:  # different drives on Windows
        pass
    return image_abs


def _cell(value: Any) -> str:
    """Canonical text of a cell: integers without '.0', None/NaN blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    text = str(value).strip()
    if "\n" in text or "\r" in text:
        raise ManifestError(f"cell value {text!r} contains a line break", reason="bad_row")
    return text


def write_manifest(
    rows: Iterable[Mapping[str, Any]],
    labels: Sequence[str],
    task: str,
    out_csv: str | Path,
    source: str,
    license: str,
    extra: Mapping[str, Any] | None = None,
) -> Manifest:
    """Check and atomically write ``out_csv`` + its sidecar; returns the written manifest.

    ``rows`` are mappings with ``image``, ``split``, the label column(s) and optionally
    ``patient_id``/``study_id``/``view`` or any other column (kept after the standard ones). Label
    values may be ints, floats (NaN or None = blank) or strings. ``extra`` adds sidecar fields (for
    example the builder's options) so the manifest records how it was made. Refuses (ManifestError)
    to write rows that :func:`load_manifest` would reject.
    """
    out_csv = Path(out_csv)
    meta: dict[str, Any] = {"task": task, "labels": list(labels), "source": source, "license": license}
    problem = _sidecar_problem(meta)
    if problem:
        raise ManifestError(f"cannot write {out_csv}: {problem}", reason="bad_sidecar", path=out_csv)
    label_cols = list(labels) if task == "multilabel" else ["label"]
    text_rows = [{k: _cell(v) for k, v in row.items()} for row in rows]
    present = {k for row in text_rows for k in row}
    columns = ["image", "split", *[c for c in OPTIONAL_COLUMNS if c in present], *label_cols]
    for row in text_rows:
        columns += [k for k in row if k not in columns]
    text_rows = [{c: row.get(c, "") for c in columns} for row in text_rows]
    lines = list(range(2, len(text_rows) + 2))
    issues = _row_issues(task, labels, text_rows, lines)
    if issues:
        raise ManifestError(
            f"cannot write {out_csv}: row {issues[0].line - 1}: {issues[0].message}"
            + (f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""),
            reason=issues[0].code,
            path=out_csv,
        )
    root = out_csv.parent.absolute()
    manifest = Manifest(
        out_csv, root, task, tuple(labels), tuple(columns), tuple(text_rows), tuple(lines), meta
    )
    meta.update(dict(extra or {}))
    meta["counts"] = manifest.counts()

    def write_csv(fh: Any) -> None:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([row[c] for c in columns] for row in text_rows)

    atomic_write(out_csv, write_csv, encoding="utf-8", newline="")
    atomic_write(sidecar_path(out_csv), lambda fh: fh.write(json.dumps(meta, indent=2) + "\n"), encoding="utf-8",
                 newline="")
    return manifest


def save_manifest(manifest: Manifest, out_csv: str | Path, **extra: Any) -> Manifest:
    """Write an (in-memory) manifest to ``out_csv``, re-basing relative image paths on the new folder."""
    out_csv = Path(out_csv)
    rows = []
    for row in manifest.rows:
        new = dict(row)
        new["image"] = image_reference(manifest.image_path(row), out_csv.parent)
        rows.append(new)
    keep = {
        k: v for k, v in manifest.meta.items() if k not in ("task", "labels", "source", "license", "counts")
    }
    keep.update(extra)
    return write_manifest(
        rows, manifest.labels, manifest.task, out_csv, manifest.source, manifest.license, keep
    )
