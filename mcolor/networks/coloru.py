"""COLORU: a small U-Net colorization module (Morra et al., ICPR 2020). About 0.19 M parameters.

Down blocks 1->16->32->64 (Conv 3x3 + LeakyReLU + Conv 4x4/2 + LeakyReLU + BN), up blocks 64->32 and
64->16 on the concatenated skips (ConvTranspose 4x4/2 + LeakyReLU + 2x[Conv 3x3 + LeakyReLU] + BN), and an
output block 32->16->3. Inputs whose sides are not multiples of 8 are replicate-padded at the
bottom/right and the output is cropped back, so any size works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mcolor.networks.layers import init_xavier_bn
from mcolor.networks.registry import register_color_module


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.BatchNorm2d(cout),
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.BatchNorm2d(cout),
    )


class ColorUNet(nn.Module):
    """Three-level U-Net, 1 channel in, 3 channels out, same spatial size, no final activation."""

    def __init__(self) -> None:
        super().__init__()
        self.down1 = _down(1, 16)
        self.down2 = _down(16, 32)
        self.down3 = _down(32, 64)
        self.up1 = _up(64, 32)
        self.up2 = _up(64, 16)
        self.out = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(16, 3, 1),
        )
        init_xavier_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 8, (-w) % 8
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        u1 = torch.cat([self.up1(d3), d2], dim=1)
        u2 = torch.cat([self.up2(u1), d1], dim=1)
        return self.out(u2)[..., :h, :w]


@register_color_module("coloru")
def coloru() -> nn.Module:
    """COLORU colorization module (small U-Net)."""
    return ColorUNet()
