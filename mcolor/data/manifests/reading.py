"""Manifest schema and reading: :class:`Manifest`, :class:`Issue`, the sidecar and CSV parsers, :func:`load_manifest`.

:func:`load_manifest` is strict: it refuses a manifest whose structure or labels are wrong, with a
:class:`~mcolor.errors.ManifestError` naming the file, the CSV line and a ``reason`` code, because a
silently mis-read label is worse than a crash. The row and label checks here are the ones writing and
validation apply too, so a manifest that can be written always loads.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mcolor.errors import ManifestError

TASKS = ("binary", "multiclass", "multilabel")
SPLITS = ("train", "val", "test")
OPTIONAL_COLUMNS = ("patient_id", "study_id", "view")
RESERVED_COLUMNS = ("image", "split", *OPTIONAL_COLUMNS)


@dataclass(frozen=True)
class Issue:
    """One problem found in a manifest: CSV ``line`` (1 = header, 0 = whole file or sidecar)."""

    line: int
    code: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        return f"line {self.line}: {self.severity} [{self.code}] {self.message}"


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest: raw CSV rows (strings) plus the sidecar metadata.

    Rows stay as strings so a manifest round-trips unchanged through :func:`save_manifest`; labels
    are parsed on demand by :meth:`records`. ``path`` is ``None`` for a manifest derived in memory
    (for example by :func:`mcolor.data.subsample.subsample_manifest`) that has not been saved yet;
    ``root`` is always the folder that relative image paths are resolved against.
    """

    path: Path | None
    root: Path
    task: str
    labels: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    lines: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_outputs(self) -> int:
        """Model outputs: 1 for binary, K for multiclass, L for multilabel."""
        return 1 if self.task == "binary" else len(self.labels)

    @property
    def label_columns(self) -> tuple[str, ...]:
        """CSV columns holding labels: ``label`` or one column per multilabel name."""
        return self.labels if self.task == "multilabel" else ("label",)

    @property
    def source(self) -> str:
        return str(self.meta.get("source", ""))

    @property
    def license(self) -> str:
        return str(self.meta.get("license", ""))

    def __len__(self) -> int:
        return len(self.rows)

    def splits(self) -> list[str]:
        """Splits present, in the canonical order train, val, test."""
        present = {row["split"] for row in self.rows}
        return [s for s in SPLITS if s in present]

    def counts(self) -> dict[str, int]:
        """Number of rows per split (canonical order)."""
        out = {s: 0 for s in self.splits()}
        for row in self.rows:
            out[row["split"]] += 1
        return out

    def image_path(self, row: Mapping[str, str]) -> str:
        """Absolute path of a row's image (relative paths resolve against the manifest's folder)."""
        return os.path.abspath(os.path.join(self.root, row["image"]))

    def records(self, split: str | None = None) -> list[dict[str, Any]]:
        """Training/evaluation records of one split (all rows when ``split`` is None).

        Each record is ``{"image": abs path, "label": ..., "row": CSV line, "patient_id": str|None}``;
        ``label`` is a float32 array of shape ``(num_outputs,)`` with NaN where the loss must ignore
        it (blank, or -1 uncertain) for binary/multilabel, or an ``int`` class for multiclass.
        """
        if split is not None and split not in SPLITS:
            raise ManifestError(f"unknown split {split!r}; expected one of {SPLITS}", reason="unknown_split")
        out = []
        for row, line in zip(self.rows, self.lines, strict=True):
            if split is not None and row["split"] != split:
                continue
            out.append(
                {
                    "image": self.image_path(row),
                    "label": _record_label(self.task, self.labels, row),
                    "row": line,
                    "patient_id": row.get("patient_id") or None,
                }
            )
        return out

    def filter(self, keep: Callable[[dict[str, str]], bool]) -> Manifest:
        """A new in-memory manifest with the rows for which ``keep(row)`` is true (order kept)."""
        pairs = [(r, n) for r, n in zip(self.rows, self.lines, strict=True) if keep(r)]
        return self.with_rows([r for r, _ in pairs], [n for _, n in pairs])

    def with_rows(
        self, rows: Sequence[dict[str, str]], lines: Sequence[int] | None = None, **meta: Any
    ) -> Manifest:
        """A new in-memory manifest (``path=None``) with other rows and updated sidecar fields."""
        new_meta = {**self.meta, **meta}
        new_lines = tuple(lines) if lines is not None else tuple(range(2, len(rows) + 2))
        manifest = replace(self, path=None, rows=tuple(rows), lines=new_lines, meta=new_meta)
        new_meta["counts"] = manifest.counts()
        return manifest


