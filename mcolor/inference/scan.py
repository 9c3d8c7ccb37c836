"""Find every file under an input folder and decide, from headers only, which ones the model may see.

Each file becomes one :class:`FileRecord` whose status ends as ``predicted``, ``skipped`` (with a reason
code and a sentence) or ``error``. The scan never follows symbolic links to folders (a link back to a
parent would loop forever); such links are listed as skipped. Files are only read, never written.
Header checks use ``stop_before_pixels`` and the same format sniffing as :func:`mcolor.io.read_radiograph`,
so a file is judged DICOM / PNG / other by content exactly as the reader will later judge it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from tqdm.auto import tqdm

from mcolor.errors import ConfigError, RadiographReadError
from mcolor.inference.rules import (
    WITHHELD,
    Decision,
    SelectionRules,
    check_header,
    check_non_dicom,
    header_value,
    sop_class_of,
)
from mcolor.io.radiograph import _head, _sniff
from mcolor.options import parse_bool

log = logging.getLogger(__name__)

STATUSES = ("predicted", "skipped", "error")
_UID_KEYWORDS = (
    ("sop_instance_uid", "SOPInstanceUID"),
    ("study_instance_uid", "StudyInstanceUID"),
    ("series_instance_uid", "SeriesInstanceUID"),
)
#: Reasons whose file was never recognised as an image at all (for the "no readable file" exit code).
UNREADABLE_REASONS = frozenset(
    {
        "not_dicom",
        "empty_file",
        "not_a_file",
        "unreadable_file",
        "symlink_dir",
        "unreadable_dir",
        "header_unreadable",
    }
)


@dataclass
class FileRecord:
    """One input file and what happened to it. ``path`` (absolute) is never written to any output."""

    path: Path
    rel: str
    status: str = "pending"
    reason: str = ""
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    uids: dict[str, str] = field(default_factory=dict)
    header: dict[str, str] = field(default_factory=dict)
    phi: dict[str, str] = field(default_factory=dict)
    probabilities: list[float] | None = None
    predicted: str = ""
    preview: str = ""

    def skip(self, reason: str, message: str) -> None:
        self.status, self.reason, self.message = "skipped", reason, message

    def fail(self, reason: str, message: str) -> None:
        self.status, self.reason, self.message = "error", reason, message

    @property
    def readable(self) -> bool:
        """Recognised as a DICOM or raster image (whatever the rules then decided)."""
        return self.reason not in UNREADABLE_REASONS

    @property
    def selected(self) -> bool:
        return self.status == "pending"


def relative(path: Path, root: Path) -> str:
    """POSIX path of ``path`` relative to ``root``; what the outputs call a file (never the absolute path)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def walk_files(root: Path) -> Iterable[tuple[Path, str | None]]:
    """Every entry under ``root``, sorted: ``(path, None)`` for files, ``(path, reason)`` for the unwalkable.

    ``os.walk`` with ``followlinks=False`` lists a symlinked folder among the folders without entering it;
    it is reported (``symlink_dir``) so that no entry of the tree disappears silently.
    """
    failed: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=failed.append):
        base = Path(dirpath)
        dirnames.sort()
        for name in dirnames:
            if (base / name).is_symlink():
                yield base / name, "symlink_dir"
        for name in sorted(filenames):
            yield base / name, None
    for exc in failed:
        if exc.filename and Path(exc.filename) != root:
            yield Path(exc.filename), "unreadable_dir"


@contextlib.contextmanager
def quiet_dicom() -> Iterator[None]:
    """Silence pydicom's warnings and log lines: they quote element values, which may be PHI.

    pydicom validates values when they are *read* (``ds.get``), not only when the file is parsed, so
    everything that touches a header runs inside this. The level is raised on the ``pydicom`` logger
    itself, which also covers its child loggers and DataLoader workers forked meanwhile.
    """
    logger = logging.getLogger("pydicom")
    old = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(old)


def _read_header(path: Path, force: bool) -> Any:
    """Header only (pixel bytes never read); call inside :func:`quiet_dicom`."""
    return pydicom.dcmread(str(path), stop_before_pixels=True, force=force, defer_size="64 KB")


def _apply(record: FileRecord, decision: Decision) -> None:
    record.warnings.extend(decision.warnings)
    if not decision.accepted:
        record.skip(decision.reason, decision.message)


