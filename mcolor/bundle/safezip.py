"""Zip extraction that checks every entry before writing a single byte.

A bundle zip comes from someone else, so before extracting anything we refuse: entries that escape the
target folder (``../``, absolute paths, drive letters, backslashes), symbolic-link entries (a later
entry could write through them), duplicate names, and archives whose declared uncompressed size
exceeds a cap (zip bombs; ``zipfile`` never inflates an entry past its declared size, so the sum of
declared sizes bounds what is written).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mcolor.errors import BundleError

#: Default cap on the total uncompressed size of a bundle zip.
MAX_UNCOMPRESSED_BYTES = 4 * 1024**3
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class ZipPlan:
    """What a checked zip will extract: its file entries and the bundle folder prefix inside it."""

    prefix: str
    files: tuple[zipfile.ZipInfo, ...]
    total_bytes: int


def unsafe_name(name: str) -> str | None:
    """Why the relative name ``name`` could write outside the folder it is joined to, or ``None`` if safe.

    Shared by zip entries and ``large_files.yml`` paths: both are names from someone else's bundle, and a
    name that is safe for one must be safe for the other.
    """
    if not name or "\x00" in name:
        return "empty or NUL in name"
    if "\\" in name:
        return "backslash in name"
    pure = PurePosixPath(name)
    if name.startswith("/") or pure.is_absolute():
        return "absolute path"
    if pure.parts and pure.parts[0].endswith(":"):
        return "drive letter"
    if ".." in pure.parts:
        return "'..' component"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def plan_extraction(zf: zipfile.ZipFile, source: str | Path,
                    max_bytes: int = MAX_UNCOMPRESSED_BYTES) -> ZipPlan:
    """Check every entry of ``zf``; return the plan or raise ``BundleError(reason="unsafe_zip")``."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise BundleError(f"{source}: {len(infos)} entries (more than {MAX_ENTRIES})", reason="unsafe_zip",
                          path=source)
    seen: set[str] = set()
    total = 0
    for info in infos:
        why = unsafe_name(info.filename)
        if why:
            raise BundleError(f"{source}: refused entry {info.filename!r} ({why}: it would be written "
                              "outside the bundle folder); nothing was extracted", reason="unsafe_zip",
                              path=source)
        if _is_symlink(info):
            raise BundleError(f"{source}: refused symbolic-link entry {info.filename!r}; nothing was "
                              "extracted",
                              reason="unsafe_zip", path=source)
        key = PurePosixPath(info.filename).as_posix()  # "a//b", "a/./b" and "a/b/" are one path
        if key in seen:
            raise BundleError(f"{source}: duplicate entry {info.filename!r}; nothing was extracted",
                              reason="unsafe_zip", path=source)
        seen.add(key)
        total += info.file_size
        if total > max_bytes:
            raise BundleError(f"{source}: uncompressed size exceeds {max_bytes} bytes (zip bomb?); nothing "
                              "was extracted", reason="unsafe_zip", path=source)
    return ZipPlan(bundle_prefix(zf, source), tuple(i for i in infos if not i.is_dir()), total)


def bundle_prefix(zf: zipfile.ZipFile, source: str | Path) -> str:
    """``"NAME/"`` for a spec-style zip (``NAME/configs/metadata.json``), ``""`` for a flat one."""
    names = set(zf.namelist())
    if "configs/metadata.json" in names:
        return ""
    tops = {n.split("/", 1)[0] for n in names if n.count("/") == 2 and n.endswith("/configs/metadata.json")}
    if len(tops) == 1:
        return f"{tops.pop()}/"
    if len(tops) > 1:
        raise BundleError(f"{source} holds several bundles ({sorted(tops)})", reason="bad_bundle",
                          path=source)
    raise BundleError(f"{source} has no NAME/configs/metadata.json", reason="missing_metadata", path=source)


def extract(zf: zipfile.ZipFile, plan: ZipPlan, dest: Path) -> None:
    """Write the planned files under ``dest`` (each re-checked to resolve inside it)."""
    dest = dest.resolve()
    written = 0
    for info in plan.files:
        target = (dest / info.filename).resolve()
        if not target.is_relative_to(dest):
            raise BundleError(f"entry {info.filename!r} resolves outside {dest}", reason="unsafe_zip")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
            written += out.tell()
        if written > plan.total_bytes:
            raise BundleError("zip entries inflate beyond their declared size", reason="unsafe_zip")
