"""CheXpert ``train.csv``/``valid.csv`` -> multilabel manifest of the five competition findings.

Split policy (documented in ``data_manifests/chexpert.md``): ``train.csv`` -> train, minus a
patient-grouped stratified val carve (``val_fraction``, default 0.1); ``valid.csv`` -> **test**,
because CheXpert's official test set is hidden and the 234 radiologist-labelled valid images are
the only expert ground truth, which is what the literature reports on. ``valid_as="val"`` keeps
the official valid set as val instead (no carve by default then).

Uncertain labels (-1) follow the CheXpert paper's policies: ``u-ones`` (-1 -> 1), ``u-zeros``
(-1 -> 0) or ``ignore`` (kept as -1, masked out of the loss). Blank stays blank (unknown, masked).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from mcolor.data.builders._common import carve_val_by_patient, read_table
from mcolor.data.manifests import Manifest, image_reference, write_manifest
from mcolor.errors import ConfigError, ManifestError

COMPETITION = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
ALL_FINDINGS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
)  # fmt: skip
UNCERTAIN_POLICIES = {"u-ones": 1, "u-zeros": 0, "ignore": -1}
SOURCE = "CheXpert v1.0 (Irvin et al., AAAI 2019), Stanford ML Group / AIMI"
LICENSE = (
    "Stanford University School of Medicine CheXpert Dataset Research Use Agreement (non-commercial research)"
)
_PATIENT = re.compile(r"(patient\d+)/(study\d+)/")


def _split_of(csv_path: Path, valid_as: str) -> str:
    stem = csv_path.stem.lower()
    if "valid" in stem or stem == "val":
        return valid_as
    for split in ("train", "test"):
        if split in stem:
            return split
    raise ConfigError(
        f"cannot tell the split of {csv_path.name}: name it train*.csv, valid*.csv or test*.csv",
        reason="bad_input",
    )


def _value(cell: str, policy: int, csv_path: Path, line: int, column: str) -> int | None:
    if cell == "":
        return None
    try:
        value = float(cell)
    except ValueError:
        value = float("nan")
    if value not in (1.0, 0.0, -1.0):
        raise ManifestError(
            f"{csv_path}:{line}: column {column!r} has {cell!r}; CheXpert labels are 1.0, 0.0, -1.0 or blank",
            reason="bad_label",
            path=csv_path,
        )
    return policy if value == -1.0 else int(value)


def build_chexpert(
    csv_paths: Sequence[str | Path],
    root: str | Path,
    out_dir: str | Path,
    uncertain: str = "u-ones",
    frontal_only: bool = False,
    val_fraction: float | None = None,
    seed: int = 0,
    valid_as: str = "test",
    findings: Sequence[str] = COMPETITION,
) -> Manifest:
    """Write ``out_dir/manifest.csv`` (+ sidecar) from CheXpert CSVs; images referenced under ``root``.

    ``root`` is the folder that contains ``CheXpert-v1.0-small/`` (or that folder itself: a leading
    path component equal to ``root``'s name is dropped). ``val_fraction`` defaults to 0.1 when
    valid.csv is the test split and to 0 when it is the val split.
    """
    if uncertain not in UNCERTAIN_POLICIES:
        raise ConfigError(f"--uncertain must be one of {list(UNCERTAIN_POLICIES)}, got {uncertain!r}")
    if valid_as not in ("val", "test"):
        raise ConfigError(f"valid_as must be 'val' or 'test', got {valid_as!r}")
    unknown = [f for f in findings if f not in ALL_FINDINGS]
    if unknown or not findings:
        raise ConfigError(f"unknown CheXpert findings {unknown}; choose from {list(ALL_FINDINGS)}")
    if val_fraction is None:
        val_fraction = 0.1 if valid_as == "test" else 0.0
    policy, root, out_dir = UNCERTAIN_POLICIES[uncertain], Path(root), Path(out_dir)
    required = ["Path", "Frontal/Lateral", "AP/PA", *findings]

    rows = []
    for csv_path in map(Path, csv_paths):
        split = _split_of(csv_path, valid_as)
        for line, rec in read_table(csv_path, "CheXpert CSV", required):
            if frontal_only and rec["Frontal/Lateral"].lower() != "frontal":
                continue
            rel = Path(rec["Path"])
            if rel.parts and rel.parts[0] == root.name:
                rel = Path(*rel.parts[1:])
            match = _PATIENT.search(rec["Path"])
            if not match:
                raise ManifestError(
                    f"{csv_path}:{line}: no patientNNNNN/studyN/ in Path {rec['Path']!r}",
                    reason="bad_input",
                    path=csv_path,
                )
            row = {
                "image": image_reference(root / rel, out_dir),
                "split": split,
                "patient_id": match.group(1),
                "study_id": f"{match.group(1)}/{match.group(2)}",
                "view": rec["AP/PA"] or rec["Frontal/Lateral"],
            }
            row.update({f: _value(rec[f], policy, csv_path, line, f) for f in findings})
            rows.append(row)
    if not rows:
        raise ManifestError(
            "no CheXpert rows left (check --frontal-only and the CSVs)", reason="empty_manifest"
        )

    carved = carve_val_by_patient(rows, findings, val_fraction, seed)
    extra = {
        "builder": {
            "name": "chexpert",
            "inputs": [Path(p).name for p in csv_paths],
            "uncertain": uncertain,
            "frontal_only": frontal_only,
            "valid_as": valid_as,
            "val_fraction": val_fraction,
            "val_carved_patients": carved,
            "seed": seed,
        }
    }
    return write_manifest(
        rows, list(findings), "multilabel", out_dir / "manifest.csv", SOURCE, LICENSE, extra
    )
