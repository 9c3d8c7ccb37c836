"""Pack a bundle folder (+ an optional trained checkpoint) into a MONAI-spec zip, ``NAME_vX.Y.Z.zip``.

The zip unpacks into ``NAME/`` (``configs/``, ``models/``, ``docs/``, ``LICENSE``, ``large_files.yml``).
With ``model``, the checkpoint is loaded weights-only (refusing pickled objects), copied to
``models/model.pt``, traced to ``models/model.ts`` (checked against eager; optionally ONNX too), their
sha256 recorded in ``large_files.yml``, and the metadata's ``network_data_format`` rewritten from the
checkpoint's spec so that it describes the packed model. The source folder is never modified, and the
zip is written atomically.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from mcolor import __version__
from mcolor.bundle import export
from mcolor.bundle.large_files import (
    LARGE_FILES,
    LargeFile,
    check_files,
    dump_large_files,
    read_large_files,
    sha256_file,
)
from mcolor.bundle.loading import MODEL_ONNX, MODEL_PT, MODEL_TS, REQUIRED_FILES
from mcolor.bundle.metadata import check_metadata, read_metadata
from mcolor.engines.atomic import atomic_open
from mcolor.engines.setup import TrainedModel, load_trained_model
from mcolor.errors import BundleError, McolorError

_VERSIONED = re.compile(r"_v(\d+\.\d+\.\d+[^/]*)\.zip$")
_SKIP = re.compile(r"(^|/)(__pycache__|\.[^/]*)(/|$)")
WEIGHT_SUFFIXES = (".pt", ".pth", ".ts", ".onnx", ".ckpt")


def default_zip_name(metadata: dict[str, Any], root: Path) -> str:
    """``NAME_vX.Y.Z.zip`` from the metadata."""
    return f"{metadata.get('name') or root.name}_v{metadata['version']}.zip"


def describe_model(metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``metadata`` whose ``network_data_format`` matches the checkpoint's spec."""
    meta = copy.deepcopy(metadata)
    size = int(spec["image_size"])
    inputs = meta["network_data_format"]["inputs"]
    next(iter(inputs.values()))["spatial_shape"] = [size, size]
    outputs = meta["network_data_format"]["outputs"]
    out = next(iter(outputs.values()))
    names = list(spec.get("output_names") or [str(i) for i in range(int(spec["num_classes"]))])
    out["num_channels"] = int(spec["num_classes"])
    kind = "logit of" if spec.get("task") != "multiclass" else "logit (softmax over classes) of"
    out["channel_def"] = {str(i): f"{kind} {name}" for i, name in enumerate(names)}
    meta["mcolor_model"] = {k: spec[k] for k in ("color_module", "backbone", "task", "labels", "image_size",
                                                 "letterbox", "imagenet_norm", "input_normalization")
                            if k in spec}
    return meta


def _copy_tree(src: Path, dst: Path, with_weights: bool) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if _SKIP.search(rel) or path.is_symlink() or not path.is_file():
            continue
        if rel == LARGE_FILES or (not with_weights and rel.startswith("models/")):
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _load(model: Path) -> TrainedModel:
    try:
        return load_trained_model(model)
    except McolorError as exc:
        raise BundleError(f"cannot pack {model}: {exc}", reason="bad_model", path=model) from exc


def pack_bundle(bundle_dir: str | Path, out: str | Path | None = None, *, model: str | Path | None = None,
                url: str = "", onnx: bool = False) -> Path:
    """Write the zip of ``bundle_dir`` (with ``model`` as its weights) and return its path.

    Args:
        bundle_dir: source bundle folder (valid metadata required).
        out: zip path; default ``dist/NAME_vX.Y.Z.zip``. A ``_vX.Y.Z`` in the name must match the metadata.
        model: trained checkpoint (``runs/.../model.pt``); without it, ``models/`` files already in the
            folder are packed as they are (they must then match the folder's ``large_files.yml``).
        url: base URL where the weights will be published (recorded in ``large_files.yml``).
        onnx: also export ``models/model.onnx`` (needs the ``onnx`` extra).
    """
    root = Path(bundle_dir)
    if not root.is_dir():
        raise BundleError(f"bundle folder not found: {root}", reason="not_found", path=root)
    meta = read_metadata(root)
    missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
    if missing:
        raise BundleError(f"cannot pack {root}: missing {', '.join(missing)}", reason="bad_layout", path=root)
    out = Path(out) if out is not None else Path("dist") / default_zip_name(meta, root)
    found = _VERSIONED.search(out.name)
    if found and found.group(1) != meta["version"]:
        raise BundleError(f"{out.name} says version {found.group(1)} but metadata.json has {meta['version']}",
                          reason="version_mismatch", path=out)
    name = str(meta.get("name") or root.name)
    with tempfile.TemporaryDirectory(prefix="mcolor-pack-") as tmp:
        stage = Path(tmp) / name
        _copy_tree(root, stage, with_weights=model is None)
        entries = read_large_files(root) if model is None else []
        sources: dict[str, str] = {}
        if model is not None:
            meta, entries, sources = _add_model(stage, meta, Path(model), url, onnx)
            (stage / "configs" / "metadata.json").write_text(_json(meta), encoding="utf-8")
        if entries:
            (stage / LARGE_FILES).write_text(dump_large_files(entries, sources), encoding="utf-8")
        check_files(stage, entries)
        _write_zip(stage, out)
    return out


def _add_model(stage: Path, meta: dict[str, Any], model: Path, url: str,
               onnx: bool) -> tuple[dict[str, Any], list[LargeFile], dict[str, str]]:
    trained = _load(model)
    meta = check_metadata(describe_model(meta, trained.spec), "packed metadata.json")
    models = stage / "models"
    if models.exists():
        shutil.rmtree(models)
    models.mkdir(parents=True)
    shutil.copyfile(model, stage / MODEL_PT)
    export.export_torchscript(trained, stage / MODEL_TS, meta, export.bundle_extra_files(stage))
    x = export.example_input(meta, trained.image_size, batch=3)
    export.compare_torchscript(trained.network, stage / MODEL_TS, x)
    files = [MODEL_PT, MODEL_TS]
    if onnx:
        if not export.onnx_available():
            raise BundleError("--onnx needs the onnx extra: pip install 'mcolor[onnx]'",
                              reason="missing_extra")
        export.export_onnx(trained.network, stage / MODEL_ONNX, x)
        export.compare_onnx(trained.network, stage / MODEL_ONNX, x)
        files.append(MODEL_ONNX)
    base = url.rstrip("/")
    entries = [LargeFile(f, sha256_file(stage / f), f"{base}/{Path(f).name}" if base else "") for f in files]
    sources = {MODEL_PT: f"{model} (packed by mcolor {__version__})"}
    sources.update({f: f"exported from {MODEL_PT} by mcolor {__version__}" for f in files[1:]})
    return meta, entries, sources


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"


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
