"""Small building blocks shared by the colorization families."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def match_size(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop or replicate-pad ``x`` at the bottom/right so that its spatial size is ``size``.

    The upsampling heads are top-left aligned with their input (stride-s convolutions and their
    transposes map index ``j`` to ``s * j``), so any excess or shortfall is at the bottom/right edge.
    """
    h, w = x.shape[-2:]
    th, tw = size
    if h > th or w > tw:
        x = x[..., : min(h, th), : min(w, tw)]
        h, w = x.shape[-2:]
    if h < th or w < tw:
        x = F.pad(x, (0, tw - w, 0, th - h), mode="replicate")
    return x


class ResidualBlock(nn.Module):
    """Two [Conv 3x3 + BN + LeakyReLU] with an identity skip; no activation after the add."""

    def __init__(self, channels: int = 64, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(negative_slope, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualTrunk(nn.Sequential):
    """The shared trunk of DECONV and PIXELSHUFFLE: stem at 1/4 resolution, then residual blocks.

    Conv 7x7 1->64 stride 2 padding 2 + BN + LeakyReLU + MaxPool 3x3/2 (padding 1), then
    ``num_blocks`` residual blocks of 64 channels.
    """

    def __init__(self, in_channels: int = 1, channels: int = 64, num_blocks: int = 8) -> None:
        super().__init__(
            nn.Conv2d(in_channels, channels, 7, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(0.01, inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            *[ResidualBlock(channels) for _ in range(num_blocks)],
        )


def init_xavier_bn(module: nn.Module) -> None:
    """Xavier-uniform for (transposed) convolutions, zero biases, BatchNorm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
