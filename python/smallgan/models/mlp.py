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


def _check_scale(scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
            0 < scale < float("inf")):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    return float(scale)


class MLPGenerator(MLP):
    """Maps ``(b, z_dim)`` noise to ``(b, out_dim)`` points; linear output.

    ``scale`` multiplies the output: with the data's scale here the network
    itself works in unit-scale coordinates (PyTorch's default initialisation
    and Adam's step size assume that; see :class:`MLPDiscriminator`).
    """

    def __init__(self, z_dim: int = 2, hidden: int = 128, out_dim: int = 2,
                 layers: int = 4, scale: float = 1.0) -> None:
        super().__init__(z_dim, out_dim, hidden, layers)
        # a buffer, so that it is saved with the weights and a checkpoint
        # restores the network it was taken from
        self.register_buffer("scale", torch.tensor(_check_scale(scale)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return super().forward(z) * self.scale


class MLPDiscriminator(MLP):
    """Maps ``(b, in_dim)`` points to ``(b,)`` logits.

    ``scale`` divides the input.  Why: PyTorch initialises a first-layer bias
    within +-1/sqrt(in_dim), so every ReLU kink of the first layer starts
    within about one unit of the origin; on data spread over +-9 (the
    100-mode grid) the network can only place kinks near far modes after its
    biases have grown ~10x, which takes Adam at lr 1e-4 tens of thousands of
    steps.  Dividing by the data's scale puts the data in the range the
    initialisation assumes.
    """

    def __init__(self, in_dim: int = 2, hidden: int = 128, layers: int = 4,
                 scale: float = 1.0) -> None:
        super().__init__(in_dim, 1, hidden, layers)
        self.register_buffer("scale", torch.tensor(_check_scale(scale)))  # saved, as in G

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return super().forward(x / self.scale).squeeze(-1)