def sidecar_path(csv_path: str | Path) -> Path:
    """The sidecar of ``manifest.csv`` is ``manifest.json`` (same folder, same stem)."""
    return Path(csv_path).with_suffix(".json")


def _parse_number(text: str) -> float | None:
    """Parse one label cell: ``None`` for blank, a float otherwise (``"1.0"`` is accepted)."""
    text = text.strip()
    if text == "":
        return None
    value = float(text)  # ValueError for non-numbers, handled by the caller
    if not math.isfinite(value) or value != int(value):
        raise ValueError(text)
    return value


def _label_problem(task: str, labels: Sequence[str], row: Mapping[str, str]) -> str | None:
    """Why the row's labels are invalid for the task, or None when they are fine."""
    if task == "multilabel":
        allowed, columns = {1.0, 0.0, -1.0, None}, labels
        expect = "1, 0, -1 (uncertain) or blank (unknown)"
    elif task == "binary":
        allowed, columns, expect = {1.0, 0.0, None}, ("label",), "0, 1 or blank (unknown)"
    else:
        allowed = {float(k) for k in range(len(labels))}
        columns, expect = ("label",), f"an integer class index in 0..{len(labels) - 1}"
    for column in columns:
        cell = row.get(column, "")
        try:
            value = _parse_number(cell)
        except ValueError:
            return f"column {column!r} has {cell!r}; expected {expect}"
        if value not in allowed:
            return f"column {column!r} has {cell!r}; expected {expect}"
    return None


def _record_label(task: str, labels: Sequence[str], row: Mapping[str, str]) -> np.ndarray | int:
    if task == "multiclass":
        return int(float(row["label"]))
    columns = labels if task == "multilabel" else ("label",)
    values = []
    for column in columns:
        value = _parse_number(row.get(column, ""))
        values.append(np.nan if value is None or value < 0 else value)
    return np.asarray(values, dtype=np.float32)


def _read_sidecar(csv_path: Path) -> dict[str, Any]:
    """Read and check the sidecar; raises ManifestError (missing_sidecar / bad_sidecar)."""
    side = sidecar_path(csv_path)
    if not side.is_file():
        raise ManifestError(
            f"{side}: sidecar not found. Every manifest needs one beside it with the same stem, e.g. "
            '{"task": "binary", "labels": ["normal", "pneumonia"], "source": "...", "license": "..."}; '
            "write it by hand or rebuild the manifest with `mcolor manifest ...` "
            "(mcolor.data.manifests.write_manifest)",
            reason="missing_sidecar",
            path=side,
        )
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{side}: not readable JSON ({exc})", reason="bad_sidecar", path=side) from exc
    problem = _sidecar_problem(meta)
    if problem:
        raise ManifestError(f"{side}: {problem}", reason="bad_sidecar", path=side)
    return meta


def _sidecar_problem(meta: Any) -> str | None:
    if not isinstance(meta, dict):
        return "the sidecar must be a JSON object"
    task, labels = meta.get("task"), meta.get("labels")
    if task not in TASKS:
        return f"'task' is {task!r}; expected one of {list(TASKS)}"
    if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
        return "'labels' must be a list of non-empty names"
    if len(set(labels)) != len(labels):
        return f"'labels' has duplicate names: {labels}"
    if task == "binary" and len(labels) != 2:
        return f"a binary task needs exactly 2 labels [negative, positive], got {labels}"
    if task == "multiclass" and len(labels) < 2:
        return f"a multiclass task needs at least 2 labels, got {labels}"
    if task == "multilabel":
        if not labels:
            return "a multilabel task needs at least 1 label"
        clash = sorted(set(labels) & set(RESERVED_COLUMNS))
        if clash:
            return f"label names {clash} clash with reserved CSV columns {list(RESERVED_COLUMNS)}"
    return None


