"""Images from a local folder (PNG, JPEG, BMP, GIF, WebP, TIFF), read with Pillow.

Files are found recursively and sorted by path, so the order (and hence an
embedding cache built over the folder) does not depend on the file system.
As in torchvision's ``ImageFolder``, images inside a first-level sub-folder
take that sub-folder's index among the sorted sub-folder names as label;
images directly in ``root`` get label -1.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageFolder(Dataset):
    """Every image file under ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        Folder to search recursively.  Never written to.
    size : int or (int, int) or None
        Resize every image to ``size`` x ``size`` (or (height, width)) with
        bilinear filtering; ``None`` keeps the file's size (then all images
        must share a size to be batched).
    grayscale : bool
        Convert to one channel ("L") instead of three ("RGB").
    extensions : sequence of str
        Lower-case file suffixes to include.

    Items
    -----
    ``(image, label)``: float32 tensor of shape (3 or 1, H, W) in ``[0, 1]``,
    and an int (sub-folder index, or -1).

    Attributes
    ----------
    files : list of pathlib.Path
        The images, in item order.
    classes : list of str
        Sorted names of the first-level sub-folders that hold images.

    Thread safety
    -------------
    Each item opens its own file; safe to share between DataLoader workers.
    """

    def __init__(
        self,
        root: Union[str, "os.PathLike[str]"],
        size: Union[int, Tuple[int, int], None] = None,
        grayscale: bool = False,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        root = Path(root).expanduser()
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, (int, tuple)):
                raise TypeError(f"size must be an int, a (height, width) tuple or None, got {size!r}")
            hw = (size, size) if isinstance(size, int) else tuple(size)
            if len(hw) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in hw):
                raise ValueError(f"size must be a positive int or (height, width) of positive ints, got {size!r}")
            size = hw
        if not isinstance(grayscale, bool):
            raise TypeError(f"grayscale must be a bool, got {grayscale!r}")
        exts = tuple(e.lower() for e in extensions)
        if not root.is_dir():
            raise FileNotFoundError(
                f"image folder {str(root)!r} does not exist. Put your images in it "
                f"(optionally one sub-folder per class); smallgan never downloads."
            )
        files: List[Path] = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and p.is_file())
        if not files:
            raise FileNotFoundError(
                f"no images ({', '.join(exts)}) found under {str(root)!r}; put your images there "
                f"(optionally one sub-folder per class)"
            )
        self.root = root
        self.size: Optional[Tuple[int, int]] = size
        self.grayscale = grayscale
        self.files = files
        self.classes = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
        index = {c: i for i, c in enumerate(self.classes)}
        self.labels = [index[p.relative_to(root).parts[0]] if len(p.relative_to(root).parts) > 1 else -1
                       for p in files]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        from PIL import Image  # Pillow comes with matplotlib; imported here to keep import time low

        with Image.open(self.files[index]) as img:
            img = img.convert("L" if self.grayscale else "RGB")
            if self.size is not None and img.size != (self.size[1], self.size[0]):
                img = img.resize((self.size[1], self.size[0]), Image.BILINEAR)
            arr = np.array(img, dtype=np.uint8)  # a writable copy: torch warns on read-only buffers
        if arr.ndim == 2:
            arr = arr[None]
        else:
            arr = arr.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0), self.labels[index]
