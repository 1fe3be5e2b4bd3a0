"""DCGAN-style LSGAN for 28x28 digits, and the compact discriminators of the
"GAS" study (LSGAN with small discriminators).

Mao et al., "Least Squares Generative Adversarial Networks" (ICCV 2017):
the discriminator outputs an unbounded score trained towards 1 on real and 0
on fake images by squared error, so there is no sigmoid here.

The study behind this module (see REFERENCES.md, "LSGAN with compact
discriminators") compared a plain convolutional discriminator with compact
ones built from depthwise-separable convolutions, inception blocks and dense
blocks. Its exact layer lists are not published, so the models below are our
own designs following its descriptions; :data:`DISCRIMINATORS` names them.

============================  ================================================
 name                          architecture (28x28x1 in, score out)
============================  ================================================
 ``original``                  conv 4x4/2 (64), conv 4x4/2 (128) + BN, linear
 ``ds-inception``              separable stem (32), inception (4x16, separable
                               3x3s), pool, inception (4x32, separable), GAP
 ``inception-32|16|8``         conv stem (b), inception (4 x b/2), pool,
                               inception (4 x b), GAP; b = base filters
 ``ds-inception-dense``        separable stem (32), dense block of 3 separable
                               inception layers (growth 16), transition 1x1 +
                               pool, dense block (3 x 16), GAP
============================  ================================================

>>> import torch
>>> g = LSGANGenerator()
>>> d = make_discriminator("inception-16")
>>> d(g(torch.randn(4, 100))).shape
torch.Size([4])
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from smallgan.models.blocks import _check_positive

__all__ = [
    "LSGANGenerator",
    "OriginalDiscriminator",
    "InceptionDiscriminator",
    "DenseInceptionDiscriminator",
    "InceptionBlock",
    "SeparableConv2d",
    "DISCRIMINATORS",
    "make_discriminator",
]

_SLOPE = 0.2  # LeakyReLU slope of DCGAN discriminators


class LSGANGenerator(nn.Module):
    """DCGAN generator, ``(b, z_dim) -> (b, 1, 28, 28)`` in [-1, 1].

    linear -> 7x7x(4 ngf), BN, ReLU -> transposed conv 4x4/2 (2 ngf, 14x14),
    BN, ReLU -> transposed conv 4x4/2 (ngf, 28x28), BN, ReLU -> conv 3x3
    (out_channels), tanh.
    """

    def __init__(self, z_dim: int = 100, ngf: int = 64, out_channels: int = 1) -> None:
        super().__init__()
        for name, value in (("z_dim", z_dim), ("ngf", ngf), ("out_channels", out_channels)):
            _check_positive(name, value)
        self.z_dim, self.c0 = z_dim, 4 * ngf
        self.linear = nn.Linear(z_dim, 7 * 7 * self.c0)
        self.net = nn.Sequential(
            nn.BatchNorm2d(self.c0), nn.ReLU(),
            nn.ConvTranspose2d(self.c0, 2 * ngf, 4, 2, 1), nn.BatchNorm2d(2 * ngf), nn.ReLU(),
            nn.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1), nn.BatchNorm2d(ngf), nn.ReLU(),
            nn.Conv2d(ngf, out_channels, 3, 1, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (batch, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(self.linear(z).view(-1, self.c0, 7, 7))


class OriginalDiscriminator(nn.Module):
    """The plain DCGAN discriminator the compact ones are compared against,
    ``(b, c, 28, 28) -> (b,)``."""

    def __init__(self, ndf: int = 64, in_channels: int = 1) -> None:
        super().__init__()
        _check_positive("ndf", ndf)
        _check_positive("in_channels", in_channels)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(_SLOPE),                # 14x14
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), nn.BatchNorm2d(2 * ndf), nn.LeakyReLU(_SLOPE),  # 7x7
            nn.Flatten(), nn.Linear(2 * ndf * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class SeparableConv2d(nn.Module):
    """Depthwise-separable convolution: a per-channel k x k convolution, then
    a 1x1 convolution mixing channels. Costs ``c*k*k + c*out`` weights
    instead of ``c*out*k*k``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride,
                                   kernel_size // 2, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _conv3(in_channels: int, out_channels: int, separable: bool, stride: int = 1) -> nn.Module:
    if separable:
        return SeparableConv2d(in_channels, out_channels, 3, stride)
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1)


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated to ``4 * filters`` channels:
    1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3 (a factorised 5x5); 3x3 max-pool -> 1x1.
    Then BatchNorm and LeakyReLU. Spatial size is kept.

    Parameters
    ----------
    in_channels : int
    filters : int
        Output channels of each branch.
    separable : bool
        Use depthwise-separable 3x3 convolutions in the branches.
    """

    def __init__(self, in_channels: int, filters: int, separable: bool = False) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("filters", filters)
        f = filters
        self.b1 = nn.Conv2d(in_channels, f, 1)
        self.b3 = nn.Sequential(nn.Conv2d(in_channels, f, 1), nn.LeakyReLU(_SLOPE),
                                _conv3(f, f, separable))
        self.b5 = nn.Sequential(nn.Conv2d(in_channels, f, 1), nn.LeakyReLU(_SLOPE),
                                _conv3(f, f, separable), nn.LeakyReLU(_SLOPE),
                                _conv3(f, f, separable))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(in_channels, f, 1))
        self.bn = nn.BatchNorm2d(4 * f)
        self.out_channels = 4 * f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)
        return F.leaky_relu(self.bn(h), _SLOPE)


class InceptionDiscriminator(nn.Module):
    """stem 3x3/2 (``base``, 14x14) -> inception (``first_filters`` per branch)
    -> 2x2 average pool (7x7) -> inception (``second_filters``) -> global
    average pool -> linear. ``(b, c, 28, 28) -> (b,)``.

    With ``separable=True`` the stem and the inception 3x3s are
    depthwise-separable (the ``ds-inception`` variant).
    """

    def __init__(self, base: int = 32, first_filters: int | None = None,
                 second_filters: int | None = None, separable: bool = False,
                 in_channels: int = 1) -> None:
        super().__init__()
        _check_positive("base", base)
        _check_positive("in_channels", in_channels)
        f1 = first_filters if first_filters is not None else max(base // 2, 1)
        f2 = second_filters if second_filters is not None else base
        self.stem = _conv3(in_channels, base, separable, stride=2)
        self.inc1 = InceptionBlock(base, f1, separable)
        self.inc2 = InceptionBlock(self.inc1.out_channels, f2, separable)
        self.linear = nn.Linear(self.inc2.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.stem(x), _SLOPE)
        h = self.inc2(F.avg_pool2d(self.inc1(h), 2))
        return self.linear(h.mean(dim=(2, 3))).squeeze(1)


class _DenseBlock(nn.Module):
    """Each layer sees the concatenation of the block input and all previous
    layers' outputs (Huang et al. 2017) and adds ``growth`` channels; here a
    layer is a separable inception block with ``growth // 4`` per branch."""

    def __init__(self, in_channels: int, layers: int, growth: int) -> None:
        super().__init__()
        if growth % 4:
            raise ValueError(f"growth must be a multiple of 4 (four inception branches), "
                             f"got {growth}")
        self.layers = nn.ModuleList(
            InceptionBlock(in_channels + i * growth, growth // 4, separable=True)
            for i in range(layers))
        self.out_channels = in_channels + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class DenseInceptionDiscriminator(nn.Module):
    """Depthwise + inception + dense blocks: separable stem 3x3/2 (``base``,
    14x14) -> dense block -> transition (1x1 to ``base * 2``, 2x2 average
    pool, 7x7) -> dense block -> global average pool -> linear."""

    def __init__(self, base: int = 32, growth: int = 16, layers: int = 3,
                 in_channels: int = 1) -> None:
        super().__init__()
        for name, value in (("base", base), ("growth", growth), ("layers", layers),
                            ("in_channels", in_channels)):
            _check_positive(name, value)
        self.stem = SeparableConv2d(in_channels, base, 3, stride=2)
        self.dense1 = _DenseBlock(base, layers, growth)
        self.transition = nn.Conv2d(self.dense1.out_channels, 2 * base, 1)
        self.dense2 = _DenseBlock(2 * base, layers, growth)
        self.linear = nn.Linear(self.dense2.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dense1(F.leaky_relu(self.stem(x), _SLOPE))
        h = F.avg_pool2d(F.leaky_relu(self.transition(h), _SLOPE), 2)
        h = self.dense2(h)
        return self.linear(h.mean(dim=(2, 3))).squeeze(1)


# name -> factory taking in_channels; the study's six discriminators.
DISCRIMINATORS: dict[str, Callable[[int], nn.Module]] = {
    "original": lambda c: OriginalDiscriminator(64, c),
    "ds-inception": lambda c: InceptionDiscriminator(32, 16, 32, separable=True, in_channels=c),
    "inception-32": lambda c: InceptionDiscriminator(32, in_channels=c),
    "inception-16": lambda c: InceptionDiscriminator(16, in_channels=c),
    "inception-8": lambda c: InceptionDiscriminator(8, in_channels=c),
    "ds-inception-dense": lambda c: DenseInceptionDiscriminator(32, 16, 3, in_channels=c),
}


def make_discriminator(name: str, in_channels: int = 1) -> nn.Module:
    """Build one of :data:`DISCRIMINATORS` by name."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"discriminator must be one of {sorted(DISCRIMINATORS)}, got {name!r}")
    return DISCRIMINATORS[name](in_channels)
