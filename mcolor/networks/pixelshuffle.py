"""PIXELSHUFFLE: residual trunk, then sub-pixel convolution with ICNR init and a blur.

Morra et al. (ICPR 2020), the "PIXELSHUFFLE" colorization module. The upsampler is MONAI's
:class:`~monai.networks.blocks.SubpixelUpsample` (PixelShuffle + ReplicationPad (1,0,1,0) + AvgPool 2x2
stride 1, the blur that suppresses checkerboard artefacts) fed by a Conv 1x1 64->48 + BN whose weight is
ICNR-initialised (MONAI's ``icnr_init``) so that the shuffled output starts as nearest-neighbour.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import SubpixelUpsample
from monai.networks.utils import icnr_init
from torch import nn

from mcolor.networks.layers import ResidualTrunk, init_xavier_bn, match_size
from mcolor.networks.registry import register_color_module


class PixelShuffleColorizer(nn.Module):
    """Residual trunk -> Conv 1x1 64->48 + BN -> PixelShuffle(4) -> pad + blur, at the input size."""

    def __init__(self, channels: int = 64, num_blocks: int = 8, scale: int = 4) -> None:
        super().__init__()
        self.trunk = ResidualTrunk(1, channels, num_blocks)
        conv = nn.Sequential(nn.Conv2d(channels, 3 * scale**2, 1), nn.BatchNorm2d(3 * scale**2))
        init_xavier_bn(self)
        icnr_init(conv[0], scale)
        self.upsample = SubpixelUpsample(
            spatial_dims=2, in_channels=channels, out_channels=3, scale_factor=scale,
            conv_block=conv, apply_pad_pool=True,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[-2], x.shape[-1])
        return match_size(self.upsample(self.trunk(x)), size)


@register_color_module("pixelshuffle")
def pixelshuffle(**kwargs: int) -> nn.Module:
    """PIXELSHUFFLE colorization module (residual trunk + ICNR sub-pixel upsampling + blur)."""
    return PixelShuffleColorizer(**kwargs)
