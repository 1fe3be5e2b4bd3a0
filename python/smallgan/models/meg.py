"""The MNIST networks of MEG (Kumar et al. 2019, "Maximum Entropy Generators
for Energy-Based Models"), used for the paper's anomaly detection (Table 2).

- :class:`MEGGenerator` G: ``z`` (128-d) -> Linear to ``2 x 2 x dim`` -> four
  ``ConvTranspose2d(k=5, s=2)`` with BatchNorm + ReLU between them ->
  ``(1, 28, 28)`` through tanh.  Spatial sizes 2 -> 4 -> 7 -> 14 -> 28
  (padding 2 everywhere, output padding 1, 0, 1, 1: our choice, the only
  one with k = 5, s = 2, padding 2 that lands exactly on 28).
- :class:`MEGEnergy` E: four ``Conv2d(k=5, s=2, p=2)`` with widths
  ``dim/8, dim/4, dim/2, dim`` (64-128-256-512 at the paper's ``dim=512``),
  LeakyReLU 0.2, no normalisation (the gradient penalty acts on E's input
  gradient), Linear to one energy per image.  28 -> 14 -> 7 -> 4 -> 2.
- :class:`MEGStatistics` T(x, z): the same conv trunk, a Linear to 128
  features, concatenated with ``z``, an MLP ``(128 + z_dim) -> dim -> 1``
  (512 at the paper's width).

``dim`` must be a multiple of 8; the tests use small widths.

Example
-------
>>> g, e = MEGGenerator(dim=32), MEGEnergy(dim=32)
>>> e(g(torch.randn(3, 128))).shape
torch.Size([3])
"""
from __future__ import annotations

import torch
from torch import nn

from smallgan.checks import check_int

__all__ = ["MEGGenerator", "MEGEnergy", "MEGStatistics"]


def _check_dim(dim: int) -> int:
    check_int("dim", dim, 8)
    if dim % 8:
        raise ValueError(f"dim must be a multiple of 8, got {dim}")
    return dim


def _trunk(in_channels: int, dim: int) -> nn.Sequential:
    widths = [in_channels, dim // 8, dim // 4, dim // 2, dim]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(a, b, 5, 2, 2), nn.LeakyReLU(0.2)]
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)  # (b, 1, 28, 28) -> (b, dim * 2 * 2)


class MEGGenerator(nn.Module):
    """G: ``(b, z_dim)`` -> ``(b, 1, 28, 28)`` in ``[-1, 1]``."""

    def __init__(self, z_dim: int = 128, dim: int = 512, out_channels: int = 1) -> None:
        super().__init__()
        check_int("z_dim", z_dim, 1)
        self.dim = _check_dim(dim)
        self.expand = nn.Linear(z_dim, 2 * 2 * dim)
        widths = [dim, dim // 2, dim // 4, dim // 8]
        out_pad = [1, 0, 1, 1]  # 2 -> 4 -> 7 -> 14 -> 28
        layers = [nn.BatchNorm2d(dim), nn.ReLU(True)]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [nn.ConvTranspose2d(a, b, 5, 2, 2, output_padding=out_pad[i]),
                       nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 5, 2, 2, output_padding=out_pad[3]),
                   nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(self.expand(z).view(z.shape[0], self.dim, 2, 2))


class MEGEnergy(nn.Module):
    """E: ``(b, 1, 28, 28)`` -> ``(b,)`` energies (low = data-like)."""

    def __init__(self, dim: int = 512, in_channels: int = 1) -> None:
        super().__init__()
        _check_dim(dim)
        self.trunk = _trunk(in_channels, dim)
        self.out = nn.Linear(dim * 2 * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(x)).squeeze(1)


class MEGStatistics(nn.Module):
    """T(x, z): ``(b, 1, 28, 28)``, ``(b, z_dim)`` -> ``(b,)`` logits."""

    def __init__(self, z_dim: int = 128, dim: int = 512, in_channels: int = 1,
                 features: int = 128) -> None:
        super().__init__()
        check_int("z_dim", z_dim, 1)
        _check_dim(dim)
        self.trunk = nn.Sequential(_trunk(in_channels, dim), nn.Linear(dim * 2 * 2, features))
        self.mlp = nn.Sequential(nn.Linear(features + z_dim, dim), nn.LeakyReLU(0.2),
                                 nn.Linear(dim, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([self.trunk(x), z], dim=1)).squeeze(1)
