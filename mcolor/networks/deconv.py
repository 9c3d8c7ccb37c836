"""DECONV: residual trunk at 1/4 resolution, then a grouped transposed convolution back up.

Morra et al. (ICPR 2020), the "DECONV" colorization module. About 0.6 M parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from mcolor.networks.layers import ResidualTrunk, init_xavier_bn, match_size
from mcolor.networks.registry import register_color_module


class DeconvColorizer(nn.Module):
    """Conv trunk -> Conv 1x1 64->3 -> ConvTranspose2d(3, 3, k=8, s=4, p=2, groups=3) to input size."""

    def __init__(self, channels: int = 64, num_blocks: int = 8) -> None:
        super().__init__()
        self.trunk = ResidualTrunk(1, channels, num_blocks)
        self.to_rgb = nn.Conv2d(channels, 3, 1)
        self.upsample = nn.ConvTranspose2d(3, 3, kernel_size=8, stride=4, padding=2, groups=3, bias=False)
        init_xavier_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[-2], x.shape[-1])
        y = self.to_rgb(self.trunk(x))
        # The transposed conv produces 4*h; output_padding (< stride) forces the exact input size
        # whenever it is reachable, otherwise the 1-3 surplus rows/columns are cropped.
        h, w = y.shape[-2:]
        pad = (min(max(size[0] - 4 * h, 0), 3), min(max(size[1] - 4 * w, 0), 3))
        y = self.upsample(y, output_size=[4 * h + pad[0], 4 * w + pad[1]])
        return match_size(y, size)


@register_color_module("deconv")
def deconv(**kwargs: int) -> nn.Module:
    """DECONV colorization module (residual trunk + grouped transposed conv)."""
    return DeconvColorizer(**kwargs)
