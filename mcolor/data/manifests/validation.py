"""Validating manifests: :func:`validate_manifest` and the cross-split leakage checks.

Unlike :func:`~mcolor.data.manifests.load_manifest`, validation is thorough and total: it never raises on
bad content, it lists every problem (missing images, patient or group leakage, duplicates, bad labels,
unknown splits) as an :class:`~mcolor.data.manifests.Issue` with its CSV line.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mcolor.data.manifests.reading import (
    SPLITS,
    Issue,
    _header_problem,
    _parse_number,
    _read_csv,
    _read_sidecar,
    _row_issues,
)
from mcolor.errors import ManifestError


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
