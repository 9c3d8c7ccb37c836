"""Preprocessing written once, as plain functions: the MONAI transforms and the fast inference path call them.

Like MONAI's own ``functional`` modules, nothing here imports MONAI, so ``mcolor infer`` can prepare an image
exactly as training did without paying MONAI's import time, and the two cannot drift apart: the
``Letterbox`` transform is a thin wrapper over :func:`letterbox`.

Geometry: radiographs are rarely square (e.g. 1955 x 1841 CR, 2048 x 2500 DR). ``pad`` keeps the whole image
and the aspect ratio (zero bars), ``crop`` fills the square and cuts the long side's edges, ``stretch``
squashes the whole image to the square; stretch exists because some public datasets were published already
squashed (the shared Kermany copy is 224 x 224 whatever the original shape), and a model trained on them has
learned squashed anatomy. Downscaling is antialiased: plain bilinear at 8x reduction aliases lung texture.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mcolor.errors import ConfigError

LETTERBOX_MODES: tuple[str, ...] = ("pad", "crop", "stretch")
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "area", "nearest")


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


def size_pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``size`` as ``(height, width)``; a ConfigError unless both are positive ints."""
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair):
        raise ConfigError(f"size must be a positive int or (height, width), got {size!r}", reason="bad_size")
    return pair  # type: ignore[return-value]


def check_mode(mode: str) -> str:
    if mode not in LETTERBOX_MODES:
        raise ConfigError(f"mode must be one of {LETTERBOX_MODES}, got {mode!r}", reason="bad_letterbox_mode")
    return mode


def letterbox_geometry(height: int, width: int, size: int | tuple[int, int], mode: str = "pad") -> LetterboxGeometry:
    """Compute the placement of a ``height x width`` image in ``size`` (no pixels touched)."""
    th, tw = size_pair(size)
    check_mode(mode)
    if mode == "pad":
        scale = min(th / height, tw / width)
        nh, nw = min(th, max(1, round(height * scale))), min(tw, max(1, round(width * scale)))
        return LetterboxGeometry(nh, nw, (th - nh) // 2, (tw - nw) // 2, None)
    if mode == "stretch":
        return LetterboxGeometry(th, tw, 0, 0, None)
    # Crop the source to the target aspect first, then resize: same result as resize-then-crop,
    # but the resize touches only the kept pixels.
    scale = max(th / height, tw / width)
    ch, cw = min(height, max(1, round(th / scale))), min(width, max(1, round(tw / scale)))
    return LetterboxGeometry(th, tw, 0, 0, ((height - ch) // 2, (width - cw) // 2, ch, cw))


def resize(x: torch.Tensor, height: int, width: int, interpolation: str = "bilinear",
           antialias: bool = True) -> torch.Tensor:
    """Resize ``(C, H, W)`` float32 to ``(C, height, width)``; bicubic output is clamped to the input range."""
    if (int(x.shape[1]), int(x.shape[2])) == (height, width):
        return x.contiguous()
    kwargs: dict[str, Any] = {}
    if antialias and interpolation in ("bilinear", "bicubic"):
        kwargs["antialias"] = True
    if interpolation in ("bilinear", "bicubic"):
        kwargs["align_corners"] = False
    y = F.interpolate(x.unsqueeze(0), size=(height, width), mode=interpolation, **kwargs)[0]
    if interpolation == "bicubic":
        y = y.clamp_(float(x.min()), float(x.max()))  # bicubic overshoots; keep the input range
    return y


def letterbox(x: torch.Tensor, size: int | tuple[int, int], mode: str = "pad", pad_value: float = 0.0,
              interpolation: str = "bilinear", antialias: bool = True) -> torch.Tensor:
    """Resize a channel-first ``(C, H, W)`` tensor to ``size`` by ``mode`` (pad, crop or stretch); float32 out."""
    if x.ndim != 3:
        raise ValueError(f"letterbox expects a channel-first (C, H, W) image, got shape {tuple(x.shape)}")
    target = size_pair(size)
    x = x.to(torch.float32)
    geo = letterbox_geometry(int(x.shape[1]), int(x.shape[2]), target, mode)
    if geo.crop_box is not None:
        top, left, ch, cw = geo.crop_box
        x = x[:, top : top + ch, left : left + cw]
    x = resize(x, geo.height, geo.width, interpolation, antialias)
    if mode == "pad" and (geo.height, geo.width) != target:
        out = x.new_full((x.shape[0], *target), float(pad_value))
        out[:, geo.top : geo.top + geo.height, geo.left : geo.left + geo.width] = x
        x = out
    return x


def network_input(image: np.ndarray | torch.Tensor, size: int, mode: str = "pad") -> torch.Tensor:
    """A decoded radiograph ``(H, W)`` in [0, 1] -> the network's ``(1, size, size)`` float32 input.

    What the bundle's ``preprocessing`` does (channel first, then :func:`letterbox`), for callers without MONAI.
    """
    x = torch.as_tensor(image)
    if x.ndim != 2:
        raise ValueError(f"network_input expects a 2-D (H, W) radiograph, got shape {tuple(x.shape)}")
    return letterbox(x.unsqueeze(0), size, mode)
