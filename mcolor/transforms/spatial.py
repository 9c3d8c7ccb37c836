"""Resize to the network's square input as MONAI transforms: pad, crop or stretch (training hot path).

The work is :func:`mcolor.transforms.functional.letterbox`, shared with the fast inference path; see that
module for why each geometry exists. The mode a model was trained with is recorded in its spec and
reproduced by every inference path.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from mcolor.errors import ConfigError
from mcolor.transforms.functional import (
    INTERPOLATIONS,
    LETTERBOX_MODES,
    LetterboxGeometry,
    check_mode,
    letterbox,
    letterbox_geometry,
    size_pair,
)

__all__ = ["LETTERBOX_MODES", "Letterbox", "LetterboxGeometry", "Letterboxd", "letterbox_geometry"]


class Letterbox(Transform):
    """Resize a ``(C, H, W)`` image to ``size``: keep the aspect ratio and pad or centre-crop, or stretch.

    Args:
        size: output side (square) or ``(height, width)``.
        mode: ``"pad"`` (whole image, zero bars), ``"crop"`` (fills the square, edges cut) or
            ``"stretch"`` (whole image, aspect ratio not kept: for models trained on pre-squashed data).
        pad_value: value of the bars; 0 is black in the [0, 1] convention.
        interpolation: ``torch.nn.functional.interpolate`` mode; ``antialias`` applies to
            bilinear/bicubic (``area`` is inherently antialiased when shrinking).

    Returns the same kind as the input (tensor -> float32 tensor, ndarray -> float32 ndarray).
    """

    def __init__(self, size: int | tuple[int, int], mode: str = "pad", pad_value: float = 0.0,
                 interpolation: str = "bilinear", antialias: bool = True) -> None:
        self.size = size_pair(size)
        self.mode = check_mode(mode)
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {INTERPOLATIONS}", reason="bad_interpolation")
        self.pad_value, self.interpolation = float(pad_value), interpolation
        self.antialias = antialias and interpolation in ("bilinear", "bicubic")

    def __call__(self, img: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        is_numpy = isinstance(img, np.ndarray)
        x = torch.as_tensor(img)
        if type(x) is not torch.Tensor:
            x = x.as_subclass(torch.Tensor)  # MetaTensor -> plain tensor: meta tracking costs per op
        if x.ndim != 3:
            raise ValueError(f"Letterbox expects a channel-first (C, H, W) image, got shape {tuple(x.shape)}")
        x = letterbox(x, self.size, self.mode, self.pad_value, self.interpolation, self.antialias)
        return x.numpy() if is_numpy else x


class Letterboxd(MapTransform):
    """Dictionary form of :class:`Letterbox`."""

    def __init__(self, keys: KeysCollection, size: int | tuple[int, int], allow_missing_keys: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys)
        self.letterbox = Letterbox(size, **kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.letterbox(d[key])
        return d
