"""Class-per-folder trees -> manifest (the Kermany pneumonia layout ``train/NORMAL/x.jpeg``).

Images are referenced in place, never copied: relative to the manifest when they lie inside its
folder, absolute otherwise. Classes are the sorted sub-folder names; two classes give a binary task
whose negative is ``NORMAL`` when present (so "positive" means disease), more give a multiclass task.

What makes a split trustworthy on this kind of data:

* **Patient ids** are parsed from every Kermany file-name pattern (:func:`kermany_patient_id`), so a
  child's images never straddle splits.
* **Pixel-identical images** (the Kermany training split holds about 30 such groups, some under two
  patients' names) are joined into one ``group_id`` with their patients, by a hash of the pixels the
  one reader decodes; carving and subsampling keep a whole group together.
* **Missing splits are carved, official ones kept**: a tree with ``train/`` and ``test/`` keeps that
  test split and carves ``val`` from train; a tree with ``train/`` only carves ``test`` and ``val``.
  Carving is grouped, stratified (by the Kermany sub-type when the names carry it, so the binary and
  the three-class manifests of one tree get the same patients in each split) and seeded.
* ``task="subtype"`` reads normal / bacterial / viral pneumonia from the file names; the binary
  ``pneumonia`` task keeps the sub-type in a ``subtype`` column so results can be broken down by it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from mcolor.data.manifests import Manifest, image_reference, write_manifest
from mcolor.data.subsample import carve_groups
from mcolor.errors import ManifestError, McolorError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
FOLDER_TASKS = ("folders", "pneumonia", "subtype")
KERMANY_SOURCE = (
    "Kermany et al., Cell 2018: chest X-ray images (pneumonia), Mendeley Data doi:10.17632/rscbjbr9sj.2"
)
#: Class names of ``task="subtype"``, in label order (0 = negative).
SUBTYPES = ("NORMAL", "BACTERIAL", "VIRAL")

_PATIENT_PATTERNS = (
    # person1_bacteria_1, person1_virus_6, person1_virus_6_2 -> person1
    re.compile(r"^(person\d+)_(?:bacteria|virus)(?:_\d+)+$", re.IGNORECASE),
    # IM-0115-0001, IM-0429-0001-0001 -> IM-0115 / IM-0429; NORMAL2-IM-0381-0001(-0002) -> NORMAL2-IM-0381
    re.compile(r"^((?:NORMAL\d*-)?IM-\d+)(?:-\d+){1,2}$", re.IGNORECASE),
)
_SUBTYPE = re.compile(r"_(bacteria|virus)_", re.IGNORECASE)


def kermany_patient_id(file_name: str) -> str | None:
    """Patient id from a Kermany file name, or None when the name follows no known pattern.

    ``person1_bacteria_1.jpeg`` -> ``person1``; ``person1_virus_6_2.jpeg`` -> ``person1``;
    ``IM-0115-0001.jpeg`` and ``IM-0115-0001-0002.jpeg`` -> ``IM-0115``;
    ``NORMAL2-IM-0381-0001.jpeg`` -> ``NORMAL2-IM-0381``.
    """
    stem = Path(file_name).stem
    for pattern in _PATIENT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return match.group(1)
    return None


def kermany_subtype(file_name: str, class_name: str) -> str | None:
    """``NORMAL``, ``BACTERIAL`` or ``VIRAL`` for a Kermany image, None when it cannot be told."""
    if class_name.upper() == "NORMAL":
        return "NORMAL"
    match = _SUBTYPE.search(Path(file_name).stem + "_")
    if match is None:
        return None
    return "BACTERIAL" if match.group(1).lower() == "bacteria" else "VIRAL"


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def _pixel_digest(path: Path) -> str | None:
    """SHA-256 of the pixels the one reader decodes (None when the file cannot be read)."""
    from mcolor.io import read_radiograph

    try:
        image, _ = read_radiograph(path)
    except McolorError:
        return None
    h = hashlib.sha256(f"{image.shape}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo  # the smallest id names the group: deterministic


def _group_identical(rows: list[dict[str, Any]], paths: list[Path]) -> int:
    """Set ``group_id`` on every row: its patient, joined with every patient sharing identical pixels."""
    uf = _UnionFind()
    first: dict[str, str] = {}
    duplicates = 0
    for row, path in zip(rows, paths, strict=True):
        uf.find(row["patient_id"])
        digest = _pixel_digest(path)
        if digest is None:
            continue
        if digest in first:
            duplicates += 1
            uf.union(first[digest], row["patient_id"])
        else:
            first[digest] = row["patient_id"]
    for row in rows:
        row["group_id"] = uf.find(row["patient_id"])
    return duplicates


def _carve(rows: list[dict[str, Any]], strata: list[str], split: str, fraction: float, seed: int) -> int:
    """Move a grouped, stratified ``fraction`` of the train groups into ``split``; returns the group count."""
    train = [i for i, r in enumerate(rows) if r["split"] == "train"]
    chosen = carve_groups([rows[i]["group_id"] for i in train], [strata[i] for i in train], fraction, seed,
                          salt=split)
    for i in train:
        if rows[i]["group_id"] in chosen:
            rows[i]["split"] = split
    return len(chosen)


def build_folders(
    root: str | Path,
    out_dir: str | Path,
    source: str | None = None,
    license: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    task: str = "folders",
    dedupe: bool = True,
) -> Manifest:
    """Index ``root/<split>/<class>/<image>`` into ``out_dir/manifest.csv`` (+ sidecar).

    Args:
        root: folder holding ``train/`` and optionally ``val/`` and ``test/``.
        val_fraction: share of the train groups carved into ``val`` when ``root`` has no ``val/``
            (0 = none). Fractions count groups (patients) per stratum of the *original* train split.
        test_fraction: share carved into ``test`` when ``root`` has no ``test/`` (0 = none); carved
            before ``val``.
        seed: seed of the carving (deterministic, independent of later subsampling).
        task: ``folders`` (classes = sub-folders), ``pneumonia`` (binary NORMAL / PNEUMONIA, Kermany
            layout) or ``subtype`` (NORMAL / BACTERIAL / VIRAL from Kermany file names).
        dedupe: join pixel-identical images into one group (decodes every image once).
    """
    root, out_dir = Path(root), Path(out_dir)
    if task not in FOLDER_TASKS:
        raise ManifestError(f"unknown task {task!r}; valid: {', '.join(FOLDER_TASKS)}", reason="bad_option")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= float(value) < 1.0:
            raise ManifestError(f"{name} must be in [0, 1), got {value}", reason="bad_fraction")
    if float(val_fraction) + float(test_fraction) >= 1.0:
        raise ManifestError("val_fraction + test_fraction must be below 1", reason="bad_fraction")
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
    folders = sorted({c.name for d in split_dirs.values() for c in _visible_dirs(d)})
    if len(folders) < 2:
        raise ManifestError(
            f"{root}: need at least 2 class folders, found {folders}", reason="bad_layout", path=root
        )
    is_kermany = {c.upper() for c in folders} == {"NORMAL", "PNEUMONIA"}
    if task != "folders" and not is_kermany:
        raise ManifestError(f"task {task!r} needs the Kermany NORMAL/PNEUMONIA folders; found {folders}",
                            reason="bad_layout", path=root)
    if len(folders) == 2:
        negative = next((c for c in folders if c.lower() == "normal"), folders[0])
        folders = [negative, *[c for c in folders if c != negative]]
    if task == "subtype":
        labels, kind = list(SUBTYPES), "multiclass"
    else:
        labels, kind = list(folders), "binary" if len(folders) == 2 else "multiclass"

    rows: list[dict[str, Any]] = []
    paths: list[Path] = []
    strata: list[str] = []
    unparsed = untyped = 0
    for split in ("train", "val", "test"):
        if split not in split_dirs:
            continue
        for k, name in enumerate(folders):
            class_dir = split_dirs[split] / name
            if not class_dir.is_dir():
                continue
            for path in sorted(class_dir.rglob("*")):
                if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file() or path.name.startswith("."):
                    continue
                patient = kermany_patient_id(path.name) if is_kermany else None
                if patient is None:
                    unparsed += is_kermany
                    patient = f"{name}/{path.relative_to(class_dir).as_posix()}"  # its own patient
                subtype = kermany_subtype(path.name, name) if is_kermany else None
                row: dict[str, Any] = {"image": image_reference(path, out_dir), "split": split,
                                       "patient_id": patient}
                if task == "subtype":
                    if subtype is None:
                        untyped += 1
                        continue
                    row["label"] = SUBTYPES.index(subtype)
                else:
                    row["label"] = k
                    if subtype is not None:
                        row["subtype"] = subtype.lower()
                rows.append(row)
                paths.append(path)
                strata.append(subtype or name)
    if not rows:
        raise ManifestError(f"{root}: no image files under the class folders", reason="bad_layout", path=root)
    if unparsed:
        log.warning("%d Kermany file names carry no patient id: each is treated as its own patient", unparsed)
    if untyped:
        log.warning("%d pneumonia images name neither bacteria nor virus: left out of the subtype task", untyped)
    if dedupe:
        duplicates = _group_identical(rows, paths)
    else:
        duplicates = None
        for row in rows:
            row["group_id"] = row["patient_id"]
    straddling = _straddling_groups(rows)
    if straddling:
        log.warning("%d groups (patients or identical images) lie in more than one of the folder's own splits; "
                    "carving keeps them where the folders put them (see mcolor manifest validate)", straddling)
    carved: dict[str, Any] = {}
    if "train" in split_dirs:
        if "test" not in split_dirs and test_fraction > 0:
            carved["test"] = {"fraction": test_fraction, "groups": _carve(rows, strata, "test", test_fraction, seed)}
        if "val" not in split_dirs and val_fraction > 0:
            share = val_fraction / (1.0 - (test_fraction if "test" in carved else 0.0))
            carved["val"] = {"fraction": val_fraction, "groups": _carve(rows, strata, "val", share, seed)}
    if source is None:
        source = KERMANY_SOURCE if is_kermany else f"class-per-folder tree {root.absolute()}"
    if license is None:
        license = "CC BY 4.0" if is_kermany else "unknown"
    extra = {"builder": {"name": "folders", "root": str(root.absolute()), "task": task,
                         "unparsed_patient_ids": unparsed, "identical_images": duplicates,
                         "official_splits": sorted(split_dirs), "carved": carved, "seed": seed,
                         "stratified_by": "kermany subtype" if is_kermany else "class"}}
    return write_manifest(rows, labels, kind, out_dir / "manifest.csv", source, license, extra)


def _straddling_groups(rows: list[dict[str, Any]]) -> int:
    splits: dict[str, set[str]] = {}
    for row in rows:
        splits.setdefault(row["group_id"], set()).add(row["split"])
    return sum(len(s) > 1 for s in splits.values())
