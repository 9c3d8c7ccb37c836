"""NIH ChestX-ray14 ``Data_Entry_2017*.csv`` + official split lists -> 14-finding multilabel manifest.

``test_list.txt`` -> test (the official, patient-disjoint test set); ``train_val_list.txt`` -> train,
minus a patient-grouped stratified val carve (``val_fraction``, default 0.1; NIH publishes no val
split). "No Finding" is all zeros. Images are looked up under ``root`` directly or in NIH's
``images_NNN/images/`` sub-folders (one directory walk, only when needed).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mcolor.data.builders._common import carve_val_by_patient, read_list, read_table
from mcolor.data.builders.medmnist import NIH_FINDINGS
from mcolor.data.manifests import Manifest, image_reference, write_manifest
from mcolor.errors import ManifestError

log = logging.getLogger(__name__)

SOURCE = "NIH ChestX-ray14 (Wang et al., CVPR 2017), NIH Clinical Center, https://nihcc.app.box.com/v/ChestXray-NIHCC"
LICENSE = (
    "NIH Clinical Center: no restrictions on use; attribution requested "
    "(link the NIH download site, cite Wang et al. CVPR 2017, acknowledge the NIH Clinical Center)"
)
REQUIRED = ("Image Index", "Finding Labels", "Patient ID")


class _ImageLocator:
    """Finds ``name`` under ``root`` or, after one walk of ``root``, in any sub-folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index: dict[str, str] | None = None
        self.missing = 0

    def __call__(self, name: str) -> Path:
        direct = self.root / name
        if direct.is_file():
            return direct
        if self.index is None:
            self.index = {}
            for folder, _, files in os.walk(self.root):
                for f in files:
                    self.index.setdefault(f, os.path.join(folder, f))
        if name in self.index:
            return Path(self.index[name])
        self.missing += 1
        return direct


def _patient_id(rec: dict[str, str]) -> str:
    pid = rec["Patient ID"]
    return f"{int(pid):08d}" if pid.isdigit() else pid


def build_nih(
    data_entry_csv: str | Path,
    train_val_list: str | Path,
    test_list: str | Path,
    root: str | Path,
    out_dir: str | Path,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Manifest:
    """Write ``out_dir/manifest.csv`` (+ sidecar) for ChestX-ray14 with the official test split."""
    root, out_dir = Path(root), Path(out_dir)
    entries = read_table(data_entry_csv, "NIH Data_Entry CSV", REQUIRED)
    train_val, test = set(read_list(train_val_list, "train_val_list")), set(read_list(test_list, "test_list"))
    both = sorted(train_val & test)
    if both:
        raise ManifestError(
            f"{len(both)} images are in both split lists, e.g. {both[:3]}",
            reason="bad_split_list",
            path=test_list,
        )
    locate, rows, unlisted = _ImageLocator(root), [], 0
    for line, rec in entries:
        name = rec["Image Index"]
        split = "test" if name in test else "train" if name in train_val else None
        if split is None:
            unlisted += 1
            continue
        found = {f.strip() for f in rec["Finding Labels"].split("|") if f.strip()}
        unknown = found - set(NIH_FINDINGS) - {"No Finding"}
        if unknown or not found or ("No Finding" in found and len(found) > 1):
            raise ManifestError(
                f"{data_entry_csv}:{line}: Finding Labels {rec['Finding Labels']!r} "
                f"(expected '|'-separated names among {list(NIH_FINDINGS)} or 'No Finding')",
                reason="bad_label",
                path=data_entry_csv,
            )
        row = {
            "image": image_reference(locate(name), out_dir),
            "split": split,
            "patient_id": _patient_id(rec),
            "view": rec.get("View Position", ""),
        }
        row.update({f: int(f in found) for f in NIH_FINDINGS})
        rows.append(row)
    if not rows:
        raise ManifestError(
            "no NIH rows are in either split list", reason="empty_manifest", path=data_entry_csv
        )
    if unlisted:
        log.warning("%d Data_Entry rows are in neither split list: skipped", unlisted)
    if locate.missing:
        log.warning("%d images not found under %s (run `mcolor manifest validate`)", locate.missing, root)

    carved = carve_val_by_patient(rows, NIH_FINDINGS, val_fraction, seed)
    extra = {
        "builder": {
            "name": "nih",
            "inputs": [Path(p).name for p in (data_entry_csv, train_val_list, test_list)],
            "val_fraction": val_fraction,
            "val_carved_patients": carved,
            "seed": seed,
            "unlisted_rows_skipped": unlisted,
            "images_not_found": locate.missing,
        }
    }
    return write_manifest(rows, NIH_FINDINGS, "multilabel", out_dir / "manifest.csv", SOURCE, LICENSE, extra)