def classify(path: Path, root: Path, rules: SelectionRules, keep_phi: bool = False) -> FileRecord:
    """Sniff one file and apply the selection rules: a ``pending`` (selected), skipped or error record."""
    record = FileRecord(path, relative(path, root))
    try:
        head = _head(path)
    except RadiographReadError as exc:
        sentence = {
            "empty_file": "empty file (0 bytes)",
            "not_a_file": "not a regular file (broken link, device or socket)",
        }.get(exc.reason)
        if sentence:
            record.skip(exc.reason, sentence)
        else:
            record.fail(exc.reason, "the file could not be read (permissions or I/O error)")
        return record
    fmt = _sniff(head)
    if fmt is None:
        record.skip("not_dicom", "not a DICOM file nor an image in another format the reader knows (judged by "
                    "content, not by name; a .raw/.img data file is read through its header)")
        return record
    if fmt != "dicom":
        record.header["format"] = fmt
        _apply(record, check_non_dicom(fmt, rules))
        return record
    force = head[128:132] != b"DICM"
    try:
        ds = _read_header(path, force)
    except Exception as exc:
        record.fail("header_unreadable", f"DICOM header could not be parsed ({type(exc).__name__})")
        return record
    if not (sop_class_of(ds) or any(k in ds for k in ("Rows", "PixelData", "Modality"))):
        if force:
            record.skip("not_dicom", "no DICOM preamble and no image elements: not a DICOM file")
        else:
            record.fail("header_unreadable", "DICOM preamble but no readable header elements (corrupt file?)")
        return record
    record.header = {
        "format": "dicom",
        "modality": header_value(ds, "Modality"),
        "body_part": header_value(ds, "BodyPartExamined"),
        "view_position": header_value(ds, "ViewPosition"),
        "sop_class_uid": sop_class_of(ds),
    }
    for key, keyword in _UID_KEYWORDS:
        uid = header_value(ds, keyword)
        if uid == WITHHELD:
            record.warnings.append(f"malformed_uid: {keyword} is not a valid UID (value withheld)")
            uid = ""
        record.uids[key] = uid
    if keep_phi:
        record.phi = {"patient_id": header_value(ds, "PatientID"), "study_date": header_value(ds, "StudyDate")}
    _apply(record, check_header(ds, rules))
    return record


def scan_folder(
    root: str | Path, rules: SelectionRules, keep_phi: bool = False, progress: bool = True
) -> list[FileRecord]:
    """Classify every file under ``root`` (recursive, sorted by relative path)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"input folder not found or not a folder: {root}", reason="missing_input", path=root)
    root = root.resolve()
    records = []
    with quiet_dicom():
        for path, problem in tqdm(
            list(walk_files(root)), desc="scan", unit="file", disable=not progress or None, leave=False
        ):
            if problem == "symlink_dir":
                rec = FileRecord(path, relative(path, root))
                rec.skip("symlink_dir", "symbolic link to a folder: not followed (it could loop)")
            elif problem:
                rec = FileRecord(path, relative(path, root))
                rec.fail("unreadable_dir", "folder could not be listed (permissions)")
            else:
                rec = classify(path, root, rules, keep_phi)
            records.append(rec)
    records.sort(key=lambda r: r.rel)
    return records


def manifest_records(dataset: str | Path | None, split: str, dataset_dir: str | Path | None = None) -> list[FileRecord]:
    """Records for a manifest split (the bundle's ``dataset`` mode): a curated set, so no rules apply.

    ``dataset_dir`` (MONAI's bundle property) is a folder holding ``manifest.csv``; ``dataset`` wins.
    """
    from mcolor.data.datasets import resolve_manifest, split_records

    if not dataset and dataset_dir:
        dataset = Path(dataset_dir) / "manifest.csv"
    manifest = resolve_manifest(dataset)
    root = Path(manifest.path).parent.resolve()
    return [
        FileRecord(Path(r["image"]), relative(Path(r["image"]).resolve(), root))
        for r in split_records(manifest, split, fallback="val")
    ]


def select_inputs(
    input_dir: str | Path | None = None,
    dataset: str | Path | None = None,
    split: str = "test",
    rules: SelectionRules | None = None,
    keep_phi: bool = False,
    progress: bool = True,
    dataset_dir: str | Path | None = None,
) -> list[FileRecord]:
    """The records to infer on: a scanned folder (with rules) or, without ``input_dir``, a manifest split."""
    if input_dir:
        return scan_folder(input_dir, rules or SelectionRules(), parse_bool(keep_phi, "keep_phi"),
                           parse_bool(progress, "progress"))
    return manifest_records(dataset, split, dataset_dir)
