"""Pack a trained bundle folder into a MONAI-spec zip, ``NAME_vX.Y.Z.zip``, ready for a model zoo.

The zip unpacks into ``NAME/`` (``configs/``, ``models/``, ``docs/``, ``LICENSE``, ``large_files.yml``). The
source must be a trained bundle (``models/model.pt`` described by ``configs/metadata.json``): the model is
loaded and checked first, ``models/model.ts`` is exported in MONAI's ``ckpt_export`` format (configs embedded as
extra files) and compared with the eager network, optionally ``models/model.onnx`` too, and their sha256 go
into ``large_files.yml``. Training outputs (``eval/``, caches) are left out. The source folder is never
modified, and the zip is written atomically.

A packed bundle's ``train.json`` says ``pretrained: false``: the trained weights supersede ImageNet's, a path
would point at the packing machine, and ``packaged`` fits only EfficientNet-Lite0, so ``monai.bundle.load(...,
workflow_type="train")`` builds the network of any trained backbone without fetching weights. Pass
``--pretrained`` to re-train the packed bundle from ImageNet.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from mcolor import __version__
from mcolor.artifact import MODEL_ONNX, MODEL_PT, MODEL_TS, load_trained_model, write_torchscript
from mcolor.atomic import atomic_open
from mcolor.bundle import export
from mcolor.bundle.large_files import LARGE_FILES, LargeFile, check_files, dump_large_files, sha256_file
from mcolor.bundle.loading import REQUIRED_FILES
from mcolor.bundle.metadata import read_metadata
from mcolor.errors import BundleError, McolorError
from mcolor.extras import require

_VERSIONED = re.compile(r"_v(\d+\.\d+\.\d+[^/]*)\.zip$")
#: Never packed: training outputs, caches, hidden files, and weights (re-added from the checked model).
_SKIP = re.compile(r"(^|/)(__pycache__|\.[^/]*)(/|$)|^(eval|runs|models)(/|$)")
WEIGHT_SUFFIXES = (".pt", ".pth", ".ts", ".onnx", ".ckpt")


def default_zip_name(metadata: dict[str, Any], root: Path) -> str:
    """``NAME_vX.Y.Z.zip`` from the metadata."""
    return f"{metadata.get('name') or root.name}_v{metadata['version']}.zip"


def _copy_tree(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if _SKIP.search(rel) or rel == LARGE_FILES or path.is_symlink() or not path.is_file():
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def portable_train_config(stage: Path) -> None:
    """The packed ``train.json`` builds the trained network without ImageNet weights (see the module doc)."""
    path = stage / "configs" / "train.json"
    if not path.is_file():
        return
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if cfg.get("pretrained") is not False:
        cfg["pretrained"] = False
        path.write_text(json.dumps(cfg, indent=4) + "\n", encoding="utf-8")


def pack_bundle(bundle_dir: str | Path, out: str | Path | None = None, *, url: str = "", onnx: bool = False) -> Path:
    """Write the zip of the trained bundle ``bundle_dir`` and return its path.

    Args:
        bundle_dir: a trained bundle folder (valid metadata, ``models/model.pt`` described by it).
        out: zip path; default ``dist/NAME_vX.Y.Z.zip``. A ``_vX.Y.Z`` in the name must match the metadata.
        url: base URL where the weights will be published (recorded in ``large_files.yml``).
        onnx: also export ``models/model.onnx`` (needs the ``onnx`` extra).
    """
    root = Path(bundle_dir)
    if onnx:  # before any work: a missing extra is known now, not after the TorchScript export
        require("onnx", "mcolor bundle pack --onnx")
    if not root.is_dir():
        raise BundleError(f"bundle folder not found: {root}", reason="not_found", path=root)
    meta = read_metadata(root)
    missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
    if missing:
        raise BundleError(f"cannot pack {root}: missing {', '.join(missing)}", reason="bad_layout", path=root)
    try:
        trained = load_trained_model(root)
        trained.network  # noqa: B018 - the weights must load strictly into the described network
    except McolorError as exc:
        raise BundleError(f"cannot pack {root}: {exc}", reason=getattr(exc, "reason", "bad_model"),
                          path=root) from exc
    out = Path(out) if out is not None else Path("dist") / default_zip_name(meta, root)
    found = _VERSIONED.search(out.name)
    if found and found.group(1) != meta["version"]:
        raise BundleError(f"{out.name} says version {found.group(1)} but metadata.json has {meta['version']}",
                          reason="version_mismatch", path=out)
    name = str(meta.get("name") or root.name)
    with tempfile.TemporaryDirectory(prefix="mcolor-pack-") as tmp:
        stage = Path(tmp) / name
        _copy_tree(root, stage)
        portable_train_config(stage)
        (stage / "models").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / MODEL_PT, stage / MODEL_PT)
        write_torchscript(stage)  # configs as packed (portable) go inside model.ts
        files = [MODEL_PT, MODEL_TS]
        if onnx:
            x = export.example_input(meta, trained.image_size, batch=3)
            export.export_onnx(trained.network, stage / MODEL_ONNX, x)
            export.compare_onnx(trained.network, stage / MODEL_ONNX, x)
            files.append(MODEL_ONNX)
        base = url.rstrip("/")
        entries = [LargeFile(f, sha256_file(stage / f), f"{base}/{Path(f).name}" if base else "") for f in files]
        sources = {MODEL_PT: f"{root.name}/{MODEL_PT} (packed by mcolor {__version__})"}
        sources.update({f: f"exported from {MODEL_PT} by mcolor {__version__}" for f in files[1:]})
        (stage / LARGE_FILES).write_text(dump_large_files(entries, sources), encoding="utf-8")
        check_files(stage, entries)
        _write_zip(stage, out)
    return out


def _write_zip(stage: Path, out: Path) -> None:
    files = sorted(p for p in stage.rglob("*") if p.is_file())
    with atomic_open(out, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            arcname = f"{stage.name}/{path.relative_to(stage).as_posix()}"
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            stored = path.suffix in WEIGHT_SUFFIXES  # already compressed zips/binaries
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            with open(path, "rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst)
