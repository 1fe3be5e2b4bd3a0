"""Plumbing shared by the image experiments (SN-GAN, SAGAN, LSGAN, timing).

- :class:`GANImages`: a reader's ``(image in [0, 1], label)`` items as GAN
  inputs in ``[-1, 1]`` (the range of the generators' tanh), optionally
  resized, fetched a whole batch at a time (``__getitems__``).
- :func:`image_grid` / :func:`save_grid`: sample grid PNGs.
- :func:`fid_hook`: an evaluation hook for the trainer that reports FID (or
  the labelled fallback distance) with its protocol.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

__all__ = ["GANImages", "collate_batch", "image_grid", "save_grid", "fid_hook", "EMBEDDINGS",
           "real_embeddings", "embeddings_from_cache", "embedded_dataset", "default_cache_dir"]


class GANImages(Dataset):
    """Images of ``base`` mapped from [0, 1] to [-1, 1].

    Parameters
    ----------
    base : Dataset
        Items ``image`` or ``(image, label, ...)`` with ``image`` a float
        tensor ``(c, h, w)`` in [0, 1] (every ``smallgan.data`` reader).
    size : int, optional
        Resize to ``size x size`` (bilinear) on the fly, e.g. 8x8 digits to
        the 28x28 the LSGAN models take.
    limit : int, optional
        Use only the first ``limit`` items (quick runs).

    Items are ``(c, size, size)`` float32 tensors; a list of indices gives a
    stacked ``(b, c, size, size)`` tensor (pass ``collate_fn=collate_batch``).
    """

    def __init__(self, base: Dataset, size: Optional[int] = None,
                 limit: Optional[int] = None) -> None:
        n = len(base)  # type: ignore[arg-type]
        if n < 1:
            raise ValueError("base dataset is empty")
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        self.base, self.size = base, size
        self.n = min(n, limit) if limit is not None else n

    def __len__(self) -> int:
        return self.n

    def _image(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} images")
        item = self.base[index]
        x = item[0] if isinstance(item, (tuple, list)) else item
        return x.float()

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False)
        return x * 2.0 - 1.0

    def __getitem__(self, index: int) -> torch.Tensor:
        return self._finish(self._image(index)[None])[0]

    def __getitems__(self, indices: Sequence[int]) -> torch.Tensor:
        return self._finish(torch.stack([self._image(int(i)) for i in indices]))

    def batches(self, batch_size: int = 256) -> DataLoader:
        """A sequential loader over all images (for FID statistics and embeddings)."""
        return DataLoader(self, batch_size=batch_size, shuffle=False, collate_fn=collate_batch)


def collate_batch(batch: Any) -> torch.Tensor:
    """``collate_fn`` for :class:`GANImages`: batches arrive already stacked."""
    if isinstance(batch, torch.Tensor):
        return batch
    return torch.stack(list(batch))


def image_grid(images: torch.Tensor, nrow: Optional[int] = None, pad: int = 1) -> np.ndarray:
    """Tile ``(b, c, h, w)`` images in [-1, 1] into one ``(H, W, 3)`` array in [0, 1]."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (b, 1|3, h, w), got {tuple(images.shape)}")
    x = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    b, _, h, w = x.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(b))))
    ncol = int(math.ceil(b / nrow))
    grid = torch.ones(3, ncol * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(b):
        r, c = divmod(i, nrow)
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + c * (w + pad):pad + c * (w + pad) + w] = x[i]
    return grid.permute(1, 2, 0).numpy()


