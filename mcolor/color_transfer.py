"""Colorization-module transfer: export the learned module alone, start another model from it.

The paper's last claim is that the learned colour mapping carries across datasets and backbones, so the
module is a shareable artefact: ``{"format": "mcolor-color-module", "registry_name", "state_dict",
"input_normalization", "mcolor_version"}`` saved atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mcolor import __version__
from mcolor.atomic import atomic_open
from mcolor.errors import ConfigError, WeightsError
from mcolor.networks import ColorizedClassifier

FORMAT = "mcolor-color-module"


def export_color_module(network: ColorizedClassifier, out: str | Path,
                        input_normalization: dict[str, Any] | None = None) -> Path:
    """Save ``network.color`` with its registry name and the input normalisation it was trained with."""
    payload = {
        "format": FORMAT,
        "registry_name": network.color_module_name,
        "state_dict": {k: v.detach().cpu() for k, v in network.color.state_dict().items()},
        "input_normalization": dict(input_normalization or {"mode": "minmax"}),
        "mcolor_version": __version__,
    }
    out = Path(out)
    with atomic_open(out, "wb") as fh:
        torch.save(payload, fh)
    return out


def read_color_module(path: str | Path) -> dict[str, Any]:
    """Read and check an exported colour module file (weights-only; format and keys verified)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"colour module file not found: {path}", reason="weights_not_found", path=path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path} is not a weights-only colour module file ({type(exc).__name__})",
                           reason="weights_unreadable", path=path) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"{path} is not an mcolor colour module export", reason="weights_unreadable", path=path)
    return payload


def load_color_module(network: ColorizedClassifier, path: str | Path) -> dict[str, Any]:
    """Initialise ``network.color`` from an exported module; the registry names must agree."""
    payload = read_color_module(path)
    if payload["registry_name"] != network.color_module_name:
        raise ConfigError(
            f"{path} holds a {payload['registry_name']!r} colour module but the network uses "
            f"{network.color_module_name!r}; set color_module={payload['registry_name']}",
            reason="color_module_mismatch", path=path,
        )
    try:
        network.color.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} does not fit the {network.color_module_name} module: {exc}",
                           reason="weights_mismatch", path=path) from exc
    return payload
