"""Baseline "colorizations": gray replicated to 3 channels, and a learned 1->3 linear map."""

from __future__ import annotations

import torch
from torch import nn

from mcolor.networks.registry import register_color_module


class Replicate(nn.Module):
    """Copy the gray channel into R, G and B. No parameters: plain transfer learning."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.repeat(1, 3, 1, 1)


class Conv1x1(nn.Conv2d):
    """A learned per-pixel affine map 1->3, initialised to replication (weights 1, bias 0).

    Starting at replication means the pretrained backbone sees exactly what ``replicate`` gives it at
    step 0, so the map can only move away from that when the loss asks for it.
    """

    def __init__(self) -> None:
        super().__init__(1, 3, kernel_size=1)
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)


@register_color_module("replicate")
def replicate() -> nn.Module:
    """Parameter-free baseline: gray copied to 3 channels."""
    return Replicate()


@register_color_module("conv1x1")
def conv1x1() -> nn.Module:
    """Learned 1->3 linear colour map, initialised to replication."""
    return Conv1x1()
