"""MONAI transforms for radiographs: load, normalise, resize (array and dictionary forms), outputs.

Loaded images are channel-first float32 ``(1, H, W)`` tensors in [0, 1], bone bright. The computations live
in :mod:`mcolor.transforms.functional` (no MONAI import), which the fast inference path calls directly; the
names below are imported on first use (PEP 562), so ``import mcolor.transforms.functional`` does not pay
for importing MONAI.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CHEXPERT_MEAN": "intensity",
    "CHEXPERT_STD": "intensity",
    "NORMALIZE_MODES": "intensity",
    "NormalizeRadiograph": "intensity",
    "NormalizeRadiographd": "intensity",
    "LoadRadiograph": "io",
    "LoadRadiographd": "io",
    "radiograph_collate": "io",
    "Letterbox": "spatial",
    "Letterboxd": "spatial",
    "Probabilitiesd": "outputs",
    "LETTERBOX_MODES": "functional",
    "LetterboxGeometry": "functional",
    "letterbox_geometry": "functional",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mcolor.transforms' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mcolor.transforms.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
