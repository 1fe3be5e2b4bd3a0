"""The 2-D grid mixture of Gaussians used for mode-dropping experiments.

The paper's Table 1 follows Azadi et al. 2018 (DRS), who follow PacGAN and
VEEGAN: ``m`` isotropic Gaussians with standard deviation 0.05 whose means lie
on a ``sqrt(m) x sqrt(m)`` grid with spacing 2, centred on the origin (for
``m = 25`` the means are ``{-4, -2, 0, 2, 4}^2``, PacGAN's grid).  Every
component has the same weight.

Example
-------
>>> grid = GMMGrid(25)
>>> grid.means.shape
(25, 2)
>>> x, labels = grid.sample(1000, seed=0)
>>> x.shape, x.dtype, labels.shape
((1000, 2), dtype('float32'), (1000,))
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Tuple, Union

import numpy as np

__all__ = ["GMMGrid", "grid_means", "PAPER_MODES"]

#: The numbers of modes in the paper's Table 1.
PAPER_MODES: Tuple[int, ...] = (25, 36, 49, 64, 81, 100)

SeedLike = Union[None, int, np.random.Generator]


def grid_means(m: int, spacing: float = 2.0) -> np.ndarray:
    """Means of ``m`` components on a centred square grid.

    Parameters
    ----------
    m : int
        Number of components; must be a perfect square >= 1.
    spacing : float
        Distance between neighbouring means along each axis (> 0).

    Returns
    -------
    np.ndarray
        Shape ``(m, 2)``, float64, row-major over the grid (x varies fastest).
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m must be a positive perfect square, got {m!r}")
    side = math.isqrt(int(m))
    if side * side != m:
        raise ValueError(f"m must be a perfect square (a sqrt(m) x sqrt(m) grid), got {m!r}")
    if not (spacing > 0 and math.isfinite(spacing)):
        raise ValueError(f"spacing must be a positive finite number, got {spacing!r}")
    # centre the grid on the origin so the generator's output needs no bias shift
    ticks = (np.arange(side, dtype=np.float64) - (side - 1) / 2.0) * spacing
    gx, gy = np.meshgrid(ticks, ticks, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


@dataclass(frozen=True)
class GMMGrid:
    """An equal-weight mixture of isotropic 2-D Gaussians on a square grid.

    Parameters
    ----------
    m : int
        Number of modes (a perfect square).
    std : float
        Standard deviation of every component along each axis (default 0.05).
    spacing : float
        Grid spacing (default 2).

    Thread safety
    -------------
    Immutable; safe to share.  ``sample`` uses only the generator it is given.
    """

    m: int
    std: float = 0.05
    spacing: float = 2.0
    means: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.std, (int, float)) and self.std > 0 and math.isfinite(self.std)):
            raise ValueError(f"std must be a positive finite number, got {self.std!r}")
        object.__setattr__(self, "means", grid_means(self.m, self.spacing))

    def sample(self, n: int, seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` points.

        Parameters
        ----------
        n : int
            Number of points (>= 1).
        seed : None, int or numpy.random.Generator
            Passed to ``numpy.random.default_rng``.

        Returns
        -------
        points : np.ndarray
            Shape ``(n, 2)``, float32.
        labels : np.ndarray
            Shape ``(n,)``, int64: the component each point was drawn from.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, self.m, size=int(n))
        points = self.means[labels] + rng.normal(scale=self.std, size=(int(n), 2))
        return points.astype(np.float32), labels.astype(np.int64)
