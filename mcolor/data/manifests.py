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
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mcolor.errors import ManifestError

TASKS = ("binary", "multiclass", "multilabel")
SPLITS = ("train", "val", "test")
OPTIONAL_COLUMNS = ("patient_id", "study_id", "view")
RESERVED_COLUMNS = ("image", "split", *OPTIONAL_COLUMNS)

__all__ = [
    "Issue",
    "Manifest",
    "OPTIONAL_COLUMNS",
    "SPLITS",
    "TASKS",
    "image_reference",
    "load_manifest",
    "save_manifest",
    "sidecar_path",
    "validate_manifest",
    "write_manifest",
]


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


# --------------------------------------------------------------------------------------- parsing


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


# --------------------------------------------------------------------------------------- writing


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


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, fsync it, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # persist the rename itself; not supported everywhere (e.g. Windows)
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


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

    _atomic_write(out_csv, write_csv)
    _atomic_write(sidecar_path(out_csv), lambda fh: fh.write(json.dumps(meta, indent=2) + "\n"))
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


# ------------------------------------------------------------------------------------- validation


def validate_manifest(
    path: str | Path, *, check_files: bool = True, hash_content: bool = False
) -> list[Issue]:
    """Every problem in a manifest, sorted by line; never raises on bad content.

    Errors: unreadable file/sidecar/header, bad rows, bad labels for the task, unknown splits, missing
    image files (``check_files``), a patient in two splits (``patient_leak``), a ``group_id`` in two splits
    (``group_leak``), one image in two splits
    (same path; with ``hash_content=True`` also same bytes under different paths — opt-in because it
    reads every file). Warnings: no ``patient_id`` column (leakage cannot be checked), an image listed
    twice in one split, a class absent from train, sidecar counts that disagree with the CSV.
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        return [Issue(0, "missing_file", f"manifest not found: {csv_path}")]
    issues: list[Issue] = []
    task: str | None = None
    labels: tuple[str, ...] = ()
    meta: dict[str, Any] = {}
    try:
        meta = _read_sidecar(csv_path)
        task, labels = meta["task"], tuple(meta["labels"])
    except ManifestError as exc:
        issues.append(Issue(0, exc.reason, str(exc)))
    try:
        header, rows, lines, row_shape = _read_csv(csv_path)
    except ManifestError as exc:
        return [*issues, Issue(1, exc.reason, str(exc))]
    issues += row_shape
    if task is not None:
        problem = _header_problem(task, labels, header)
        if problem:
            return [*issues, Issue(1, "bad_header", problem)]
    elif "image" not in header or "split" not in header:
        return [*issues, Issue(1, "bad_header", f"missing 'image' or 'split' column (header: {header})")]
    issues += _row_issues(task, labels, rows, lines)
    root = csv_path.parent.absolute()
    images = [os.path.abspath(os.path.join(root, r["image"])) if r["image"] else "" for r in rows]
    if check_files:
        issues += [
            Issue(n, "missing_image", f"image not found: {img}")
            for img, n in zip(images, lines, strict=True)
            if img and not os.path.isfile(img)
        ]
    issues += _cross_split_issues(rows, lines, images, "patient_id" in header, hash_content, "group_id" in header)
    if task is not None and task != "multilabel":
        train = {r["label"] for r in rows if r.get("split") == "train"}
        for k, name in enumerate(labels):
            if train and not any(_same_number(v, k) for v in train):
                issues.append(Issue(0, "class_missing", f"class {k} ({name!r}) has no train rows", "warning"))
    declared = meta.get("counts")
    if isinstance(declared, dict):
        actual = {k: v for k, v in Counter(r.get("split") for r in rows).items() if v}
        if {k: v for k, v in declared.items() if v} != actual:
            issues.append(
                Issue(0, "counts_mismatch", f"sidecar counts {declared} but the CSV has {actual}", "warning")
            )
    return sorted(issues, key=lambda i: (i.line, i.code))


def _same_number(text: str, k: int) -> bool:
    try:
        return _parse_number(text) == k
    except ValueError:
        return False


def _split_rank(split: str) -> int:
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


def _cross_split_issues(
    rows: Sequence[dict], lines: Sequence[int], images: Sequence[str], has_patient: bool, hash_content: bool,
    has_group: bool = False,
) -> list[Issue]:
    """Leakage between splits: same patient, same group (``group_id``: patients joined by identical
    images), same image path, optionally same image bytes."""
    issues: list[Issue] = []
    if not has_patient:
        issues.append(
            Issue(1, "no_patient_id", "no 'patient_id' column: patient leakage cannot be checked", "warning")
        )
    order = sorted(range(len(rows)), key=lambda i: (_split_rank(rows[i]["split"]), lines[i]))

    def check(key_of: Callable[[int], str | None], code: str, what: str, same_split_code: str | None) -> None:
        first: dict[str, dict[str, int]] = {}
        for i in order:
            key = key_of(i)
            if not key:
                continue
            split, seen = rows[i]["split"], first.setdefault(key, {})
            if split in seen:
                if same_split_code and seen[split] != lines[i]:
                    issues.append(
                        Issue(
                            lines[i],
                            same_split_code,
                            f"{what} {key} already listed on line {seen[split]}",
                            "warning",
                        )
                    )
                continue
            if seen:
                other, other_line = next(iter(seen.items()))
                issues.append(
                    Issue(lines[i], code, f"{what} {key} is in {split} and in {other} (line {other_line})")
                )
            seen[split] = lines[i]

    if has_patient:
        check(lambda i: rows[i].get("patient_id"), "patient_leak", "patient", None)
    if has_group:
        check(lambda i: rows[i].get("group_id"), "group_leak", "group", None)
    check(lambda i: images[i], "image_in_two_splits", "image", "duplicate_image")
    if hash_content:
        issues += _content_issues(rows, lines, images, order)
    return issues


def _content_issues(
    rows: Sequence[dict], lines: Sequence[int], images: Sequence[str], order: Sequence[int]
) -> list[Issue]:
    """Different paths with identical bytes (SHA-256): an error across splits, a warning within one."""
    issues: list[Issue] = []
    digests: dict[str, str] = {}
    for img in set(images):
        if img and os.path.isfile(img):
            with open(img, "rb") as fh:
                digests[img] = hashlib.file_digest(fh, "sha256").hexdigest()
    first_by_digest: dict[str, tuple[str, int, str]] = {}
    for i in order:
        digest = digests.get(images[i])
        if not digest:
            continue
        split = rows[i]["split"]
        if digest not in first_by_digest:
            first_by_digest[digest] = (split, lines[i], images[i])
            continue
        other_split, other_line, other_img = first_by_digest[digest]
        if other_img == images[i]:
            continue
        same = other_split == split
        issues.append(
            Issue(
                lines[i],
                "duplicate_content",
                f"{images[i]} has the same bytes as {other_img} (line {other_line}, {other_split})",
                "warning" if same else "error",
            )
        )
    return issues
