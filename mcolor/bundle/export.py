"""Exports of a trained bundle, each checked against the eager network: ONNX, and the colour module alone.

TorchScript (``models/model.ts``, MONAI's ``ckpt_export`` format) is written by
:func:`mcolor.artifact.write_torchscript`; :func:`compare_torchscript` checks any such file. ONNX needs the
optional ``onnx`` extra (``pip install 'mcolor[onnx]'``).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mcolor.artifact import TS_ATOL
from mcolor.atomic import atomic_open
from mcolor.errors import BundleError
from mcolor.extras import available, require

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
    if not diff <= TS_ATOL:
        raise BundleError(f"{ts_path}: TorchScript output differs from the eager model (max |diff| "
                          f"{diff:.3g}, shapes {tuple(got.shape)} vs {tuple(ref.shape)})",
                          reason="export_mismatch", path=ts_path)
    return diff


def onnx_available() -> bool:
    """Whether the optional ``onnx`` extra (onnx + onnxruntime) is installed."""
    return available("onnx")


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
    onnx = require("onnx", "the ONNX check")
    ort = require("onnx", "the ONNX check", "onnxruntime")
    onnx.checker.check_model(str(onnx_path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    ref = _eager(network, x)
    diff = float((ref - got).abs().max()) if ref.shape == got.shape else float("inf")
    if not diff <= ONNX_ATOL:
        raise BundleError(f"{onnx_path}: ONNX output differs from the eager model (max |diff| {diff:.3g} > "
                          f"{ONNX_ATOL})", reason="export_mismatch", path=onnx_path)
    return diff


def export_color(source: str | Path, out: str | Path) -> Path:
    """Write the colour module of a trained bundle (folder or ``.zip``) to ``out``."""
    from mcolor.bundle.loading import open_bundle
    from mcolor.color_transfer import export_color_module

    source = Path(source)
    with open_bundle(source) as bundle:
        model = bundle.load_model()
        return export_color_module(model.network, out, {"mode": model.spec.input_normalization})
