"""Post-processing of network outputs as a MONAI transform: logits -> calibrated probabilities.

The bundle's ``postprocessing`` (used by ``inference.json`` and by MONAI Deploy's bundle operator) calls
:func:`mcolor.artifact.probabilities`, the one function every path uses, with the model's task and the
temperature stored in its operating point.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from mcolor.artifact import TASKS, probabilities
from mcolor.errors import ConfigError


class Probabilitiesd(MapTransform):
    """Replace logits under ``keys`` by probabilities: sigmoid (binary, multi-label) or softmax (multi-class).

    Accepts a batch ``(B, K)`` or one sample ``(K,)`` (MONAI Deploy passes outputs without the batch axis).
    """

    def __init__(self, keys: KeysCollection, task: str = "binary", temperature: Sequence[float] | None = None,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, got {task!r}", reason="bad_option")
        self.task = task
        self.temperature = [float(t) for t in temperature] if temperature else None

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            x = torch.as_tensor(d[key])
            if type(x) is not torch.Tensor:
                x = x.as_subclass(torch.Tensor)
            single = x.ndim == 1
            p = probabilities(x[None] if single else x, self.task, self.temperature)
            d[key] = p[0] if single else p
        return d
