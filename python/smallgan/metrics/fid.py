"""Fréchet Inception Distance (FID), with the sampling protocol always attached.

FID (Heusel et al. 2017; eq. 3 of the Small-GAN paper) is the Fréchet
distance between two Gaussians fitted to Inception-v3 pool3 features of real
and generated images:

    d^2 = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

The number depends strongly on how many images enter each side (mimicry:
16.77 at 50k/50k vs 23.90 at 10k/5k for the same SN-GAN), so every value
here travels with its protocol (:class:`FIDResult`), and is printed with it.

Features come from :func:`smallgan.inception.load_inception` (local weights
only). Without those weights, ``feature="random-conv"`` gives a seeded random
convolutional network instead: good enough to exercise the pipeline and to
compare runs *with each other*, but not comparable to any published number,
so it is reported as "FD[random-conv]", never as "FID".  For MNIST-family
digits (28 x 28, one digit per channel), ``feature="mnist-cnn"`` uses the
classifier trained in the project (:mod:`smallgan.metrics.classifier`),
reported as "FD[mnist-cnn]".

Statistics are stored as ``.npz`` with ``mu`` and ``sigma`` (as pytorch-fid),
plus ``n`` and ``feature`` so a cache is never reused under another protocol.

>>> import numpy as np
>>> frechet_distance(np.zeros(3), np.eye(3), np.ones(3), np.eye(3))
3.0
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import numpy as np

from smallgan.atomic import atomic_write
from smallgan.checks import check_int

__all__ = [
    "frechet_distance",
    "feature_statistics",
    "save_statistics",
    "load_statistics",
    "FIDResult",
    "random_conv_features",
    "load_feature_extractor",
    "extract_features",
    "real_statistics",
    "fid",
    "stats_path",
    "FEATURES",
]

# Feature extractors: "inception" is the standard one (comparable FID);
# "random-conv" is the labelled, non-comparable fallback; "mnist-cnn" the
# project's digit classifier (labelled, non-comparable, 28x28 digits only).
FEATURES = ("inception", "random-conv", "mnist-cnn")
PathLike = Union[str, os.PathLike]


# ---------------------------------------------------------------------------
# The distance itself


def _check_stats(name: str, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise ValueError(f"mu{name} must be 1-D, got shape {mu.shape}")
    if sigma.shape != (mu.size, mu.size):
        raise ValueError(f"sigma{name} must have shape ({mu.size}, {mu.size}) to match "
                         f"mu{name}, got {sigma.shape}")
    for label, a in ((f"mu{name}", mu), (f"sigma{name}", sigma)):
        bad = int(np.count_nonzero(~np.isfinite(a)))
        if bad:
            raise ValueError(f"{label} contains {bad} NaN or Inf value(s)")
    return mu, sigma


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``Tr((sigma1 sigma2)^(1/2))`` always takes one route, whatever the SciPy
    version: the eigenvalues of ``sigma1 sigma2`` are those of the symmetric
    PSD matrix ``A sigma2 A`` with ``A = sigma1^(1/2)``, so

        Tr((sigma1 sigma2)^(1/2)) = sum_i sqrt(lambda_i(A sigma2 A)),

    with ``A`` from ``eigh(sigma1)`` (rounding-level negative eigenvalues
    clipped to 0) and the ``lambda_i`` from ``eigvalsh``, clipped to 0 the
    same way. Only symmetric eigensolvers are involved, so it works at any
    rank (fewer samples than feature dimensions, constant features) with no
    ``eps * I`` offset, and never produces a complex value.

    pytorch-fid instead takes ``scipy.linalg.sqrtm`` of the non-symmetric
    product and keeps its real part, adding ``eps * I`` to both covariances
    when that root is not finite. On well-conditioned statistics the two
    agree to about 1e-14 relative (tested to 1e-6); on singular or ill-conditioned
    ones both carry rounding errors of order ``sqrt(machine eps)`` times the
    covariance scale, but pytorch-fid's offset, when it is taken, biases the
    value by about ``2 sqrt(eps * s)`` for every direction null in one
    covariance only (0.003 on a 3-d toy, up to ~1 on 2048-d features from
    1,000 samples).

    Parameters
    ----------
    mu1, mu2 : ndarray, shape (d,)
        Means (any real dtype; computed in float64).
    sigma1, sigma2 : ndarray, shape (d, d)
        Covariances, symmetric positive semi-definite; may be singular.

    Returns
    -------
    float
        ``|mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``,
        clipped at 0 (rounding can take an exact 0 slightly below).

    Raises
    ------
    ValueError
        Mismatched shapes, NaN/Inf in the inputs, or a covariance that is
        not positive semi-definite (named, with its offending eigenvalue).

    Thread safety: pure function; safe to call from several threads.
    """
    mu1, sigma1 = _check_stats("1", mu1, sigma1)
    mu2, sigma2 = _check_stats("2", mu2, sigma2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same shape, got {mu1.shape} and {mu2.shape}")
    diff = mu1 - mu2
    tr_covmean = _trace_sqrt_product_psd(sigma1, sigma2)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    # Rounding can take an exact 0 slightly below zero.
    return float(max(value, 0.0))


def _trace_sqrt_product_psd(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr((sigma1 sigma2)^(1/2))`` for PSD inputs of any rank, via the
    similar symmetric matrix ``A sigma2 A`` with ``A = sigma1^(1/2)``."""
    w1, v1 = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    _check_psd("sigma1", w1)
    root1 = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
    inner = root1 @ ((sigma2 + sigma2.T) / 2) @ root1
    w = np.linalg.eigvalsh((inner + inner.T) / 2)
    # A negative eigenvalue of A sigma2 A is one of sigma2 seen through A.
    _check_psd("sigma2", w, "sigma1^(1/2) sigma2 sigma1^(1/2) has ")
    # Clip rounding-level negatives; real negatives were rejected above.
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def _check_psd(name: str, eigenvalues: np.ndarray, where: str = "") -> None:
    scale = max(float(np.max(np.abs(eigenvalues))), 1e-300)
    if float(eigenvalues.min()) < -1e-8 * scale:
        raise ValueError(f"{name} is not positive semi-definite ({where}eigenvalue "
                         f"{float(eigenvalues.min()):.3g}); is it a covariance?")


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of features.

    Parameters
    ----------
    features : ndarray, shape (n, d), n >= 2

    Returns
    -------
    mu : ndarray, shape (d,), float64
    sigma : ndarray, shape (d, d), float64
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be 2-D (n, d), got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"features needs at least 2 rows for a covariance, got {f.shape[0]}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


# ---------------------------------------------------------------------------
# Results and cached statistics


@dataclass(frozen=True)
class FIDResult:
    """A Fréchet distance with the protocol that produced it.

    Attributes
    ----------
    value : float
    n_fake, n_real : int
        Generated and real images used.
    feature : str
        ``"inception"`` (FID weights: a real FID), ``"inception-torchvision"``
        (ImageNet weights: not comparable), ``"random-conv"`` or
        ``"mnist-cnn"`` (not comparable).
    """

    value: float
    n_fake: int
    n_real: int
    feature: str

    @property
    def comparable(self) -> bool:
        """True only for Inception-v3 pool3 features: comparable to published FIDs."""
        return self.feature == "inception"

    @property
    def name(self) -> str:
        return "FID" if self.comparable else f"FD[{self.feature}]"

    @property
    def protocol(self) -> str:
        """E.g. ``"50k fake / 50k real, inception"``."""
        extra = "" if self.comparable else ", NOT comparable to published FIDs"
        return f"{_count(self.n_fake)} fake / {_count(self.n_real)} real, {self.feature}{extra}"

    def __str__(self) -> str:
        return f"{self.name} {self.value:.2f} ({self.protocol})"

    def as_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "n_fake": self.n_fake,
                "n_real": self.n_real, "feature": self.feature}


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def save_statistics(path: PathLike, mu: np.ndarray, sigma: np.ndarray, *, n: int,
                    feature: str) -> Path:
    """Write ``mu``, ``sigma``, ``n`` and ``feature`` to an ``.npz`` atomically
    (temp file + rename), so an interrupted run never leaves a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, mu=mu, sigma=sigma, n=np.int64(n), feature=np.str_(feature)))
    return path


