"""``index.html``: a static page listing every file with its status, probabilities and preview thumbnail.

Everything that comes from the input (paths, reasons, header values) is HTML-escaped: a file name like
``<script>.dcm`` must show as text. The page loads nothing from the network (no scripts, no CDN).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from mcolor.atomic import atomic_write
from mcolor.inference.models import InferenceModel
from mcolor.inference.outputs import DISCLAIMER, record_row, summary
from mcolor.inference.scan import FileRecord

_STYLE = """body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px;vertical-align:top;font-size:13px}
.predicted{background:#eef8ee}.skipped{background:#f6f6f6}.error{background:#fbeaea}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:8px;margin-bottom:1em;font-weight:bold}"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _row_html(record: FileRecord, model: InferenceModel, keep_phi: bool) -> str:
    row = record_row(record, model, keep_phi)
    probs = "<br>".join(f"{_e(n)}: {_e(row[f'p_{n}'])}" for n in model.output_names) if row["predicted"] else ""
    thumb = (
        f'<a href="{_e(record.preview)}"><img src="{_e(record.preview)}" width="300" alt="preview"></a>'
        if record.preview
        else ""
    )
    reason = f"<b>{_e(row['reason'])}</b> {_e(row['message'])}" if row["reason"] else ""
    cells = [_e(row["path"]), _e(row["status"]), reason, _e(row["warnings"])]
    if keep_phi:
        cells += [_e(row["patient_id"]), _e(row["study_date"])]
    cells += [probs, _e(row["predicted"]), thumb]
    return f'<tr class="{_e(record.status)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def render_index(records: list[FileRecord], model: InferenceModel, keep_phi: bool = False) -> str:
    """The whole page as a string."""
    s = summary(records)
    head = ["path", "status", "reason", "warnings"] + (["patient_id", "study_date"] if keep_phi else [])
    head += ["probabilities", "predicted", "preview"]
    reasons = ", ".join(f"{_e(k)} {v}" for k, v in s["by_reason"].items()) or "none"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>mcolor inference: {_e(model.name)} {_e(model.version)}</title>",
        f"<style>{_STYLE}</style>",
        "</head><body>",
        f'<div class="banner">{_e(DISCLAIMER)}</div>',
        f"<h1>{_e(model.name)} {_e(model.version)}</h1>",
        f"<p>{s['files']} files: {s['predicted']} predicted, {s['skipped']} skipped, {s['error']} errors "
        f"({reasons}). Thresholds: {_e(model.thresholds)} ({_e(model.threshold_source)}).</p>",
        "<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>",
        *(_row_html(r, model, keep_phi) for r in records),
        "</tbody></table></body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_index(out_dir: Path, records: list[FileRecord], model: InferenceModel, keep_phi: bool = False) -> Path:
    """Write ``out_dir/index.html`` atomically."""
    path = out_dir / "index.html"
    text = render_index(records, model, keep_phi)
    atomic_write(path, lambda fh: fh.write(text), encoding="utf-8")
    return path
