"""Loss functions for the three tasks.

Binary and multi-label outputs use BCE-with-logits where NaN labels (unknown, or uncertain under the
``ignore`` policy) are masked out and the mean is taken over the labelled entries only; multi-class uses
cross-entropy on class indices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mcolor.errors import ConfigError


class MaskedBCEWithLogitsLoss(nn.Module):
    """BCE with logits ignoring NaN targets; ``pos_weight`` optional per output."""

    def __init__(self, pos_weight: list[float] | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", torch.tensor(pos_weight) if pos_weight else None, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype).reshape(logits.shape)
        mask = ~torch.isnan(target)
        safe = torch.where(mask, target, torch.zeros_like(target))
        loss = F.binary_cross_entropy_with_logits(logits, safe, reduction="none", pos_weight=self.pos_weight)
        loss = loss * mask
        # Every entry masked: return a zero that still depends on the logits so backward works.
        return loss.sum() / mask.sum().clamp_min(1)


class ClassIndexCrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy accepting targets shaped (B,) or (B, 1), as collated from manifests."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(logits, target.reshape(-1).long())


def build_loss(task: str, pos_weight: list[float] | None = None) -> nn.Module:
    """The loss for ``task`` (``binary``, ``multilabel`` or ``multiclass``)."""
    if task in ("binary", "multilabel"):
        return MaskedBCEWithLogitsLoss(pos_weight)
    if task == "multiclass":
        return ClassIndexCrossEntropy()
    raise ConfigError(f"unknown task {task!r}; valid: binary, multiclass, multilabel", reason="bad_option")
