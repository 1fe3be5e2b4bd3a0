"""Inception-v3 pool3 features (2048-d) from local weights, for embeddings and FID.

A self-contained Inception-v3 (Szegedy et al. 2016) trunk, so that neither
torchvision nor a network connection is needed.  Parameter names follow
torchvision's ``Inception3`` (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b...``),
so both files users actually have load directly:

* ``pt_inception-2015-12-05-6726825d.pth``: the FID weights (the TensorFlow
  2015-12-05 graph ported to PyTorch by pytorch-fid; torch-fidelity uses the
  same numbers).  Its classifier has 1008 classes and four blocks differ from
  torchvision's: TensorFlow's average pooling ignores padded zeros
  (``Mixed_5b-5d``, ``Mixed_6b-6e``, ``Mixed_7b``), and ``Mixed_7c`` pools its
  side branch with a max instead of an average.  These are the features every
  published FID is computed from.
* torchvision's ``inception_v3`` ImageNet state dict (1000 classes, with an
  auxiliary classifier).  Features from it are *not* comparable with FID.

The layout is detected from the classifier's size (1008 rows: FID).

Preprocessing is the FID convention (pytorch-fid): images in ``[0, 1]`` are
resized to 299 x 299 with bilinear interpolation (``align_corners=False``),
then mapped to ``[-1, 1]``.  Grey images are repeated over three channels.

Weights are found, in order: the ``weights`` argument, the
``SMALLGAN_INCEPTION_WEIGHTS`` environment variable, then
``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth`` (where
pytorch-fid caches it).  Nothing is ever downloaded.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FID_WEIGHTS_FILE", "InceptionV3Pool3", "default_weights_path", "load_inception"]

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
_FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILE
ENV_VAR = "SMALLGAN_INCEPTION_WEIGHTS"
LAYOUTS = ("fid", "torchvision")
_CLASSES = {"fid": 1008, "torchvision": 1000}


class _ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3, as ported from TensorFlow) + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: Union[int, Tuple[int, int]], stride: int = 1,
                 padding: Union[int, Tuple[int, int]] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor, fid: bool) -> torch.Tensor:
    # TensorFlow's 'SAME' average pool divides by the number of real pixels;
    # torchvision's port counts the zero padding.  The FID graph is TF's.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not fid)


class _MixedA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches (out 224 + pool)."""

    def __init__(self, cin: int, pool: int, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = _ConvBN(cin, 64, 1)
        self.branch5x5_1 = _ConvBN(cin, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(cin, pool, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg3(x, self.fid))
        return torch.cat([a, b, c, d], 1)


class _ReduceB(nn.Module):
    """35x35 -> 17x17 grid reduction (out 384 + 96 + cin)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class _MixedC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (out 768)."""

    def __init__(self, cin: int, c7: int, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = _ConvBN(cin, 192, 1)
        self.branch7x7_1 = _ConvBN(cin, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = conv(c)
        d = self.branch_pool(_avg3(x, self.fid))
        return torch.cat([a, b, c, d], 1)


class _ReduceD(nn.Module):
    """17x17 -> 8x8 grid reduction (out 320 + 192 + cin)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _ConvBN(cin, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = conv(b)
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class _MixedE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (out 2048).

    ``pool``: "avg" (torchvision), "avg_tf" (padding excluded) or "max" (the
    FID graph's last block).
    """

    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = _ConvBN(cin, 320, 1)
        self.branch3x3_1 = _ConvBN(cin, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        if self.pool == "max":
            p = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            p = _avg3(x, fid=self.pool == "avg_tf")
        return torch.cat([a, b, c, self.branch_pool(p)], 1)


class InceptionV3Pool3(nn.Module):
    """Inception-v3 up to the global average pool: images -> (b, 2048) features.

    Parameters
    ----------
    layout : {"fid", "torchvision"}
        Which variant of the four pooling details to use (see module
        docstring).  Parameter names and shapes are the same for both.

    Notes
    -----
    Input: float tensor of shape (b, 3, H, W) or (b, 1, H, W), values in
    ``[0, 1]``, any H, W (resized to 299 x 299).  Output: float tensor of shape
    (b, 2048), non-negative.  The classifier (``fc``) is not kept: only
    pool3 features are used (FID, core-set embeddings).
    """

    def __init__(self, layout: str = "fid") -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.layout = layout
        fid = layout == "fid"
        self.extractor_id = f"inception-v3-pool3/{layout}/untrained"
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _MixedA(192, 32, fid)
        self.Mixed_5c = _MixedA(256, 64, fid)
        self.Mixed_5d = _MixedA(288, 64, fid)
        self.Mixed_6a = _ReduceB(288)
        self.Mixed_6b = _MixedC(768, 128, fid)
        self.Mixed_6c = _MixedC(768, 160, fid)
        self.Mixed_6d = _MixedC(768, 160, fid)
        self.Mixed_6e = _MixedC(768, 192, fid)
        self.Mixed_7a = _ReduceD(768)
        self.Mixed_7b = _MixedE(1280, "avg_tf" if fid else "avg")
        self.Mixed_7c = _MixedE(2048, "max" if fid else "avg")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must have shape (b, 3 or 1, H, W), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"images must be a float tensor in [0, 1], got dtype {images.dtype}")
        x = images
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def default_weights_path() -> Path:
    """Where :func:`load_inception` looks when no ``weights`` argument is given.

    Returns
    -------
    pathlib.Path
        ``$SMALLGAN_INCEPTION_WEIGHTS`` if set, else
        ``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``
        (``TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch`` or
        ``~/.cache/torch``, as torch.hub resolves it).
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        torch_home = os.path.join(xdg, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints" / FID_WEIGHTS_FILE


def _missing_weights_message(path: Path, how: str) -> str:
    default = default_weights_path() if not os.environ.get(ENV_VAR) else None
    where = str(default) if default is not None else "$TORCH_HOME/hub/checkpoints/" + FID_WEIGHTS_FILE
    return (
        f"Inception-v3 weights not found: {str(path)!r} ({how}) does not exist. smallgan never downloads. "
        f"Obtain the FID weights file {FID_WEIGHTS_FILE} (from {_FID_WEIGHTS_URL}, about 92 MB) "
        f"or torchvision's inception_v3 ImageNet state dict, then either put it at {where}, "
        f"set {ENV_VAR}=/path/to/file, or pass weights='/path/to/file'."
    )


def _detect_layout(state: Mapping[str, Any]) -> str:
    fc = state.get("fc.weight")
    if fc is not None:
        rows = int(fc.shape[0])
        if rows == _CLASSES["fid"]:
            return "fid"
        if rows == _CLASSES["torchvision"]:
            return "torchvision"
        raise ValueError(
            f"cannot tell the Inception layout: fc.weight has {rows} rows, expected 1008 (FID weights) "
            f"or 1000 (torchvision); pass layout='fid' or layout='torchvision'"
        )
    if any(k.startswith("AuxLogits.") for k in state):
        return "torchvision"
    raise ValueError(
        "cannot tell the Inception layout: the state dict has no fc.weight; "
        "pass layout='fid' or layout='torchvision'"
    )


# Keys a real weights file may carry that pool3 features do not use.
def _is_unused_key(key: str) -> bool:
    return key.startswith("fc.") or key.startswith("AuxLogits.") or key.endswith("num_batches_tracked")


def load_inception(
    weights: Union[str, "os.PathLike[str]", Mapping[str, torch.Tensor], None] = None,
    device: Union[str, torch.device] = "cpu",
    *,
    layout: str = "auto",
) -> torch.nn.Module:
    """Build the Inception-v3 pool3 feature extractor from local weights.

    Parameters
    ----------
    weights : path, state dict, or None
        A ``.pth`` file (FID weights or torchvision's ``inception_v3``), or an
        already-loaded state dict.  ``None``: ``$SMALLGAN_INCEPTION_WEIGHTS``,
        else ``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``.
    device : str or torch.device
        Where the module lives.
    layout : {"auto", "fid", "torchvision"}
        Architecture variant; "auto" reads it from the classifier size
        (1008 classes: FID, 1000: torchvision).

    Returns
    -------
    torch.nn.Module
        In eval mode with ``requires_grad=False``.  Maps a float tensor of
        shape (b, 3 or 1, H, W) with values in ``[0, 1]`` to a float32 tensor
        of shape (b, 2048): resized to 299 x 299 (bilinear), scaled to
        ``[-1, 1]``, as pytorch-fid does.  Has an ``extractor_id`` string
        (layout and a digest of the weights) used by embedding caches.

    Raises
    ------
    FileNotFoundError
        The weights file does not exist; the message names the file to obtain
        and where to put it.
    ValueError
        The state dict lacks a parameter, has one of the wrong shape, has
        unexpected keys, or its layout cannot be determined.

    Thread safety
    -------------
    Loading is reentrant; the returned module may be called from several
    threads under ``torch.inference_mode()``.

    Examples
    --------
    >>> net = load_inception()                      # doctest: +SKIP
    >>> net(torch.rand(4, 3, 32, 32)).shape         # doctest: +SKIP
    torch.Size([4, 2048])
    """
    if layout != "auto" and layout not in LAYOUTS:
        raise ValueError(f"layout must be 'auto', 'fid' or 'torchvision', got {layout!r}")
    if weights is None or isinstance(weights, (str, os.PathLike)):
        if weights is None:
            path = default_weights_path()
            how = f"from ${ENV_VAR}" if os.environ.get(ENV_VAR) else "the default location"
        else:
            path = Path(weights).expanduser()
            how = "the weights argument"
        if not path.is_file():
            raise FileNotFoundError(_missing_weights_message(path, how))
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        state = torch.load(path, map_location="cpu", weights_only=True)
        source = f"sha256:{digest.hexdigest()[:16]}"
    elif isinstance(weights, Mapping):
        state = weights
        source = None
    else:
        raise TypeError(f"weights must be a path, a state dict or None, got {type(weights).__name__}")
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]  # a training checkpoint wrapping the weights
    if not isinstance(state, Mapping):
        raise ValueError(f"weights file does not hold a state dict, got {type(state).__name__}")

    chosen = _detect_layout(state) if layout == "auto" else layout
    model = InceptionV3Pool3(chosen)
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(
            f"Inception state dict is missing {len(missing)} parameter(s), first {missing[:3]}; "
            f"expected torchvision's Inception3 key names (e.g. Conv2d_1a_3x3.conv.weight)"
        )
    unexpected = sorted(k for k in state if k not in expected and not _is_unused_key(k))
    if unexpected:
        raise ValueError(f"Inception state dict has {len(unexpected)} unexpected key(s), first {unexpected[:3]}")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(
                f"Inception state dict: {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}"
            )
    model.load_state_dict({k: state[k] for k in expected}, strict=False)
    if source is None:
        digest = hashlib.sha256()
        for k in sorted(expected):
            digest.update(k.encode())
            digest.update(state[k].detach().cpu().contiguous().float().numpy().tobytes())
        source = f"sha256:{digest.hexdigest()[:16]}"
    model.extractor_id = f"inception-v3-pool3/{chosen}/{source}"
    model.requires_grad_(False)
    return model.eval().to(device)
