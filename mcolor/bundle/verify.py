"""Offline bundle verification: the MONAI model zoo's checks, plus mcolor's, in one report.

The zoo's CI (``ci/verify_bundle.py`` of Project-MONAI/model-zoo, read for this module: see
``docs/bundle_ecosystem.md``) checks, in order: the required files (``LICENSE``, ``configs/metadata.json``,
``models/model.pt``, ``configs/inference.json``) after fetching ``large_files``; that ``version`` has a
changelog entry; ``monai.bundle.verify_metadata`` against the schema; then, in full mode,
``monai.bundle.verify_net_in_out`` on ``network_def`` of ``inference.json`` and ``monai.bundle.ckpt_export`` of
``models/model.pt``. Here those run with the very same MONAI calls and arguments, offline: the schema is
vendored (the nearest published text of MONAI's metadata schema, and mcolor's stricter one), and ``large_files``
entries are checked for the keys ``download_url`` accepts and for their hashes instead of being downloaded.
mcolor adds what the zoo leaves out: the exported TorchScript must *equal* the eager network (the zoo only
checks that it exports), the shipped ``model.ts``/``model.onnx`` too, and the weights must be the ones the
metadata describes.

Parsing configs runs their ``$`` expressions, so the MONAI calls need ``trust_bundle``; without it the same
properties are checked on the network rebuilt from the metadata's spec, and no config code runs.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mcolor.artifact import MODEL_ONNX, MODEL_PT, MODEL_TS, SECTION, TrainedModel, write_torchscript
from mcolor.bundle import export
from mcolor.bundle.large_files import LARGE_FILES, check_files
from mcolor.bundle.loading import Bundle, open_bundle
from mcolor.bundle.metadata import metadata_problems, monai_schema_path, schema_path
from mcolor.errors import BundleError, McolorError
from mcolor.extras import install_hint

PASS, FAIL, SKIP = "pass", "fail", "skip"
CHECKS = ("archive", "metadata", "layout", "large_files", "model", "net_in_out", "ckpt_export", "onnx")
#: Files the zoo's ``verify_bundle_directory`` requires (``models/model.pt`` is its "preferred" file).
ZOO_FILES = ("LICENSE", "configs/metadata.json", "configs/inference.json", MODEL_PT)
#: mcolor's own addition: the model card.
MCOLOR_FILES = ("docs/README.md",)
#: The keys a ``large_files`` entry may have: the zoo passes each entry to ``monai.apps.utils.download_url``.
LARGE_FILE_KEYS = {"path", "url", "hash_val", "hash_type"}
_OPEN_FAILURES = {"missing_metadata": "metadata", "bad_metadata": "metadata", "hash_mismatch": "large_files",
                  "bad_large_files": "large_files", "unsafe_path": "large_files"}


@dataclass
class Check:
    """One verification step: ``pass``, ``fail`` or ``skip`` with a human sentence."""

    name: str
    status: str
    detail: str
    reason: str | None = None


@dataclass
class VerifyReport:
    """All checks of one bundle; ``ok`` when none failed."""

    source: str
    name: str | None = None
    version: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def add(self, name: str, status: str, detail: str, reason: str | None = None) -> None:
        self.checks.append(Check(name, status, detail, reason))

    def status(self, name: str) -> str | None:
        return next((c.status for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "version": self.version, "ok": self.ok,
                "checks": [asdict(c) for c in self.checks]}

    def format_text(self) -> str:
        head = f"bundle {self.name or '?'} {self.version or ''} ({self.source})".replace("  ", " ")
        lines = [head] + [f"  [{c.status.upper():4}] {c.name}: {c.detail}" for c in self.checks]
        failed = [c.name for c in self.checks if c.status == FAIL]
        lines.append(f"FAILED: {', '.join(failed)}" if failed else "OK")
        return "\n".join(lines)


def verify_bundle(path: str | Path, *, trust_bundle: bool = False, onnx: bool = True,
                  workdir: Path | None = None) -> VerifyReport:
    """Run every check on the bundle folder or zip at ``path`` and return the report (never raises
    for a bundle problem: those become failed checks)."""
    report = VerifyReport(str(path))
    try:
        bundle = open_bundle(path, trust_bundle=trust_bundle, workdir=workdir)
    except BundleError as exc:
        failed = _OPEN_FAILURES.get(exc.reason, "archive")
        for name in CHECKS:
            if name == failed:
                report.add(name, FAIL, str(exc), exc.reason)
            else:
                report.add(name, SKIP, "not run: the bundle was refused", None)
        return report
    with bundle:
        report.name, report.version = bundle.name, bundle.version
        report.add("archive", PASS, "folder" if bundle.source and bundle.source.is_dir()
                   else f"zip entries checked, extracted to {bundle.root}")
        _check_metadata(bundle, report)
        _check_layout(bundle, report)
        _check_large_files(bundle, report)
        model = _check_model(bundle, report)
        _check_net_in_out(bundle, model, report)
        _check_exports(bundle, model, report, onnx)
    return report


def _check_metadata(bundle: Bundle, report: VerifyReport) -> None:
    problems = metadata_problems(bundle.metadata)
    if problems:  # pragma: no cover - open_bundle already refused these
        report.add("metadata", FAIL, "; ".join(problems), "bad_metadata")
        return
    from monai.bundle import verify_metadata

    meta_file = bundle.root / "configs" / "metadata.json"
    checked = []
    for schema in (monai_schema_path(), schema_path()):
        try:  # filepath exists, so MONAI skips its download and validates against the vendored schema
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                verify_metadata(meta_file=str(meta_file), filepath=str(schema), create_dir=False)
        except Exception as exc:  # MONAI raises ValueError with jsonschema's message
            report.add("metadata", FAIL, f"monai.bundle.verify_metadata against {schema.name}: {exc}",
                       "bad_metadata")
            return
        checked.append(schema.name)
    report.add("metadata", PASS, f"monai.bundle.verify_metadata against {' and '.join(checked)}; version "
                                 f"{bundle.version} has a changelog entry")


def _check_layout(bundle: Bundle, report: VerifyReport) -> None:
    missing = [f for f in ZOO_FILES + MCOLOR_FILES if not (bundle.root / f).is_file()]
    if missing:
        hint = " (an untrained bundle: train it first)" if missing == [MODEL_PT] else ""
        report.add("layout", FAIL, f"missing {', '.join(missing)}{hint}", "bad_layout")
    else:
        report.add("layout", PASS, f"{', '.join(ZOO_FILES + MCOLOR_FILES)} present")


def _check_large_files(bundle: Bundle, report: VerifyReport) -> None:
    path = bundle.root / LARGE_FILES
    if path.is_file():
        import yaml

        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        extra = sorted({k for e in doc.get("large_files") or [] for k in e} - LARGE_FILE_KEYS)
        if extra:
            report.add("large_files", FAIL, f"entries hold keys the zoo cannot pass to download_url: {extra}",
                       "bad_large_files")
            return
    try:
        checked = check_files(bundle.root, bundle.large_files)
    except BundleError as exc:
        report.add("large_files", FAIL, str(exc), exc.reason)
        return
    listed = {e.path for e in bundle.large_files}
    covered = {MODEL_PT} if (bundle.metadata.get(SECTION) or {}).get("provenance", {}).get("weights_sha256") else set()
    present = [p for p in (MODEL_PT, MODEL_TS, MODEL_ONNX) if (bundle.root / p).is_file()]
    unlisted = [p for p in present if p not in listed and p not in covered and p != MODEL_TS]
    if unlisted:
        report.add("large_files", FAIL, f"{', '.join(unlisted)} not listed in {LARGE_FILES} nor described by the "
                   "metadata: integrity unknown", "unlisted_file")
        return
    detail = f"{len(checked)} listed file(s) match their sha256" if listed else "no large files listed"
    if covered and MODEL_PT not in listed:
        detail += f"; {MODEL_PT} is covered by the metadata's weights_sha256"
    report.add("large_files", PASS, detail)


def _check_model(bundle: Bundle, report: VerifyReport) -> TrainedModel | None:
    if not bundle.model_path.is_file():
        report.add("model", SKIP, f"no {MODEL_PT} (an untrained bundle)")
        return None
    try:
        model = bundle.load_model()
        model.network  # noqa: B018 - strict load into the network the metadata describes
    except McolorError as exc:
        report.add("model", FAIL, str(exc), exc.reason)
        return None
    s = model.spec
    report.add("model", PASS, f"{s.color_module} + {s.backbone}, {s.num_classes} output(s), image_size "
                              f"{s.image_size}, {s.letterbox}; weights are the ones the metadata describes")
    return model


def _io_spec(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    fmt = meta["network_data_format"]
    return fmt["inputs"]["image"], fmt["outputs"]["pred"]


def _check_net_in_out(bundle: Bundle, model: TrainedModel | None, report: VerifyReport) -> None:
    inp, outp = _io_spec(bundle.metadata)
    if bundle.trust_bundle:
        from monai.bundle import verify_net_in_out

        try:  # the zoo's verify_data_shape, verbatim
            verify_net_in_out(net_id="network_def", meta_file=str(bundle.root / "configs" / "metadata.json"),
                              config_file=str(bundle.root / "configs" / "inference.json"),
                              bundle_root=str(bundle.root), device="cpu")
        except Exception as exc:  # MONAI raises ValueError/KeyError with its own message
            report.add("net_in_out", FAIL, f"monai.bundle.verify_net_in_out: {type(exc).__name__}: {exc}",
                       "net_io_mismatch")
            return
        report.add("net_in_out", PASS, f"monai.bundle.verify_net_in_out on inference.json#network_def: input "
                                       f"(1, {inp['num_channels']}, {inp['spatial_shape']}) -> "
                                       f"{outp['num_channels']} {outp['dtype']}")
        return
    if model is None:
        report.add("net_in_out", SKIP, "needs a trained model, or --trust-bundle to build inference.json's network")
        return
    x = export.example_input(bundle.metadata, model.image_size)
    with torch.no_grad():
        y = model.network(x)
    problems = []
    if y.ndim != 2 or y.shape[1] != int(outp["num_channels"]):
        problems.append(f"output shape {tuple(y.shape)} does not fit num_channels={outp['num_channels']}")
    if str(y.dtype).removeprefix("torch.") != outp["dtype"]:
        problems.append(f"output dtype {y.dtype} is not {outp['dtype']}")
    if [d for d in inp["spatial_shape"] if isinstance(d, int)] not in ([], [model.image_size] * 2):
        problems.append(f"metadata input spatial_shape {inp['spatial_shape']} but the model takes {model.image_size}")
    if problems:
        report.add("net_in_out", FAIL, "; ".join(problems), "net_io_mismatch")
    else:
        report.add("net_in_out", PASS, f"{tuple(x.shape)} {x.dtype} -> {tuple(y.shape)} {y.dtype}")


def _check_exports(bundle: Bundle, model: TrainedModel | None, report: VerifyReport, onnx: bool) -> None:
    if model is None:
        report.add("ckpt_export", SKIP, f"needs {MODEL_PT}")
        report.add("onnx", SKIP, f"needs {MODEL_PT}")
        return
    x = export.example_input(bundle.metadata, model.image_size, batch=3, seed=1)
    with tempfile.TemporaryDirectory(prefix="mcolor-verify-") as tmp:
        try:
            fresh = Path(tmp) / "verify_model.ts"
            if bundle.trust_bundle:
                from monai.bundle import ckpt_export

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ckpt_export(net_id="network_def", filepath=str(fresh), ckpt_file=str(bundle.model_path),
                                meta_file=str(bundle.root / "configs" / "metadata.json"),
                                config_file=str(bundle.root / "configs" / "inference.json"),
                                bundle_root=str(bundle.root))
                how = "monai.bundle.ckpt_export (strict load of models/model.pt)"
            else:
                write_torchscript(bundle.root, fresh)
                how = "scripted from the metadata's spec"
            details = [f"{how}: max |ts - eager| = {export.compare_torchscript(model.network, fresh, x):.2g}"]
            if bundle.ts_path is not None:
                diff = export.compare_torchscript(model.network, bundle.ts_path, x)
                details.append(f"shipped {MODEL_TS}: {diff:.2g}")
            report.add("ckpt_export", PASS, "; ".join(details))
        except (McolorError, RuntimeError, ValueError) as exc:
            report.add("ckpt_export", FAIL, f"{type(exc).__name__}: {exc}", getattr(exc, "reason", "export_failed"))
        if not onnx:
            report.add("onnx", SKIP, "disabled (--no-onnx)")
        elif not export.onnx_available():
            report.add("onnx", SKIP, f"onnx/onnxruntime not installed ({install_hint('onnx')})")
        else:
            _check_onnx(bundle, model, x, Path(tmp), report)


def _check_onnx(bundle: Bundle, model: TrainedModel, x: torch.Tensor, tmp: Path, report: VerifyReport) -> None:
    path = bundle.onnx_path
    try:
        if path is None:
            path = export.export_onnx(model.network, tmp / "model.onnx", x)
        diff = export.compare_onnx(model.network, path, x)
        what = f"shipped {MODEL_ONNX}" if bundle.onnx_path else "fresh export"
        report.add("onnx", PASS, f"{what}: max |onnx - eager| = {diff:.2g} (<= {export.ONNX_ATOL})")
    except (McolorError, RuntimeError, ValueError) as exc:
        report.add("onnx", FAIL, f"{type(exc).__name__}: {exc}", getattr(exc, "reason", "export_failed"))
