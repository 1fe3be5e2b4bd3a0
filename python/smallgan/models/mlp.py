"""Fully connected ReLU networks for low-dimensional GAN experiments.

The paper's mixture-of-Gaussians runs (after Azadi et al. 2018) use
"4-layer" ReLU MLPs for both networks; we read that as four linear layers
(three hidden ReLU layers of equal width).

Example
-------
>>> import torch
>>> g, d = MLPGenerator(z_dim=2, hidden=64), MLPDiscriminator(in_dim=2, hidden=64)
>>> d(g(torch.zeros(5, 2))).shape
torch.Size([5])
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "MLPGenerator", "MLPDiscriminator"]


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class MLP(nn.Sequential):
    """``layers`` linear layers with ReLU between them (none after the last).

    Parameters
    ----------
    in_dim, out_dim, hidden : int
        Input, output and hidden widths.
    layers : int
        Number of linear layers (>= 1); 4 as in the paper.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int, layers: int = 4) -> None:
        for name, v in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden", hidden),
                        ("layers", layers)):
            _check_positive(name, v)
        widths = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        mods: list = []
        for i in range(layers):
            mods.append(nn.Linear(widths[i], widths[i + 1]))
            if i < layers - 1:
                mods.append(nn.ReLU())
        super().__init__(*mods)


class MLPGenerator(MLP):
    """Maps ``(b, z_dim)`` noise to ``(b, out_dim)`` points; linear output."""

    def __init__(self, z_dim: int = 2, hidden: int = 128, out_dim: int = 2,
                 layers: int = 4) -> None:
        super().__init__(z_dim, out_dim, hidden, layers)


class MLPDiscriminator(MLP):
    """Maps ``(b, in_dim)`` points to ``(b,)`` logits."""

    def __init__(self, in_dim: int = 2, hidden: int = 128, layers: int = 4) -> None:
        super().__init__(in_dim, 1, hidden, layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return super().forward(x).squeeze(-1)