def load_statistics(path: PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read ``mu``, ``sigma`` and metadata from an ``.npz`` (ours or pytorch-fid's,
    which has no metadata: then ``n`` and ``feature`` are None)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no statistics file at {path}")
    with np.load(path) as z:
        if "mu" not in z or "sigma" not in z:
            raise ValueError(f"{path} has no 'mu' and 'sigma' arrays (keys: {sorted(z.files)})")
        meta = {"n": int(z["n"]) if "n" in z else None,
                "feature": str(z["feature"]) if "feature" in z else None}
        return z["mu"], z["sigma"], meta


# ---------------------------------------------------------------------------
# Features


def _torch():
    import torch  # torch is optional for the distance itself
    return torch


def random_conv_features(seed: int = 0, dim: int = 512):
    """A seeded, untrained convolutional feature extractor: the clearly
    labelled fallback when Inception weights are absent.

    Random conv nets preserve a good deal of image structure (their features
    separate blurred from sharp and mode-collapsed from diverse sets), which
    is what a pipeline test and a relative comparison need. Their distances
    are not FIDs. Maps ``(b, 1|3, H, W)`` in [0, 1] to ``(b, dim)``.
    """
    torch = _torch()
    from torch import nn

    class _RandomConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(seed)
            layers, c = [], 3
            for width in (32, 64, 128):
                conv = nn.Conv2d(c, width, 3, 2, 1)
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen)
                                      * math.sqrt(2.0 / (c * 9)))
                    conv.bias.zero_()
                layers += [conv, nn.ReLU()]
                c = width
            self.net = nn.Sequential(*layers)
            proj = torch.randn(c * 16, dim, generator=gen) / math.sqrt(c * 16)
            self.register_buffer("proj", proj)
            self.requires_grad_(False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            h = nn.functional.adaptive_avg_pool2d(self.net(x * 2 - 1), 4)
            return h.flatten(1) @ self.proj

    return _RandomConv().eval()


def load_feature_extractor(feature: str = "inception", *, weights: Optional[PathLike] = None,
                           device: str = "cpu", fallback: bool = False):
    """The extractor for ``feature`` and the name it actually got.

    Parameters
    ----------
    feature : {"inception", "random-conv", "mnist-cnn"}
        ``"mnist-cnn"``: the project's digit classifier (trained and cached
        on first use, see :func:`smallgan.metrics.classifier.load_mnist_classifier`);
        only for 28 x 28 digit images.
    weights : path, optional
        Inception weights file (else the embeddings module's search path).
    device : str
    fallback : bool
        With ``feature="inception"`` and no weights found: use
        ``"random-conv"`` and say so on stderr, instead of raising.

    Returns
    -------
    extractor : torch.nn.Module
        Maps float images ``(b, 1|3, H, W)`` in [0, 1] to ``(b, D)``.
    name : str
        The feature actually used; pass it on to :class:`FIDResult`.
    """
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
    if feature == "mnist-cnn":
        from smallgan.metrics.classifier import DigitFeatures, load_mnist_classifier

        return DigitFeatures(load_mnist_classifier(device=device)).to(device), "mnist-cnn"
    if feature == "inception":
        from smallgan.inception import load_inception
        try:
            model = load_inception(weights=weights, device=device)
            # torchvision's ImageNet weights give Inception features that are
            # not the FID network's: label them so they are never called FID.
            layout = getattr(model, "layout", "fid")
            return model, ("inception" if layout == "fid" else f"inception-{layout}")
        except FileNotFoundError as exc:
            if not fallback:
                raise
            print(f"smallgan: Inception weights not found ({exc}); using the random-conv "
                  "fallback: the distance is labelled FD[random-conv] and is NOT an FID.",
                  file=sys.stderr)
    return random_conv_features().to(device), "random-conv"


def extract_features(batches: Iterable, extractor: Callable, n: int, *,
                     value_range: tuple[float, float] = (-1.0, 1.0),
                     device: str = "cpu") -> np.ndarray:
    """Features of the first ``n`` images of ``batches``.

    Parameters
    ----------
    batches : iterable
        Yields image tensors ``(b, c, H, W)``, or tuples/lists whose first
        item is one (as a ``DataLoader`` over a labelled dataset does).
    extractor : callable
        Images in [0, 1] to ``(b, D)`` features.
    n : int
        Images to use; fewer available is an error (a silently smaller
        sample would change the protocol).
    value_range : (low, high)
        Range of the incoming pixels, mapped linearly to [0, 1].

    Returns
    -------
    ndarray, shape (n, D), float64
    """
    torch = _torch()
    check_int("n", n, 2)
    lo, hi = value_range
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    out, got = [], 0
    with torch.no_grad():
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = x[: n - got].to(device=device, dtype=torch.float32)
            x = ((x - lo) / (hi - lo)).clamp_(0.0, 1.0)
            out.append(extractor(x).double().cpu().numpy())
            got += x.shape[0]
            if got >= n:
                break
    if got < n:
        raise ValueError(f"n={n} images requested but the source gave only {got}")
    return np.concatenate(out, axis=0)


def real_statistics(batches: Callable[[], Iterable], extractor: Callable, feature: str,
                    n: int, cache: Optional[PathLike] = None, *,
                    value_range: tuple[float, float] = (-1.0, 1.0),
                    device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Real-data ``(mu, sigma)``, read from ``cache`` when it holds the same
    ``n`` and ``feature``, else computed and written there.

    ``batches`` is a zero-argument callable returning the iterable, so
    nothing is loaded when the cache hits. Put ``cache`` next to the
    embedding cache (see :func:`stats_path`).
    """
    if cache is not None and Path(cache).is_file():
        mu, sigma, meta = load_statistics(cache)
        if meta["n"] == n and meta["feature"] == feature:
            return mu, sigma
        raise ValueError(f"statistics cache {cache} holds n={meta['n']}, "
                         f"feature={meta['feature']!r}, not n={n}, feature={feature!r}; "
                         "delete it or choose another path")
    mu, sigma = feature_statistics(extract_features(batches(), extractor, n,
                                                    value_range=value_range, device=device))
    if cache is not None:
        save_statistics(cache, mu, sigma, n=n, feature=feature)
    return mu, sigma


def stats_path(cache_dir: PathLike, dataset: str, feature: str, n: int) -> Path:
    """Where real statistics for (dataset, feature, n) live inside ``cache_dir``
    (the embedding cache's folder)."""
    return Path(cache_dir) / f"{dataset}.{feature}.n{n}.fid-stats.npz"


def fid(sample: Callable[[int], "object"], real_batches: Callable[[], Iterable], *,
        n_fake: int = 50_000, n_real: int = 50_000, batch_size: int = 250,
        feature: str = "inception", weights: Optional[PathLike] = None,
        fallback: bool = False, cache: Optional[PathLike] = None,
        device: str = "cpu", value_range: tuple[float, float] = (-1.0, 1.0),
        extractor: Optional[Callable] = None) -> FIDResult:
    """FID of a generator against real data, with its protocol.

    Parameters
    ----------
    sample : callable
        ``sample(b)`` returns ``b`` generated images ``(b, c, H, W)`` in
        ``value_range`` (e.g. ``lambda b: G(torch.randn(b, 128))``).
    real_batches : callable
        Returns an iterable of real image batches (see :func:`extract_features`).
    n_fake, n_real : int
        Sample counts; 50,000 / 50,000 is the standard protocol. Smaller
        counts give larger, biased values: compare only like with like.
    batch_size : int
        Generator batch size while sampling.
    feature, weights, fallback, device
        See :func:`load_feature_extractor`.
    cache : path, optional
        Real statistics file (see :func:`real_statistics`).
    extractor : callable, optional
        Use this extractor (already loaded) instead; ``feature`` names it.

    Returns
    -------
    FIDResult
        ``str(result)`` reads e.g. ``FID 18.75 (50k fake / 50k real, inception)``.
    """
    for name, value in (("n_fake", n_fake), ("n_real", n_real), ("batch_size", batch_size)):
        check_int(name, value, 2 if name != "batch_size" else 1)
    if extractor is None:
        extractor, feature = load_feature_extractor(feature, weights=weights, device=device,
                                                    fallback=fallback)
    mu_r, sigma_r = real_statistics(real_batches, extractor, feature, n_real, cache,
                                    value_range=value_range, device=device)

    def fake_batches():
        # No grad-mode context in here: a suspended generator holding one
        # would restore its saved mode whenever it is garbage collected,
        # switching autograd off for the caller. extract_features consumes
        # this under no_grad already.
        left = n_fake
        while left > 0:
            b = min(batch_size, left)
            yield sample(b)
            left -= b

    feats = extract_features(fake_batches(), extractor, n_fake, value_range=value_range,
                             device=device)
    mu_g, sigma_g = feature_statistics(feats)
    return FIDResult(frechet_distance(mu_g, sigma_g, mu_r, sigma_r), n_fake, n_real, feature)
