"""``predictions.csv`` and ``report.json``: one row per input file, written atomically.

PHI rule: rows hold the relative path, UIDs and acquisition descriptors, never patient identifiers
(name, ID, birth date). ``keep_phi`` adds ``patient_id`` and ``study_date`` for local use only. Absolute
paths are never written either (the input folder's name can itself identify a patient).
"""

from __future__ import annotations

import csv
import datetime
import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

from mcolor import __version__
from mcolor.atomic import atomic_write
from mcolor.inference.models import InferenceModel
from mcolor.inference.scan import STATUSES, FileRecord

DISCLAIMER = "Research software output; NOT FOR CLINICAL USE (not a medical device, not for diagnosis)."
BASE_COLUMNS = (
    "path",
    "status",
    "reason",
    "message",
    "warnings",
    "sop_instance_uid",
    "study_instance_uid",
    "series_instance_uid",
    "modality",
    "body_part",
    "view_position",
)
PHI_COLUMNS = ("patient_id", "study_date")


def columns(model: InferenceModel, keep_phi: bool = False) -> list[str]:
    """CSV header: file columns, one ``p_<output>`` per output, the decision, thresholds, model identity."""
    cols = list(BASE_COLUMNS)
    if keep_phi:
        cols += PHI_COLUMNS
    cols += [f"p_{n}" for n in model.output_names] + ["predicted"]
    cols += [f"threshold_{n}" for n in model.output_names] if model.task != "multiclass" else []
    return cols + ["preview", "model", "model_version"]


def record_row(record: FileRecord, model: InferenceModel, keep_phi: bool = False) -> dict[str, Any]:
    """One output row; probabilities and thresholds only on predicted rows (blank otherwise)."""
    row: dict[str, Any] = {
        "path": record.rel,
        "status": record.status,
        "reason": record.reason,
        "message": record.message,
        "warnings": "; ".join(record.warnings),
    }
    for key in ("sop_instance_uid", "study_instance_uid", "series_instance_uid"):
        row[key] = record.uids.get(key, "")
    for key in ("modality", "body_part", "view_position"):
        row[key] = record.header.get(key, "")
    if keep_phi:
        row.update({k: record.phi.get(k, "") for k in PHI_COLUMNS})
    predicted = record.status == "predicted" and record.probabilities is not None
    for name, p in zip(model.output_names, record.probabilities or [None] * len(model.output_names), strict=True):
        row[f"p_{name}"] = round(p, 6) if predicted and p is not None else ""
    row["predicted"] = record.predicted if predicted else ""
    if model.task != "multiclass":
        for name, t in zip(model.output_names, model.thresholds, strict=True):
            row[f"threshold_{name}"] = round(t, 6) if predicted else ""
    row["preview"] = record.preview
    row["model"], row["model_version"] = model.name, model.version
    return row


def counts_of(records: list[FileRecord]) -> dict[str, int]:
    """Files per status (every status present, zeros included)."""
    counts = Counter(r.status for r in records)
    return {s: counts.get(s, 0) for s in STATUSES}


def summary(records: list[FileRecord]) -> dict[str, Any]:
    """Counts per status and per reason: what the summary line and the report's header say."""
    reasons = Counter(f"{r.status}:{r.reason}" for r in records if r.reason)
    return {
        "files": len(records),
        **counts_of(records),
        "by_reason": dict(sorted(reasons.items())),
        "with_warnings": sum(1 for r in records if r.warnings),
    }


def write_tables(
    out_dir: Path,
    records: list[FileRecord],
    model: InferenceModel,
    rules: dict[str, Any] | None = None,
    keep_phi: bool = False,
) -> dict[str, int]:
    """Write ``predictions.csv`` and ``report.json`` into ``out_dir``; returns the status counts."""
    rows = [record_row(r, model, keep_phi) for r in records]
    cols = columns(model, keep_phi)

    def dump_csv(fh: IO[str]) -> None:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)

    report = {
        "disclaimer": DISCLAIMER,
        "mcolor_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "phi_included": keep_phi,
        "summary": summary(records),
        "model": model.describe(),
        "rules": rules,
        "rows": rows,
    }
    atomic_write(out_dir / "predictions.csv", dump_csv, newline="", encoding="utf-8")
    atomic_write(out_dir / "report.json", lambda fh: json.dump(report, fh, indent=1, allow_nan=False), encoding="utf-8")
    return counts_of(records)
