"""MONAI loading transforms around :func:`mcolor.io.read_radiograph`.

They return plain ``torch.Tensor`` (not ``MetaTensor``): the reader's meta holds ``None`` values that
PyTorch's default collation cannot batch, and a plain tensor keeps the training hot path lean.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from mcolor.errors import ConfigError
from mcolor.io import DEFAULT_MAX_PIXELS, VOI_MODES, read_radiograph


def _check_options(voi: str, max_pixels: int) -> None:
    """Fail when the pipeline is built, not on the first sample inside a DataLoader worker."""
    if voi not in VOI_MODES:
        raise ConfigError(f"voi must be one of {VOI_MODES}, got {voi!r}", reason="bad_voi")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError(f"max_pixels must be a positive int, got {max_pixels!r}", reason="bad_max_pixels")


class LoadRadiograph(Transform):
    """Path -> float32 tensor ``(1, H, W)`` in [0, 1], bone bright (see ``read_radiograph``).

    With ``image_only=False`` it returns ``(tensor, meta)`` like MONAI's ``LoadImage``.
    """

    def __init__(
        self, voi: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS, image_only: bool = True
    ) -> None:
        _check_options(voi, max_pixels)
        self.voi = voi
        self.max_pixels = max_pixels
        self.image_only = image_only

    def __call__(self, path: str | os.PathLike[str]) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        image, meta = read_radiograph(path, voi=self.voi, max_pixels=self.max_pixels)
        tensor = torch.from_numpy(image).unsqueeze(0)
        return tensor if self.image_only else (tensor, meta)


class LoadRadiographd(MapTransform):
    """Dictionary form of :class:`LoadRadiograph`: replaces each path under ``keys`` by its tensor.

    By default the meta dict is dropped so that batches collate with the default collate function.
    With ``meta_key_postfix="meta"`` the meta is stored under ``f"{key}_meta"``; such batches need a
    collate function that keeps dicts with ``None`` values as lists (e.g. ``collate_fn=list`` or
    :func:`radiograph_collate`).
    """

    def __init__(
        self,
        keys: KeysCollection,
        voi: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        meta_key_postfix: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if meta_key_postfix is not None and (not isinstance(meta_key_postfix, str) or not meta_key_postfix):
            raise ConfigError("meta_key_postfix must be None or a non-empty string", reason="bad_meta_key")
        self._loader = LoadRadiograph(voi=voi, max_pixels=max_pixels, image_only=False)
        self.meta_key_postfix = meta_key_postfix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key], meta = self._loader(d[key])
            if self.meta_key_postfix is not None:
                d[f"{key}_{self.meta_key_postfix}"] = meta
        return d


def radiograph_collate(batch: list[Mapping[Hashable, Any]]) -> dict[Hashable, Any]:
    """Collate dict samples, stacking tensors/numbers and keeping ``dict`` values (meta) as lists.

    PyTorch's ``default_collate`` fails on the ``None`` entries of reader meta; this keeps them.
    """
    from torch.utils.data import default_collate

    out: dict[Hashable, Any] = {}
    for key in batch[0]:
        values = [sample[key] for sample in batch]
        out[key] = values if isinstance(values[0], Mapping) else default_collate(values)
    return out
