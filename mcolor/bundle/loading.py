"""Open a bundle (folder or ``.zip``) and load its model without running any of its config code.

A bundle's configs are Python in disguise (``"$..."`` expressions and ``_target_`` imports), so a shared
bundle is treated as data: :meth:`Bundle.load_model` opens the trained model through :mod:`mcolor.artifact`
(spec and operating point from ``configs/metadata.json``, weights read with ``weights_only=True``, the
network rebuilt from mcolor's registry on use); the configs are only parsed by
:meth:`Bundle.config_parser`, which refuses unless the bundle was opened with ``trust_bundle=True``.
Zips are checked entry by entry (paths, symlinks, size), and their metadata and ``large_files.yml``
hashes are verified from inside the archive, before anything is extracted.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mcolor.artifact import MODEL_ONNX, MODEL_PT, MODEL_TS, TrainedModel, load_trained_model
from mcolor.bundle.large_files import (
    LARGE_FILES,
    LargeFile,
    check_files,
    check_hash,
    parse_large_files,
    read_large_files,
    sha256_stream,
)
from mcolor.bundle.metadata import parse_metadata, read_metadata
from mcolor.bundle.safezip import MAX_UNCOMPRESSED_BYTES, extract, plan_extraction
from mcolor.errors import BundleError, McolorError

log = logging.getLogger(__name__)

#: Files every mcolor bundle must hold (weights aside: they are added by ``mcolor bundle pack``).
REQUIRED_FILES = ("configs/metadata.json", "configs/inference.json", "docs/README.md", "LICENSE")


@dataclass
class Bundle:
    """An opened bundle. ``root`` is the real folder (a temporary one for a zip: see :meth:`close`)."""

    root: Path
    metadata: dict[str, Any]
    large_files: list[LargeFile] = field(default_factory=list)
    trust_bundle: bool = False
    source: Path | None = None
    _tmp: Path | None = None

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or self.root.name)

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def model_path(self) -> Path:
        return self.root / MODEL_PT

    @property
    def ts_path(self) -> Path | None:
        path = self.root / MODEL_TS
        return path if path.is_file() else None

    @property
    def onnx_path(self) -> Path | None:
        path = self.root / MODEL_ONNX
        return path if path.is_file() else None

    def config_path(self, name: str) -> Path:
        """``configs/<name>`` (``.json`` added when no suffix is given)."""
        path = self.root / "configs" / (name if Path(name).suffix else f"{name}.json")
        if not path.is_file():
            raise BundleError(f"bundle {self.name} has no configs/{path.name}", reason="missing_config",
                              path=path)
        return path

    def check_hashes(self, only: list[str] | None = None) -> list[str]:
        """Hash the files ``large_files.yml`` lists (or ``only`` those); raise on a mismatch."""
        return check_files(self.root, self.large_files, only)

    def load_model(self, device: str | torch.device = "cpu") -> TrainedModel:
        """The trained model: metadata's spec and operating point, ``models/model.pt`` hash-checked and read
        weights-only once here (a refused or legacy file fails now, not at the first forward pass)."""
        path = self.model_path
        if not path.is_file():
            urls = [e.url for e in self.large_files if e.path == MODEL_PT and e.url]
            hint = (f"; download it with `python -m monai.bundle download_large_files --bundle_path "
                    f"{self.root}`") if urls else " (an untrained bundle: train it first)"
            raise BundleError(f"bundle {self.name} has no {MODEL_PT}{hint}", reason="missing_model", path=path)
        if not self.check_hashes([MODEL_PT]) and not (self.metadata.get("mcolor_model") or {}).get(
                "provenance", {}).get("weights_sha256"):
            log.warning("%s is not listed in large_files.yml nor described by the metadata: its integrity "
                        "cannot be checked", path)
        try:
            trained = load_trained_model(self.root, device)
            trained.state_dict()
        except BundleError:
            raise
        except McolorError as exc:
            reason = "unsafe_checkpoint" if exc.reason == "unsafe_checkpoint" else "bad_model"
            raise BundleError(f"{path}: cannot load the model: {exc}", reason=reason, path=path) from exc
        return trained

    def config_parser(self, config: str = "inference.json", **overrides: Any) -> Any:
        """A MONAI ``ConfigParser`` over ``config`` + metadata; only for bundles opened with ``trust_bundle``.

        Parsing a config can import and run any Python (``$`` expressions, ``_target_``), hence the gate.
        """
        if not self.trust_bundle:
            raise BundleError(f"bundle {self.name}: its configs run Python code ($ expressions); open "
                              "it with trust_bundle=True (--trust-bundle) only if you trust its author",
                              reason="untrusted_bundle", path=self.root)
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config(str(self.config_path(config)))
        parser.read_meta(str(self.root / "configs" / "metadata.json"))
        parser.update({"bundle_root": str(self.root), **overrides})
        return parser

    def close(self) -> None:
        """Delete the temporary folder a zip was extracted to (no-op for a folder bundle)."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_bundle(path: str | Path, *, trust_bundle: bool = False, workdir: Path | None = None,
                max_bytes: int = MAX_UNCOMPRESSED_BYTES) -> Bundle:
    """Open a bundle folder or zip; metadata and large-file hashes are checked before anything else.

    Args:
        path: a bundle folder (``configs/metadata.json`` inside) or a ``.zip`` (``NAME/configs/...``).
        trust_bundle: allow :meth:`Bundle.config_parser` (running the bundle's ``$`` expressions).
        workdir: where a zip is extracted (a new sub-folder); a temporary folder, removed at exit or by
            :meth:`Bundle.close`, by default.
        max_bytes: cap on a zip's total uncompressed size.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        meta = read_metadata(path)
        entries = read_large_files(path)
        check_files(path, entries)
        return Bundle(path.resolve(), meta, entries, trust_bundle, path)
    if not path.exists():
        raise BundleError(f"bundle not found: {path}", reason="not_found", path=path)
    if not zipfile.is_zipfile(path):
        raise BundleError(f"{path} is neither a bundle folder nor a zip", reason="bad_bundle", path=path)
    return _open_zip(path, trust_bundle, workdir, max_bytes)


def _open_zip(path: Path, trust_bundle: bool, workdir: Path | None, max_bytes: int) -> Bundle:
    try:
        with zipfile.ZipFile(path) as zf:
            plan = plan_extraction(zf, path, max_bytes)
            names = set(zf.namelist())
            meta_name = f"{plan.prefix}configs/metadata.json"
            meta = parse_metadata(zf.read(meta_name), f"{path}:configs/metadata.json")
            entries: list[LargeFile] = []
            if f"{plan.prefix}{LARGE_FILES}" in names:
                entries = parse_large_files(zf.read(f"{plan.prefix}{LARGE_FILES}"), f"{path}:{LARGE_FILES}")
            for entry in entries:
                if f"{plan.prefix}{entry.path}" in names:
                    with zf.open(f"{plan.prefix}{entry.path}") as fh:
                        check_hash(entry, sha256_stream(fh), f"{path}:{entry.path}")
            if workdir is not None:
                Path(workdir).mkdir(parents=True, exist_ok=True)
            dest = Path(tempfile.mkdtemp(prefix="mcolor-bundle-", dir=workdir))
            try:
                extract(zf, plan, dest)
            except BaseException:
                shutil.rmtree(dest, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise BundleError(f"{path}: unreadable zip ({exc})", reason="bad_zip", path=path) from exc
    if workdir is None:
        atexit.register(shutil.rmtree, dest, True)
    return Bundle((dest / plan.prefix).resolve(), meta, entries, trust_bundle, path, dest)
