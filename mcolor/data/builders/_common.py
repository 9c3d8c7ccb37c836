"""Helpers shared by the dataset builders: reading the user's input tables with clear errors."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from mcolor.data.subsample import carve_groups, label_strata
from mcolor.errors import ManifestError


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or a ManifestError(missing_file) saying which input was expected."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{what} not found: {path}", reason="missing_file", path=path)
    return path


def read_table(path: str | Path, what: str, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV as ``(line number, {column: stripped text})``; checks the required columns."""
    path = require_file(path, what)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise ManifestError(
                    f"{path}:1: {what} lacks columns {missing} (header: {header})",
                    reason="bad_header",
                    path=path,
                )
            rows = []
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                cells = cells + [""] * (len(header) - len(cells))
                rows.append(
                    (reader.line_num, {h: c.strip() for h, c in zip(header, cells, strict=False) if h})
                )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(
            f"{path}: {what} is not a readable CSV ({exc})", reason="bad_csv", path=path
        ) from exc
    return rows


def read_list(path: str | Path, what: str) -> list[str]:
    """Non-empty stripped lines of a text file (NIH's train_val_list.txt / test_list.txt)."""
    path = require_file(path, what)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def carve_val_by_patient(rows: list[dict[str, str]], findings: Sequence[str], fraction: float, seed: int) -> int:
    """Move a stratified ``fraction`` of train patients to ``val`` in place; returns the patient count.

    Shared by the multi-label builders (CheXpert, NIH) whose official releases have no usable val split.
    """
    if fraction <= 0:
        return 0
    train = [r for r in rows if r["split"] == "train"]
    keys = label_strata("multilabel", findings, [[r[f] for f in findings] for r in train])
    val = carve_groups([r["patient_id"] for r in train], keys, fraction, seed, salt="val")
    for row in train:
        if row["patient_id"] in val:
            row["split"] = "val"
    return len(val)
