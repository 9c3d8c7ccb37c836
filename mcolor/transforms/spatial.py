"""Resize to the network's square input (training hot path): pad, crop or stretch.

Radiographs are rarely square (e.g. 1955 x 1841 CR, 2048 x 2500 DR); stretching them distorts the
cardiothoracic ratio, so by default we either pad (letterbox, nothing lost) or centre-crop (no padding,
edges lost). ``stretch`` exists because some public datasets were published already squashed to a
square (the shared Kermany copy is 224 x 224 whatever the original shape): a model trained on them has
learned squashed anatomy, and inference must squash a full-size radiograph the same way. The mode a
model was trained with is recorded in its spec and reproduced by every inference path.
Downscaling is antialiased: plain bilinear at 8x reduction aliases fine lung texture.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from mcolor.errors import ConfigError

LETTERBOX_MODES: tuple[str, ...] = ("pad", "crop", "stretch")
_INTERPOLATIONS = ("bilinear", "bicubic", "area", "nearest")


class LetterboxGeometry(NamedTuple):
    """Where the source lands: resized ``(height, width)`` and its ``(top, left)`` offset in the output.

    For ``"crop"``, ``crop_box`` is the source window ``(top, left, height, width)`` that was kept. For
    ``"stretch"`` the whole source fills the output (``height, width`` = the output size, no offset).
    Useful to map saliency maps or boxes back to the original image.
    """

    height: int
    width: int
    top: int
    left: int
    crop_box: tuple[int, int, int, int] | None


def _size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair):
        raise ConfigError(f"size must be a positive int or (height, width), got {size!r}", reason="bad_size")
    return pair  # type: ignore[return-value]


def letterbox_geometry(
    height: int, width: int, size: int | tuple[int, int], mode: str = "pad"
) -> LetterboxGeometry:
    """Compute the letterbox placement of a ``height x width`` image in ``size`` (no pixels touched)."""
    th, tw = _size_pair(size)
    if mode == "pad":
        scale = min(th / height, tw / width)
        nh, nw = min(th, max(1, round(height * scale))), min(tw, max(1, round(width * scale)))
        return LetterboxGeometry(nh, nw, (th - nh) // 2, (tw - nw) // 2, None)
    if mode == "stretch":
        return LetterboxGeometry(th, tw, 0, 0, None)
    if mode != "crop":
        raise ConfigError(f"mode must be one of {LETTERBOX_MODES}, got {mode!r}", reason="bad_letterbox_mode")
    # Crop the source to the target aspect first, then resize: same result as resize-then-crop,
    # but the resize touches only the kept pixels.
    scale = max(th / height, tw / width)
    ch, cw = min(height, max(1, round(th / scale))), min(width, max(1, round(tw / scale)))
    return LetterboxGeometry(th, tw, 0, 0, ((height - ch) // 2, (width - cw) // 2, ch, cw))


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

    def __init__(
        self,
        size: int | tuple[int, int],
        mode: str = "pad",
        pad_value: float = 0.0,
        interpolation: str = "bilinear",
        antialias: bool = True,
    ) -> None:
        self.size = _size_pair(size)
        if mode not in LETTERBOX_MODES:
            raise ConfigError(
                f"mode must be one of {LETTERBOX_MODES}, got {mode!r}", reason="bad_letterbox_mode"
            )
        if interpolation not in _INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {_INTERPOLATIONS}", reason="bad_interpolation")
        self.mode, self.pad_value, self.interpolation = mode, float(pad_value), interpolation
        self.antialias = antialias and interpolation in ("bilinear", "bicubic")

    def __call__(self, img: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        is_numpy = isinstance(img, np.ndarray)
        x = torch.as_tensor(img)
        if type(x) is not torch.Tensor:
            x = x.as_subclass(torch.Tensor)  # MetaTensor -> plain tensor: meta tracking costs per op
        if x.ndim != 3:
            raise ValueError(f"Letterbox expects a channel-first (C, H, W) image, got shape {tuple(x.shape)}")
        x = x.to(torch.float32)
        geo = letterbox_geometry(int(x.shape[1]), int(x.shape[2]), self.size, self.mode)
        if geo.crop_box is not None:
            top, left, ch, cw = geo.crop_box
            x = x[:, top : top + ch, left : left + cw]
        x = self._resize(x, geo.height, geo.width)
        if self.mode == "pad" and (geo.height, geo.width) != self.size:
            out = x.new_full((x.shape[0], *self.size), self.pad_value)
            out[:, geo.top : geo.top + geo.height, geo.left : geo.left + geo.width] = x
            x = out
        return x.numpy() if is_numpy else x

    def _resize(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if (int(x.shape[1]), int(x.shape[2])) == (height, width):
            return x.contiguous()
        kwargs: dict[str, Any] = {"antialias": self.antialias} if self.antialias else {}
        if self.interpolation in ("bilinear", "bicubic"):
            kwargs["align_corners"] = False
        y = F.interpolate(x.unsqueeze(0), size=(height, width), mode=self.interpolation, **kwargs)[0]
        if self.interpolation == "bicubic":
            y = y.clamp_(float(x.min()), float(x.max()))  # bicubic overshoots; keep the input range
        return y


class Letterboxd(MapTransform):
    """Dictionary form of :class:`Letterbox`."""

    def __init__(
        self,
        keys: KeysCollection,
        size: int | tuple[int, int],
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.letterbox = Letterbox(size, **kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.letterbox(d[key])
        return d
