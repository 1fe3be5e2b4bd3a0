"""SAGAN: ResNet generator and discriminator with self-attention and spectral
norm in both, for 64x64 and 128x128 images (LSUN, paper Table 4).

Zhang et al., "Self-Attention Generative Adversarial Networks" (ICML 2019):
spectral norm in G as well as D, one self-attention block at a middle
resolution, hinge loss, two time-scale learning rates (G 1e-4, D 4e-4,
Adam betas (0, 0.9), one D step per G step). The paper's model is
class-conditional on ImageNet; LSUN is unconditional, so plain BatchNorm
replaces conditional BatchNorm and D has no projection term.

Channel widths as multiples of ``ch`` (the BigGAN/SAGAN layout). G: the
linear layer's 4x4 output, then the output of each up-block. D: the output
of each down-block; its last block keeps the 4x4 size.

======  ===================  ===================  ============
 size    G widths (x ch)      D widths (x ch)      attention
======  ===================  ===================  ============
 64      16, 16, 8, 4, 2      1, 2, 4, 8, 16       32x32 maps
 128     16, 16, 8, 4, 2, 1   1, 2, 4, 8, 16, 16   64x64 maps
======  ===================  ===================  ============

>>> import torch
>>> g, d = SAGANGenerator(64, ch=8), SAGANDiscriminator(64, ch=8)
>>> d(g(torch.randn(2, 128))).shape
torch.Size([2])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smallgan.models.blocks import (ResBlockDown, ResBlockUp, SelfAttention, _check_positive,
                                    conv2d, linear)

__all__ = ["SAGANGenerator", "SAGANDiscriminator", "G_WIDTHS", "D_WIDTHS",
           "ATTENTION_RESOLUTION"]

G_WIDTHS = {64: (16, 16, 8, 4, 2), 128: (16, 16, 8, 4, 2, 1)}
D_WIDTHS = {64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16)}
# Feature-map side at which the self-attention block sits (after the block
# producing that size in G, before the block consuming it in D): large enough
# for long-range structure, small enough for the (hw x hw/4) attention matrix.
ATTENTION_RESOLUTION = {64: 32, 128: 64}


def _check_resolution(resolution: int) -> None:
    if resolution not in G_WIDTHS:
        raise ValueError(f"resolution must be one of {sorted(G_WIDTHS)}, got {resolution!r}")


class SAGANGenerator(nn.Module):
    """Self-attention ResNet generator, ``(b, z_dim) -> (b, 3, r, r)`` in [-1, 1].

    Parameters
    ----------
    resolution : {64, 128}
        Output side.
    z_dim : int
        Latent size (128).
    ch : int
        Base width (64 in SAGAN).
    out_channels : int
        Image channels.
    """

    def __init__(self, resolution: int = 128, z_dim: int = 128, ch: int = 64,
                 out_channels: int = 3) -> None:
        super().__init__()
        _check_resolution(resolution)
        for name, value in (("z_dim", z_dim), ("ch", ch), ("out_channels", out_channels)):
            _check_positive(name, value)
        widths = G_WIDTHS[resolution]
        self.z_dim, self.c0 = z_dim, widths[0] * ch
        self.linear = linear(z_dim, 4 * 4 * self.c0, sn=True)
        layers: list[nn.Module] = []
        c_in, side = self.c0, 4
        for m in widths[1:]:
            layers.append(ResBlockUp(c_in, m * ch, upsample=True, sn=True))
            c_in, side = m * ch, side * 2
            if side == ATTENTION_RESOLUTION[resolution]:
                layers.append(SelfAttention(c_in, sn=True))
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = conv2d(c_in, out_channels, 3, padding=1, sn=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (batch, {self.z_dim}), got {tuple(z.shape)}")
        h = self.blocks(self.linear(z).view(-1, self.c0, 4, 4))
        return torch.tanh(self.conv(F.relu(self.bn(h))))


class SAGANDiscriminator(nn.Module):
    """Self-attention, spectrally normalised ResNet discriminator,
    ``(b, c, r, r) -> (b,)`` logits.

    Parameters
    ----------
    resolution : {64, 128}
        Input side.
    ch : int
        Base width (64 in SAGAN).
    in_channels : int
        Image channels.
    """

    def __init__(self, resolution: int = 128, ch: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        _check_resolution(resolution)
        _check_positive("ch", ch)
        _check_positive("in_channels", in_channels)
        widths = D_WIDTHS[resolution]
        layers: list[nn.Module] = []
        c_in, side = in_channels, resolution
        for i, m in enumerate(widths):
            if side == ATTENTION_RESOLUTION[resolution]:
                layers.append(SelfAttention(c_in, sn=True))
            last = i == len(widths) - 1
            layers.append(ResBlockDown(c_in, m * ch, downsample=not last, first=(i == 0)))
            c_in, side = m * ch, side if last else side // 2
        self.blocks = nn.Sequential(*layers)
        self.linear = linear(c_in, 1, sn=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x))
        return self.linear(h.sum(dim=(2, 3))).squeeze(1)