def _read_csv(csv_path: Path) -> tuple[list[str], list[dict[str, str]], list[int], list[Issue]]:
    """Rows as dicts of stripped strings with their CSV line numbers, plus row-shape issues."""
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    issues: list[Issue] = []
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise ManifestError(f"{csv_path}: empty file, no header", reason="bad_header", path=csv_path)
            header = [h.strip() for h in header]
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise ManifestError(
                    f"{csv_path}:1: duplicate columns {dupes}", reason="bad_header", path=csv_path
                )
            start = reader.line_num + 1
            for cells in reader:
                line, start = start, reader.line_num + 1
                if not cells or all(not c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    issues.append(
                        Issue(line, "bad_row", f"{len(cells)} fields where the header has {len(header)}")
                    )
                    continue
                rows.append({h: c.strip() for h, c in zip(header, cells, strict=True)})
                lines.append(line)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(
            f"{csv_path}: not a readable CSV ({exc})", reason="bad_csv", path=csv_path
        ) from exc
    return header, rows, lines, issues


def _header_problem(task: str, labels: Sequence[str], header: Sequence[str]) -> str | None:
    missing = [c for c in ("image", "split") if c not in header]
    label_cols = list(labels) if task == "multilabel" else ["label"]
    missing += [c for c in label_cols if c not in header]
    if missing:
        return f"missing columns {missing} for a {task} manifest (header: {list(header)})"
    return None


def _row_issues(
    task: str | None, labels: Sequence[str], rows: Sequence[dict], lines: Sequence[int]
) -> list[Issue]:
    """Per-row content problems: empty image, unknown split, labels out of range for the task."""
    issues = []
    for row, line in zip(rows, lines, strict=True):
        if not row.get("image"):
            issues.append(Issue(line, "empty_image", "the 'image' cell is empty"))
        if row.get("split") not in SPLITS:
            issues.append(Issue(line, "unknown_split", f"split {row.get('split')!r} is not one of {SPLITS}"))
        if task is not None:
            problem = _label_problem(task, labels, row)
            if problem:
                issues.append(Issue(line, "bad_label", problem))
    return issues


def load_manifest(path: str | Path) -> Manifest:
    """Load ``manifest.csv`` and its sidecar, refusing anything that would train on wrong labels.

    Raises :class:`ManifestError` with ``reason`` ``missing_file``, ``missing_sidecar``,
    ``bad_sidecar``, ``bad_csv``, ``bad_header``, ``bad_row``, ``empty_image``, ``unknown_split`` or
    ``bad_label``; the message names the file and the CSV line. It does not open the images: use
    :func:`validate_manifest` for file existence, leakage and duplicates.
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise ManifestError(f"manifest not found: {csv_path}", reason="missing_file", path=csv_path)
    meta = _read_sidecar(csv_path)
    task, labels = meta["task"], tuple(meta["labels"])
    header, rows, lines, issues = _read_csv(csv_path)
    problem = _header_problem(task, labels, header)
    if problem:
        raise ManifestError(f"{csv_path}:1: {problem}", reason="bad_header", path=csv_path)
    issues += _row_issues(task, labels, rows, lines)
    if issues:
        issues.sort(key=lambda i: i.line)
        first = issues[0]
        more = (
            f" (and {len(issues) - 1} more; run `mcolor manifest validate {csv_path}`)"
            if len(issues) > 1
            else ""
        )
        raise ManifestError(
            f"{csv_path}:{first.line}: {first.message}{more}", reason=first.code, path=csv_path
        )
    root = csv_path.parent.absolute()
    return Manifest(csv_path, root, task, labels, tuple(header), tuple(rows), tuple(lines), meta)
