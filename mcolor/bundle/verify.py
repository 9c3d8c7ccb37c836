"""Offline bundle verification: one report over metadata, layout, hashes, shapes and exports.

Nothing is downloaded (the metadata schema ships with mcolor) and, unless ``trust_bundle`` is set,
none of the bundle's config code runs: the network is rebuilt from mcolor's registry and the
checkpoint's ``spec`` (or, without weights, from the literal defaults of ``train.json``). With
``trust_bundle`` MONAI's own ``verify_net_in_out`` also runs on the config's ``network_def``.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mcolor.bundle import export
from mcolor.bundle.large_files import LARGE_FILES, check_files, sha256_file
from mcolor.bundle.loading import MODEL_ONNX, MODEL_PT, MODEL_TS, REQUIRED_FILES, Bundle, open_bundle
from mcolor.bundle.metadata import metadata_problems, schema_path
from mcolor.engines.setup import TrainedModel
from mcolor.errors import BundleError, McolorError
from mcolor.networks import ColorizedClassifier

PASS, FAIL, SKIP = "pass", "fail", "skip"
CHECKS = ("archive", "metadata", "layout", "large_files", "model", "net_in_out", "ckpt_export", "onnx")
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
    detail = f"valid against {schema_path().name}"
    if "schema" in bundle.metadata:
        from monai.bundle import verify_metadata

        meta_file = bundle.root / "configs" / "metadata.json"
        try:  # filepath exists, so MONAI skips its download and validates against our schema
            verify_metadata(meta_file=str(meta_file), filepath=str(schema_path()), create_dir=False,
                            hash_val=sha256_file(schema_path()), hash_type="sha256")
        except Exception as exc:  # noqa: BLE001
            report.add("metadata", FAIL, f"monai.bundle.verify_metadata: {exc}", "bad_metadata")
            return
        detail += " (also by monai.bundle.verify_metadata)"
    report.add("metadata", PASS, detail)


def _check_layout(bundle: Bundle, report: VerifyReport) -> None:
    missing = [f for f in REQUIRED_FILES if not (bundle.root / f).is_file()]
    if missing:
        report.add("layout", FAIL, f"missing {', '.join(missing)}", "bad_layout")
    else:
        report.add("layout", PASS, "configs/, docs/README.md, LICENSE present")


def _check_large_files(bundle: Bundle, report: VerifyReport) -> None:
    try:
        checked = check_files(bundle.root, bundle.large_files)
    except BundleError as exc:
        report.add("large_files", FAIL, str(exc), exc.reason)
        return
    listed = {e.path for e in bundle.large_files}
    present = [p for p in (MODEL_PT, MODEL_TS, MODEL_ONNX) if (bundle.root / p).is_file()]
    unlisted = [p for p in present if p not in listed]
    absent = sorted(listed - set(checked))
    if unlisted:
        report.add("large_files", FAIL, f"{', '.join(unlisted)} not listed in {LARGE_FILES}: integrity "
                   "unknown", "unlisted_file")
        return
    detail = f"{len(checked)} file(s) match their sha256" if listed else "no large files listed"
    if absent:
        detail += f"; listed but absent: {', '.join(absent)}"
    report.add("large_files", PASS if checked or not listed else SKIP, detail)


def _check_model(bundle: Bundle, report: VerifyReport) -> TrainedModel | None:
    if not bundle.model_path.is_file():
        report.add("model", SKIP, f"no {MODEL_PT} (weights are not kept in git; pack with --model)")
        return None
    try:
        model = bundle.load_model()
    except BundleError as exc:
        report.add("model", FAIL, str(exc), exc.reason)
        return None
    s = model.spec
    report.add("model", PASS, f"{s['color_module']} + {s['backbone']}, {s['num_classes']} output(s), "
                              f"image_size {s['image_size']} (weights-only load)")
    return model


def _literal_defaults(bundle: Bundle) -> dict[str, Any]:
    """Plain values of train.json (no ``$``/``@`` expression is evaluated)."""
    path = bundle.root / "configs" / "train.json"
    cfg = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    out = {}
    defaults = {"color_module": "coloru", "backbone": "efficientnet_lite0", "imagenet_norm": "auto"}
    for key, fallback in defaults.items():
        value = cfg.get(key, fallback)
        out[key] = fallback if isinstance(value, str) and value[:1] in "$@%" else value
    return out


def _io_spec(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    fmt = meta["network_data_format"]
    return next(iter(fmt["inputs"].values())), next(iter(fmt["outputs"].values()))


def _check_net_in_out(bundle: Bundle, model: TrainedModel | None, report: VerifyReport) -> None:
    inp, outp = _io_spec(bundle.metadata)
    c_out = int(outp["num_channels"])
    try:
        if model is not None:
            spec, net, size = model.spec, model.network, model.image_size
            problems = _spec_vs_metadata(spec, inp, outp)
        else:
            spec = {**_literal_defaults(bundle), "num_classes": c_out}
            net = ColorizedClassifier(spec["color_module"], spec["backbone"], c_out, pretrained=False,
                                      imagenet_norm=spec["imagenet_norm"]).eval()
            size, problems = None, []
        x = export.example_input(bundle.metadata, size)
        with torch.no_grad():
            y = net(x)
    except McolorError as exc:
        report.add("net_in_out", FAIL, str(exc), exc.reason)
        return
    want_spatial = math.prod(d for d in outp["spatial_shape"] if isinstance(d, int))
    fits = y.ndim >= 2 and y.shape[:2] == (x.shape[0], c_out) and math.prod(y.shape[2:]) == want_spatial
    if not fits:
        problems.append(f"output shape {tuple(y.shape)} does not fit num_channels={c_out}, "
                        f"spatial_shape={outp['spatial_shape']}")
    if str(y.dtype).removeprefix("torch.") != outp["dtype"]:
        problems.append(f"output dtype {y.dtype} is not {outp['dtype']}")
    if problems:
        report.add("net_in_out", FAIL, "; ".join(problems), "net_io_mismatch")
        return
    detail = (f"{tuple(x.shape)} {x.dtype} -> {tuple(y.shape)} {y.dtype} "
              f"({spec['color_module']} + {spec['backbone']})")
    if bundle.trust_bundle and (bundle.root / "configs" / "train.json").is_file():
        error = _monai_net_in_out(bundle, spec, c_out)
        if error:
            report.add("net_in_out", FAIL, error, "net_io_mismatch")
            return
        detail += "; monai.bundle.verify_net_in_out ok"
    report.add("net_in_out", PASS, detail)


def _spec_vs_metadata(spec: dict[str, Any], inp: dict[str, Any], outp: dict[str, Any]) -> list[str]:
    problems = []
    size = int(spec["image_size"])
    if [d for d in inp["spatial_shape"] if isinstance(d, int)] not in ([], [size, size]):
        problems.append(f"metadata input spatial_shape {inp['spatial_shape']} but the model was trained at "
                        f"{size}x{size}")
    c_out = int(outp["num_channels"])
    if int(spec["num_classes"]) != c_out or len(outp["channel_def"]) != c_out:
        problems.append(f"model has {spec['num_classes']} output(s); metadata num_channels "
                        f"{outp['num_channels']}, channel_def {len(outp['channel_def'])}")
    return problems


def _monai_net_in_out(bundle: Bundle, spec: dict[str, Any], c_out: int) -> str | None:
    """MONAI's ``verify_net_in_out`` on ``network_def`` (runs config code: trusted bundles only);
    the error text, or None when it passes."""
    from monai.bundle import verify_net_in_out

    overrides = {"network_def#num_classes": c_out, "pretrained": False, "color_module": spec["color_module"],
                 "backbone": spec["backbone"], "imagenet_norm": spec.get("imagenet_norm", "auto"),
                 "bundle_root": str(bundle.root)}
    try:
        verify_net_in_out(net_id="network_def", meta_file=str(bundle.root / "configs" / "metadata.json"),
                          config_file=str(bundle.root / "configs" / "train.json"), device="cpu", **overrides)
    except Exception as exc:  # noqa: BLE001
        return f"monai.bundle.verify_net_in_out: {type(exc).__name__}: {exc}"
    return None


def _check_exports(bundle: Bundle, model: TrainedModel | None, report: VerifyReport, onnx: bool) -> None:
    if model is None:
        report.add("ckpt_export", SKIP, "needs models/model.pt")
        report.add("onnx", SKIP, "needs models/model.pt")
        return
    x = export.example_input(bundle.metadata, model.image_size, batch=3, seed=1)
    listed = {e.path for e in bundle.large_files}
    with tempfile.TemporaryDirectory(prefix="mcolor-verify-") as tmp:
        ts = bundle.ts_path
        shipped = ts is not None and (MODEL_TS in listed or bundle.trust_bundle)
        try:
            if not shipped:
                ts = export.export_torchscript(model, Path(tmp) / "model.ts", bundle.metadata)
            diff = export.compare_torchscript(model.network, ts, x)
            what = f"shipped {MODEL_TS}" if shipped else f"fresh trace (no hash-listed {MODEL_TS} shipped)"
            report.add("ckpt_export", PASS, f"{what}: max |ts - eager| = {diff:.2g}")
        except (McolorError, RuntimeError) as exc:
            report.add("ckpt_export", FAIL, str(exc), getattr(exc, "reason", "export_failed"))
        if not onnx:
            report.add("onnx", SKIP, "disabled (--no-onnx)")
        elif not export.onnx_available():
            report.add("onnx", SKIP, "onnx/onnxruntime not installed (pip install 'mcolor[onnx]')")
        else:
            _check_onnx(bundle, model, x, Path(tmp), report)


def _check_onnx(bundle: Bundle, model: TrainedModel, x: torch.Tensor, tmp: Path,
                report: VerifyReport) -> None:
    path = bundle.onnx_path
    try:
        if path is None:
            path = export.export_onnx(model.network, tmp / "model.onnx", x)
        diff = export.compare_onnx(model.network, path, x)
        what = f"shipped {MODEL_ONNX}" if bundle.onnx_path else "fresh export"
        report.add("onnx", PASS, f"{what}: max |onnx - eager| = {diff:.2g} (<= {export.ONNX_ATOL})")
    except (McolorError, RuntimeError, ValueError) as exc:
        report.add("onnx", FAIL, f"{type(exc).__name__}: {exc}", getattr(exc, "reason", "export_failed"))
