"""Export a trained model to TorchScript / ONNX (checked against eager) and its colour module alone.

TorchScript is produced by tracing the network rebuilt from mcolor's registry (``torch.jit.script``
does not handle timm backbones) and saved with MONAI's ``save_net_with_metadata`` so the file carries
``metadata.json`` like ``python -m monai.bundle ckpt_export`` would. A traced model is specialised to
the input size it was traced with: the bundle metadata's ``spatial_shape`` (the training image size).
ONNX needs the optional ``onnx`` extra (``pip install 'mcolor[onnx]'``).
"""

from __future__ import annotations

import importlib.util
import io
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mcolor.engines.atomic import atomic_open
from mcolor.engines.setup import TrainedModel, load_trained_model
from mcolor.engines.transfer import export_color_module
from mcolor.errors import BundleError

TS_RTOL, TS_ATOL = 1e-5, 1e-6
ONNX_ATOL = 1e-4


def input_shape(metadata: Mapping[str, Any], image_size: int | None = None,
                batch: int = 2) -> tuple[int, ...]:
    """``(batch, C, H, W)`` of the metadata's first input; ``"*"``-like sizes become ``image_size``."""
    inputs = metadata["network_data_format"]["inputs"]
    spec = inputs.get("image") or next(iter(inputs.values()))
    dims = []
    for d in spec["spatial_shape"]:
        if isinstance(d, int):
            dims.append(d)
        elif image_size is not None:
            dims.append(int(image_size))
        else:
            raise BundleError(f"cannot build an example input for spatial size {d!r} without an image size",
                              reason="bad_metadata")
    return (batch, int(spec["num_channels"]), *dims)


def example_input(metadata: Mapping[str, Any], image_size: int | None = None, batch: int = 2,
                  seed: int = 0) -> torch.Tensor:
    """Reproducible random input in the metadata's value range and dtype."""
    spec = next(iter(metadata["network_data_format"]["inputs"].values()))
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(input_shape(metadata, image_size, batch), generator=gen)
    lo, hi = (spec.get("value_range") or [0, 1])[:2]
    return (lo + (hi - lo) * x).to(getattr(torch, spec.get("dtype", "float32")))


def trace(network: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """Trace ``network`` in eval mode (tracer warnings about shape-dependent branches are expected)."""
    network.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(network, example[:1], check_trace=False)


def export_torchscript(model: TrainedModel, out: str | Path, metadata: Mapping[str, Any],
                       extra_files: Mapping[str, bytes] | None = None) -> Path:
    """Trace ``model`` and save it (atomically) with ``metadata.json`` and ``extra_files`` embedded."""
    from monai.data import save_net_with_metadata

    ts = trace(model.network, example_input(metadata, model.image_size))
    out = Path(out)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.save is deprecated, still MONAI's format
        save_net_with_metadata(ts, buf, include_config_vals=False, meta_values=dict(metadata),
                               more_extra_files=dict(extra_files or {}))
    with atomic_open(out, "wb") as fh:
        fh.write(buf.getvalue())
    return out


def _eager(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    network.eval()
    with torch.no_grad():
        return network(x)


def compare_torchscript(network: torch.nn.Module, ts_path: str | Path, x: torch.Tensor) -> float:
    """Max |eager - TorchScript| on ``x``; ``BundleError(reason="export_mismatch")`` beyond tolerance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ts = torch.jit.load(str(ts_path), map_location="cpu")
    ref = _eager(network, x)
    with torch.no_grad():
        got = ts(x)
    diff = float((ref - got).abs().max()) if ref.shape == got.shape else float("inf")
    if ref.shape != got.shape or not torch.allclose(ref, got, rtol=TS_RTOL, atol=TS_ATOL):
        raise BundleError(f"{ts_path}: TorchScript output differs from the eager model (max |diff| "
                          f"{diff:.3g}, shapes {tuple(got.shape)} vs {tuple(ref.shape)})",
                          reason="export_mismatch", path=ts_path)
    return diff


def onnx_available() -> bool:
    """Whether the optional ``onnx`` extra (onnx + onnxruntime) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def export_onnx(network: torch.nn.Module, out: str | Path, example: torch.Tensor) -> Path:
    """Export to ONNX (dynamic batch, input ``image``, output ``pred``), written atomically."""
    network.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (example[:1],), buf, input_names=["image"], output_names=["pred"],
                          dynamic_axes={"image": {0: "batch"}, "pred": {0: "batch"}}, dynamo=False)
    out = Path(out)
    with atomic_open(out, "wb") as fh:
        fh.write(buf.getvalue())
    return out


def compare_onnx(network: torch.nn.Module, onnx_path: str | Path, x: torch.Tensor) -> float:
    """Max |eager - onnxruntime| on ``x``; raise ``BundleError(reason="export_mismatch")`` above 1e-4."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(onnx_path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    ref = _eager(network, x)
    diff = float((ref - got).abs().max()) if ref.shape == got.shape else float("inf")
    if not diff <= ONNX_ATOL:
        raise BundleError(f"{onnx_path}: ONNX output differs from the eager model (max |diff| {diff:.3g} > "
                          f"{ONNX_ATOL})", reason="export_mismatch", path=onnx_path)
    return diff


def export_color(source: str | Path, out: str | Path, *, trust_bundle: bool = False) -> Path:
    """Write the colour module of a bundle (folder or ``.zip``) or of a checkpoint ``.pt`` to ``out``."""
    from mcolor.bundle.loading import open_bundle

    source = Path(source)
    if source.is_dir() or source.suffix.lower() == ".zip":
        with open_bundle(source, trust_bundle=trust_bundle) as bundle:
            model = bundle.load_model()
    else:
        model = load_trained_model(source)
    norm = model.spec.get("input_normalization", "minmax")
    return export_color_module(model.network, out, norm if isinstance(norm, dict) else {"mode": norm})


def bundle_extra_files(root: Path) -> dict[str, bytes]:
    """The configs (as JSON bytes) to embed in ``model.ts``, as ``ckpt_export`` does."""
    files = {}
    for path in sorted((root / "configs").glob("*.json")):
        if path.name != "metadata.json":
            files[path.name] = json.dumps(json.loads(path.read_text(encoding="utf-8"))).encode()
    return files
