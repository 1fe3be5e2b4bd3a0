"""CIFAR-10 from the local "python version" batches (``cifar-10-batches-py``).

Expected files (from ``cifar-10-python.tar.gz``): ``data_batch_1`` ...
``data_batch_5`` and ``test_batch``, each a pickled dict with ``data``
(10000 x 3072 uint8: 1024 red, 1024 green, 1024 blue values, rows of 32) and
``labels``.  ``root`` may be that folder or its parent.  Nothing is downloaded.

The pickles are read with an unpickler that only accepts what these files
contain (numpy arrays, dicts, lists, bytes), so a tampered file cannot run code.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["CIFAR10", "CLASSES", "read_batch"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST = ("test_batch",)
_FOLDER = "cifar-10-batches-py"

# The only globals a CIFAR batch pickle references (numpy moved
# numpy.core to numpy._core in 2.0; files written by either are accepted).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles from Python 3 spell bytes
    # protocol-5 pickles of contiguous arrays (a batch re-saved with Python 3)
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR-10 batch")


def read_batch(path: Union[str, "os.PathLike[str]"]) -> Tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch file.

    Returns
    -------
    images : numpy.ndarray of shape (n, 3, 32, 32), uint8
    labels : numpy.ndarray of shape (n,), int64

    Raises
    ------
    ValueError
        The file is not a CIFAR-10 batch (wrong keys, shapes, or a pickle
        referencing anything but numpy arrays).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            d = _BatchUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (top level is {type(d).__name__}, expected dict)")
    # Written by Python 2: keys are bytes; accept str keys too (re-saved files).
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"{path}: not a CIFAR-10 python batch (keys {sorted(d)}, expected data and labels)")
    data = np.asarray(d["data"])
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: data must be uint8 of shape (n, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10(Dataset):
    """CIFAR-10 images from local python batches.

    Parameters
    ----------
    root : str or os.PathLike
        The ``cifar-10-batches-py`` folder, or the folder containing it.
    train : bool
        ``True``: the 50,000 training images; ``False``: the 10,000 test images.

    Items
    -----
    ``(image, label)``: float32 tensor of shape (3, 32, 32) in ``[0, 1]``, and
    an int in ``[0, 10)`` (see ``CLASSES``).

    Thread safety
    -------------
    Read-only after construction; safe to share between DataLoader workers.
    """

    def __init__(self, root: Union[str, "os.PathLike[str]"], train: bool = True) -> None:
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {train!r}")
        root = Path(root).expanduser()
        folder = root if root.name == _FOLDER or not (root / _FOLDER).is_dir() else root / _FOLDER
        names = _TRAIN if train else _TEST
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"CIFAR-10 batch file(s) {missing} not found in {str(folder)!r}. smallgan never downloads: "
                f"get cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and extract it "
                f"into {str(root)!r}, so that {str(root / _FOLDER)!r} holds data_batch_1..5 and test_batch."
            )
        parts = [read_batch(folder / n) for n in names]
        self.root = folder
        self.train = train
        self.images = np.concatenate([p[0] for p in parts])  # (n, 3, 32, 32) uint8
        self.labels = np.concatenate([p[1] for p in parts])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        return torch.from_numpy(self.images[index]).float().div_(255.0), int(self.labels[index])
