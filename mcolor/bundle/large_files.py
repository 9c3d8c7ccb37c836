"""``large_files.yml``: the files kept out of git (weights), with where to get them and their sha256.

The format is MONAI's (``python -m monai.bundle download_large_files`` reads it)::

    large_files:
      - path: models/model.pt
        url: ""            # where to download it from; "" when it ships inside the bundle zip
        hash_val: 3a7b...  # sha256 hex digest
        hash_type: sha256
    sources:               # mcolor's note of where each file came from (ignored by MONAI)
      models/model.pt: "runs/cxr_colorization/model.pt (mcolor 0.1.0)"

A listed file is hashed before it is loaded; a mismatch is refused (``reason="hash_mismatch"``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import yaml

from mcolor.artifact import sha256_file
from mcolor.bundle.safezip import unsafe_name
from mcolor.errors import BundleError

__all__ = ["LARGE_FILES", "LargeFile", "check_files", "check_hash", "dump_large_files", "parse_large_files",
           "read_large_files", "safe_relpath", "sha256_file", "sha256_stream"]

LARGE_FILES = "large_files.yml"


@dataclass(frozen=True)
class LargeFile:
    """One ``large_files.yml`` entry."""

    path: str
    sha256: str
    url: str = ""


def safe_relpath(name: str, source: str | Path = LARGE_FILES) -> str:
    """``name`` as a normalised relative POSIX path; refuses names that could leave the bundle folder.

    The checks are :func:`mcolor.bundle.safezip.unsafe_name`'s (absolute, ``..``, drive letter, backslash,
    NUL, empty), so a listed path is refused exactly when a zip entry of that name would be.
    """
    why = unsafe_name(name)
    if why:
        raise BundleError(f"{source}: unsafe path {name!r} ({why}: it could leave the bundle folder)",
                          reason="unsafe_path", path=source)
    return str(PurePosixPath(name))


def parse_large_files(text: str | bytes, source: str | Path = LARGE_FILES) -> list[LargeFile]:
    """Parse ``large_files.yml`` text (safe YAML) into entries; only sha256 hashes are accepted."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise BundleError(f"{source} is not valid YAML: {exc}", reason="bad_large_files",
                          path=source) from exc
    items = doc.get("large_files", []) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise BundleError(f"{source} must hold a 'large_files' list", reason="bad_large_files", path=source)
    entries = []
    for item in items:
        if not isinstance(item, dict) or "path" not in item:
            raise BundleError(f"{source}: entry {item!r} has no 'path'", reason="bad_large_files",
                              path=source)
        hash_type = str(item.get("hash_type") or "sha256").lower()
        digest = str(item.get("hash_val") or item.get("sha256") or "").lower()
        if hash_type != "sha256" or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise BundleError(f"{source}: entry {item['path']!r} needs a sha256 hash_val (64 hex digits)",
                              reason="bad_large_files", path=source)
        entries.append(LargeFile(safe_relpath(str(item["path"]), source), digest, str(item.get("url") or "")))
    return entries


def read_large_files(root: str | Path) -> list[LargeFile]:
    """Entries of ``root/large_files.yml``; an empty list when the bundle has none."""
    path = Path(root) / LARGE_FILES
    return parse_large_files(path.read_bytes(), path) if path.is_file() else []


def sha256_stream(fh: IO[bytes]) -> str:
    """sha256 hex digest of a binary stream (a zip member)."""
    return hashlib.file_digest(fh, "sha256").hexdigest()


def check_hash(entry: LargeFile, actual: str, where: str | Path) -> None:
    """Raise ``BundleError(reason="hash_mismatch")`` unless ``actual`` is the recorded digest."""
    if actual != entry.sha256:
        raise BundleError(f"{where}: sha256 {actual} does not match large_files.yml ({entry.sha256}); "
                          "the file is corrupt or was replaced", reason="hash_mismatch", path=where)


def check_files(root: str | Path, entries: Iterable[LargeFile],
                only: Iterable[str] | None = None) -> list[str]:
    """Hash the listed files present under ``root`` (or just ``only``); return the paths checked."""
    wanted = None if only is None else {safe_relpath(p) for p in only}
    checked = []
    for entry in entries:
        if wanted is not None and entry.path not in wanted:
            continue
        path = Path(root) / entry.path
        if path.is_file():
            check_hash(entry, sha256_file(path), path)
            checked.append(entry.path)
    return checked


def dump_large_files(entries: Iterable[LargeFile], sources: dict[str, str] | None = None) -> str:
    """YAML text for ``large_files.yml`` (MONAI's keys, plus mcolor's ``sources`` notes)."""
    doc: dict[str, Any] = {"large_files": [
        {"path": e.path, "url": e.url, "hash_val": e.sha256, "hash_type": "sha256"} for e in entries]}
    if sources:
        doc["sources"] = dict(sources)
    return yaml.safe_dump(doc, sort_keys=False)
