"""Class-per-folder trees -> manifest (the Kermany pneumonia layout ``train/NORMAL/x.jpeg``).

Images are referenced in place, never copied: relative to the manifest when they lie inside its
folder, absolute otherwise. Classes are the sorted sub-folder names; two classes give a binary task
whose negative is ``NORMAL`` when present (so "positive" means disease), more give a multiclass task.
Patient ids are parsed from Kermany file names so the validator and the subsets can keep a child's
images together.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mcolor.data.manifests import Manifest, image_reference, write_manifest
from mcolor.errors import ManifestError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
KERMANY_SOURCE = (
    "Kermany et al., Cell 2018: chest X-ray images (pneumonia), Mendeley Data doi:10.17632/rscbjbr9sj.2"
)

_PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_", re.IGNORECASE),  # person1_bacteria_1.jpeg -> person1
    re.compile(r"^(.*?IM-\d+)-\d+$", re.IGNORECASE),  # IM-0115-0001, NORMAL2-IM-0381-0001
)


def kermany_patient_id(file_name: str) -> str | None:
    """Patient id from a Kermany file name, or None when the name follows no known pattern.

    ``person1_bacteria_1.jpeg`` -> ``person1``; ``IM-0115-0001.jpeg`` -> ``IM-0115``;
    ``NORMAL2-IM-0381-0001.jpeg`` -> ``NORMAL2-IM-0381``.
    """
    stem = Path(file_name).stem
    for pattern in _PATIENT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return match.group(1)
    return None


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def build_folders(
    root: str | Path,
    out_dir: str | Path,
    source: str | None = None,
    license: str | None = None,
) -> Manifest:
    """Index ``root/<split>/<class>/<image>`` into ``out_dir/manifest.csv`` (+ sidecar)."""
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise ManifestError(f"image folder not found: {root}", reason="missing_file", path=root)
    split_dirs = {
        SPLIT_ALIASES[d.name.lower()]: d for d in _visible_dirs(root) if d.name.lower() in SPLIT_ALIASES
    }
    if not split_dirs:
        found = [d.name for d in _visible_dirs(root)]
        raise ManifestError(
            f"{root}: no train/val/test folders (found {found}); point ROOT at the folder that holds them "
            "(the Kermany zip nests it as chest_xray/)",
            reason="bad_layout",
            path=root,
        )
    classes = sorted({c.name for d in split_dirs.values() for c in _visible_dirs(d)})
    if len(classes) < 2:
        raise ManifestError(
            f"{root}: need at least 2 class folders, found {classes}", reason="bad_layout", path=root
        )
    if len(classes) == 2:
        task = "binary"
        negative = next((c for c in classes if c.lower() == "normal"), classes[0])
        classes = [negative, *[c for c in classes if c != negative]]
    else:
        task = "multiclass"

    rows, unparsed = [], 0
    for split in ("train", "val", "test"):
        if split not in split_dirs:
            continue
        for k, name in enumerate(classes):
            class_dir = split_dirs[split] / name
            if not class_dir.is_dir():
                continue
            for path in sorted(class_dir.rglob("*")):
                if (
                    path.suffix.lower() not in IMAGE_SUFFIXES
                    or not path.is_file()
                    or path.name.startswith(".")
                ):
                    continue
                patient = kermany_patient_id(path.name)
                unparsed += patient is None
                rows.append(
                    {
                        "image": image_reference(path, out_dir),
                        "split": split,
                        "patient_id": patient or "",
                        "label": k,
                    }
                )
    if not rows:
        raise ManifestError(f"{root}: no image files under the class folders", reason="bad_layout", path=root)
    if unparsed:
        log.warning("%d file names carry no patient id: each is treated as its own patient", unparsed)
    kermany = {c.upper() for c in classes} == {"NORMAL", "PNEUMONIA"}
    if source is None:
        source = KERMANY_SOURCE if kermany else f"class-per-folder tree {root.absolute()}"
    if license is None:
        license = "CC BY 4.0" if kermany else "unknown"
    extra = {"builder": {"name": "folders", "root": str(root.absolute()), "unparsed_patient_ids": unparsed}}
    return write_manifest(rows, classes, task, out_dir / "manifest.csv", source, license, extra)