def save_grid(images: torch.Tensor, path: Union[str, Path], nrow: Optional[int] = None) -> Path:
    """Write :func:`image_grid` of ``images`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, image_grid(images, nrow))
    return path


def fid_hook(real: GANImages, *, n_fake: int, n_real: int, feature: str = "inception",
             weights: Optional[str] = None, fallback: bool = True,
             cache_dir: Optional[Union[str, Path]] = None, dataset: str = "real",
             device: str = "cpu",
             batch_size: int = 250, log: Optional[Callable[[str], None]] = print
             ) -> Callable[[Any, int], Dict[str, float]]:
    """A trainer ``eval_fn`` reporting the Fréchet distance of the EMA (or
    plain) generator to ``real`` under the given protocol.

    Real statistics are cached in ``cache_dir`` (put it next to the
    embedding cache) under a name holding ``dataset``, the feature actually
    used and ``n_real``. The extractor is loaded once, on first use. The returned metric is named
    ``fid`` only for Inception FID weights; otherwise ``fd_<feature>`` so a
    fallback number can never be mistaken for an FID in ``metrics.csv``.
    Each evaluation also prints the value with its protocol.
    """
    from smallgan.metrics import fid as fidlib

    state: Dict[str, Any] = {}

    def evaluate(trainer: Any, step: int) -> Dict[str, float]:
        if "extractor" not in state:
            state["extractor"], state["feature"] = fidlib.load_feature_extractor(
                feature, weights=weights, device=device, fallback=fallback)
        seed = [step]

        def sample(b: int) -> torch.Tensor:
            seed[0] += 1  # fresh, reproducible noise per batch
            return trainer.sample(b, seed=seed[0], batch=b)

        cache = (fidlib.stats_path(cache_dir, dataset, state["feature"], n_real)
                 if cache_dir is not None else None)
        result = fidlib.fid(sample, lambda: real.batches(batch_size), n_fake=n_fake,
                            n_real=n_real, batch_size=batch_size, feature=state["feature"],
                            extractor=state["extractor"], cache=cache, device=device)
        if log is not None:
            log(f"step {step}: {result}")
        key = "fid" if result.comparable else f"fd_{result.feature.replace('-', '_')}"
        return {key: result.value, "fid_n_fake": float(result.n_fake),
                "fid_n_real": float(result.n_real)}

    return evaluate


# ---------------------------------------------------------------------------
# Embeddings of the real images, for the target core-set

#: What the target core-set is computed on: Inception pool3 features (the
#: paper), the labelled random-conv fallback, the raw pixels (Table 6
#: ablation "core-set on raw images"), or, for 28x28 digits only, the
#: penultimate features of the project's MNIST classifier (the network the
#: digit experiments are evaluated with; one 128-d block per channel).
EMBEDDINGS = ("inception", "random-conv", "raw", "mnist-cnn")


def default_cache_dir() -> Path:
    """``$SMALLGAN_CACHE`` or ``~/.cache/smallgan``: embeddings and FID statistics."""
    import os

    env = os.environ.get("SMALLGAN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "smallgan"


def real_embeddings(images: GANImages, kind: str, dim: int, *, seed: int = 0,
                    cache_dir: Optional[Union[str, Path]] = None, dataset: str = "real",
                    weights: Optional[str] = None, fallback: bool = False,
                    device: str = "cpu", batch_size: int = 256) -> tuple[np.ndarray, str]:
    """Embeddings of every image, randomly projected to ``dim`` (0: unprojected).

    Parameters
    ----------
    images : GANImages
    kind : {"inception", "random-conv", "raw", "mnist-cnn"}
        See :data:`EMBEDDINGS`.  ``"mnist-cnn"`` needs images of shape
        ``(c, 28, 28)`` (MNIST, Stacked MNIST): each channel goes through
        the cached classifier
        (:func:`smallgan.metrics.classifier.load_mnist_classifier`, loaded
        from ``cache_dir`` and trained there on first use) and the channels'
        features are concatenated, as
        :class:`~smallgan.metrics.classifier.DigitFeatures` does for the
        metrics; the cache file's name holds the classifier's key.
    dim : int
        Random projection size (paper Sec. 3.2), 0 to keep the full features
        (the Table 6 ablation "unprojected embeddings"). Everything is cached
        (with its manifest) by :func:`smallgan.embeddings.compute_embeddings`
        in ``cache_dir``, raw pixels included (projected, they are small).
    seed : int
        Seed of the projection matrix.
    fallback : bool
        With ``kind="inception"`` and no weights: use random-conv features.

    Returns
    -------
    embeddings : ndarray, shape (len(images), dim or D), float32
    name : str
        What was actually used, e.g. ``"inception/proj128-seed0"``.
    """
    from smallgan.embeddings import compute_embeddings
    from smallgan.metrics.fid import load_feature_extractor

    if kind not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {kind!r}")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
        raise ValueError(f"projection dim must be a non-negative integer, got {dim!r}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file_name = None
    if kind == "raw":
        extractor, name = torch.nn.Flatten(), "raw"  # pixels are their own features
    elif kind == "mnist-cnn":
        from smallgan.metrics.classifier import DigitFeatures, load_mnist_classifier

        shape = tuple(images[0].shape)
        if len(shape) != 3 or shape[1:] != (28, 28):
            raise ValueError(f"embedding='mnist-cnn' needs 28x28 digit images (c, 28, 28), got "
                             f"images of shape {shape}; use 'raw' or 'inception' for other data")
        net = load_mnist_classifier(cache_dir=cache, device=device)
        extractor, name = DigitFeatures(net).to(device), "mnist-cnn"
        # another classifier (code, settings, data) is another file, not a
        # manifest mismatch
        file_name = f"mnist-cnn-{net.info.key}"
    else:
        extractor, name = load_feature_extractor(kind, weights=weights, device=device,
                                                 fallback=fallback)
    suffix = f"proj{dim}-seed{seed}" if dim else "unprojected"
    # One file per (dataset, features, projection), in the format and with
    # the manifest `smallgan embed` writes; the manifest refuses a mismatch,
    # so different settings never share a path.  The training seed is not
    # part of it: every seed of an experiment reuses the one cache.
    path = cache / f"{dataset}.{file_name or name}.{suffix}.npy"
    cache.mkdir(parents=True, exist_ok=True)
    feats = compute_embeddings(embedded_dataset(images), extractor, path, batch_size=batch_size,
                               device=device, progress=False,
                               projection={"dim": dim, "seed": seed} if dim else None)
    return np.ascontiguousarray(feats, dtype=np.float32), f"{name}/{suffix}"


def embedded_dataset(images: GANImages) -> Dataset:
    """What the embeddings of ``images`` are computed on: images in [0, 1].

    Without resizing or a limit, the reader itself, item for item, which is
    what ``smallgan embed`` embeds: the two caches have the same dataset
    fingerprint and either can serve the other.
    """
    same_size = images.size is None or tuple(images._image(0).shape[-2:]) == (images.size,) * 2
    if same_size and images.n == len(images.base):  # type: ignore[arg-type]
        return images.base
    return _Unit(images)


def embeddings_from_cache(images: GANImages, path: Union[str, Path]) -> tuple[np.ndarray, str]:
    """Embeddings from a ``smallgan embed`` cache, checked against ``images``.

    Raises ``ValueError`` (naming the path and both values) when the cache is
    unfinished or its manifest describes another dataset (length or content
    fingerprint), ``FileNotFoundError`` when there is no cache at ``path``.
    Returns the embeddings and a name for logs (the manifest's extractor and
    projection).
    """
    from smallgan.embeddings import dataset_fingerprint, load_embeddings, read_manifest

    path = Path(path)
    manifest = read_manifest(path)
    data = embedded_dataset(images)
    want = {"length": len(data), "fingerprint": dataset_fingerprint(data)}  # type: ignore[arg-type]
    have = manifest.get("dataset", {})
    for key in ("length", "fingerprint"):
        if have.get(key) != want[key]:
            raise ValueError(
                f"embeddings {str(path)!r} were computed on another dataset: its manifest has "
                f"{key} {have.get(key)!r}, this run's dataset has {want[key]!r} (same dataset, "
                f"split, image size and limit are needed; rebuild it with `smallgan embed`)")
    emb = load_embeddings(path)
    proj = manifest.get("projection") or {}
    name = f"{manifest.get('extractor', '?')}/" + (
        f"proj{proj.get('dim')}-seed{proj.get('seed')}" if proj else "unprojected")
    return np.ascontiguousarray(emb, dtype=np.float32), f"{path.name}: {name}"


class _Unit(Dataset):
    """``images`` back in [0, 1], the range feature extractors take."""

    def __init__(self, images: GANImages) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return (self.images[index] + 1.0) / 2.0
