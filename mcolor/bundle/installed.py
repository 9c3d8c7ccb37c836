"""The bundles shipped inside the mcolor package, and starting a new bundle folder from one.

``pip install mcolor`` users have no git checkout: the wheel carries ``bundles/`` as the package data of
``mcolor.bundles`` (an editable install maps it to the repository's ``bundles/``), so ``mcolor bundle path``
can say where the configs are and ``mcolor bundle init DEST`` can copy one to train it in place.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from mcolor.errors import BundleError

DEFAULT_BUNDLE = "cxr_colorization"
#: What a copy takes: the bundle's own files, never weights, training outputs or caches.
_COPIED = ("LICENSE", "large_files.yml", "configs", "docs")


def bundle_path(name: str = DEFAULT_BUNDLE) -> Path:
    """Folder of the installed bundle ``name`` (its ``configs/metadata.json`` inside)."""
    root = Path(str(resources.files("mcolor.bundles"))) / name
    if not (root / "configs" / "metadata.json").is_file():
        available = sorted(p.name for p in root.parent.iterdir() if (p / "configs" / "metadata.json").is_file())
        raise BundleError(f"no installed bundle {name!r}; available: {', '.join(available) or 'none'}",
                          reason="not_found", path=root)
    return root


def init_bundle(dest: str | Path, name: str = DEFAULT_BUNDLE, source: str | Path | None = None,
                keep_existing: bool = False) -> Path:
    """Copy a bundle's files (configs, docs, licence; no weights) into ``dest``, which must be absent or empty.

    ``keep_existing``: a ``dest`` that already is a bundle is left as it is (so a documented command can be run
    twice: the second run trains the bundle the first one made); any other non-empty ``dest`` is refused.
    """
    src = Path(source) if source is not None else bundle_path(name)
    dest = Path(dest)
    if keep_existing and (dest / "configs" / "metadata.json").is_file():
        return dest
    if dest.exists() and any(dest.iterdir()):
        raise BundleError(f"{dest} exists and is not empty: choose a new folder", reason="output_exists", path=dest)
    dest.mkdir(parents=True, exist_ok=True)
    for item in _COPIED:
        path = src / item
        if path.is_dir():
            shutil.copytree(path, dest / item, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        elif path.is_file():
            shutil.copy2(path, dest / item)
    return dest


def convert_checkpoint(checkpoint: str | Path, dest: str | Path) -> Path:
    """A new trained bundle at ``dest`` from an mcolor 0.1 checkpoint (the installed bundle's configs + the
    checkpoint's weights, spec and threshold); nothing is left at ``dest`` if the conversion fails."""
    from mcolor.artifact import convert_legacy_checkpoint

    dest = Path(dest)
    existed = dest.exists()
    init_bundle(dest)
    try:
        convert_legacy_checkpoint(checkpoint, dest)
    except BaseException:
        if not existed:
            shutil.rmtree(dest, ignore_errors=True)
        else:
            for item in _COPIED + ("models",):
                path = dest / item
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        raise
    return dest
