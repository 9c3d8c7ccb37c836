"""Helpers shared by the dataset builders: reading the user's input tables with clear errors."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

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
