"""SN-GAN ResNet generator and discriminator for 32x32 images (CIFAR-10).

The architecture of Miyato et al., "Spectral Normalization for Generative
Adversarial Networks" (ICLR 2018), Table 4 / Appendix B, which the Small-GAN
paper uses for its CIFAR-10 results (Table 3):

- G: z (128) -> linear -> 4x4x256 -> 3 up-blocks (256) -> BN, ReLU,
  conv3x3 -> 3 channels, tanh. No spectral norm in G.
- D: optimized block (3 -> 128, 16x16) -> block (down, 8x8) -> 2 blocks
  (8x8) -> ReLU -> global sum pooling -> SN linear -> 1 logit.

Channel widths are arguments so tests and CPU smoke runs can shrink them.

>>> import torch
>>> g, d = SNGANGenerator(ch=16), SNGANDiscriminator(ch=16)
>>> d(g(torch.randn(2, 128))).shape
torch.Size([2])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smallgan.models.blocks import ResBlockDown, ResBlockUp, _check_positive, conv2d, linear

__all__ = ["SNGANGenerator", "SNGANDiscriminator"]


class SNGANGenerator(nn.Module):
    """ResNet generator, ``(b, z_dim) -> (b, 3, 32, 32)`` in [-1, 1].

    Parameters
    ----------
    z_dim : int
        Latent size (128 in the paper).
    ch : int
        Channels of every residual block (256 in the paper).
    bottom : int
        Spatial size after the linear layer; three up-blocks multiply it by 8.
    out_channels : int
        Image channels (3 for CIFAR-10).
    """

    def __init__(self, z_dim: int = 128, ch: int = 256, bottom: int = 4,
                 out_channels: int = 3) -> None:
        super().__init__()
        for name, value in (("z_dim", z_dim), ("ch", ch), ("bottom", bottom),
                            ("out_channels", out_channels)):
            _check_positive(name, value)
        self.z_dim, self.ch, self.bottom = z_dim, ch, bottom
        self.linear = linear(z_dim, bottom * bottom * ch)
        self.blocks = nn.Sequential(*(ResBlockUp(ch, ch) for _ in range(3)))
        self.bn = nn.BatchNorm2d(ch)
        self.conv = conv2d(ch, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (batch, {self.z_dim}), got {tuple(z.shape)}")
        h = self.linear(z).view(-1, self.ch, self.bottom, self.bottom)
        h = self.blocks(h)
        return torch.tanh(self.conv(F.relu(self.bn(h))))


class SNGANDiscriminator(nn.Module):
    """Spectrally normalised ResNet discriminator, ``(b, c, 32, 32) -> (b,)`` logits.

    Parameters
    ----------
    ch : int
        Channels of every residual block (128 in the paper).
    in_channels : int
        Image channels.
    """

    def __init__(self, ch: int = 128, in_channels: int = 3) -> None:
        super().__init__()
        _check_positive("ch", ch)
        _check_positive("in_channels", in_channels)
        self.blocks = nn.Sequential(
            ResBlockDown(in_channels, ch, downsample=True, first=True),
            ResBlockDown(ch, ch, downsample=True),
            ResBlockDown(ch, ch, downsample=False),
            ResBlockDown(ch, ch, downsample=False),
        )
        self.linear = linear(ch, 1, sn=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x))
        # Sum (not mean) pooling, as in Miyato et al.: keeps the logit scale
        # proportional to the feature map size the hinge margin was tuned for.
        return self.linear(h.sum(dim=(2, 3))).squeeze(1)
