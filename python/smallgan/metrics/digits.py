"""Evaluation of digit generators (MNIST, Stacked MNIST) with the project's classifier.

One call, :func:`evaluate_digits`, gives everything the MNIST-family
experiments report, each number labelled with its network and protocol:

- mode statistics (:func:`mode_coverage`): every channel is classified as a
  digit; a mode is a digit tuple (10 for MNIST, 1,000 for Stacked MNIST);
  ``modes`` counts the modes with at least one sample and ``kl`` is
  ``KL(generated mode histogram || uniform) = sum_m p_m log(p_m * M)``,
  the measure of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al.
  2018), who draw 26,000 samples (Unrolled GAN: 25,600);
- ``FD[mnist-cnn]``: the Fréchet distance on the classifier's features
  (the FID formula, not an FID);
- ``CS[mnist-cnn]``: the classifier score (the Inception Score formula on
  the classifier's softmax, joint over the channels);
- precision, recall, density and coverage on the same features
  (:func:`smallgan.metrics.prdc.prdc`).

:func:`stacked_mnist_reference` runs the same evaluation on real Stacked
MNIST (held-out digits against training digits): the values a perfect
generator would get under the same protocol and classifier.

Example
-------
>>> report = evaluate_digits(fake, real, classifier=net)      # doctest: +SKIP
>>> print(report)                                              # doctest: +SKIP
modes 1000/1000, KL 0.021 | FD[mnist-cnn] 0.42 (26k fake / 26k real, ...) | ...
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from smallgan.checks import check_int
from smallgan.metrics.modes import kl_from_uniform
from smallgan.metrics.threads import limit_threads

__all__ = ["ModeCoverage", "mode_coverage", "kl_to_uniform", "DigitReport", "evaluate_digits",
           "sample_images", "stacked_mnist_reference", "N_SAMPLES"]

#: Samples per evaluation in VEEGAN's and PacGAN's Stacked-MNIST protocol.
N_SAMPLES = 26_000


def kl_to_uniform(counts: Any) -> float:
    """``KL(p || uniform)`` of a histogram: ``sum_m p_m log(p_m * M)`` over its
    ``M`` bins, with ``0 log 0 = 0`` (natural log, as PacGAN's code).

    0 for a uniform histogram, ``log M`` when everything is in one bin.  The
    formula is :func:`smallgan.metrics.modes.kl_from_uniform`'s; this adds the
    checks for classified samples (integer counts, at least one).
    """
    c = np.asarray(counts)
    if c.ndim != 1 or c.size == 0 or not np.issubdtype(c.dtype, np.integer) or (c < 0).any():
        raise ValueError(f"counts must be a non-empty 1-D array of non-negative integers, got "
                         f"shape {c.shape} of dtype {c.dtype}")
    if int(c.sum()) == 0:
        raise ValueError("counts are all zero")
    return kl_from_uniform(c)


@dataclass(frozen=True)
class ModeCoverage:
    """Modes covered and KL to uniform of classified samples.

    Attributes
    ----------
    modes : int
        Modes (digit tuples) with at least one sample.
    n_modes : int
        ``10 ** channels``: 10 for MNIST, 1,000 for Stacked MNIST.
    kl : float
        ``KL(mode histogram || uniform)``, natural log.
    n : int
        Samples classified.
    histogram : ndarray of int64, shape (n_modes,)
        Samples per mode; mode id ``sum_c d_c 10^(channels-1-c)``
        (``100 d0 + 10 d1 + d2`` for Stacked MNIST).
    """

    modes: int
    n_modes: int
    kl: float
    n: int
    histogram: np.ndarray

    def __str__(self) -> str:
        return f"modes {self.modes}/{self.n_modes}, KL {self.kl:.3f} ({self.n} samples)"

    def as_dict(self) -> Dict[str, float]:
        return {"modes": float(self.modes), "n_modes": float(self.n_modes), "kl": self.kl,
                "modes_n": float(self.n)}


def mode_coverage(digits: Any) -> ModeCoverage:
    """Mode statistics of per-channel digit predictions.

    Parameters
    ----------
    digits : array of int, shape (n, c) with values 0..9, or shape (n,)
        The digit of each channel (``(n,)``: one channel), e.g. from
        :func:`smallgan.metrics.classifier.predict_digits`.

    Returns
    -------
    ModeCoverage
    """
    d = np.asarray(digits)
    if d.ndim == 1:
        d = d[:, None]
    if d.ndim != 2 or d.shape[0] == 0 or not np.issubdtype(d.dtype, np.integer):
        raise ValueError(f"digits must be a non-empty integer array of shape (n, c) or (n,), got "
                         f"shape {np.shape(digits)} of dtype {d.dtype}")
    if d.min() < 0 or d.max() > 9:
        raise ValueError(f"digits must lie in 0..9, got values from {int(d.min())} to {int(d.max())}")
    c = d.shape[1]
    if c > 6:
        raise ValueError(f"at most 6 channels (10**6 modes), got {c}")
    ids = d.astype(np.int64) @ (10 ** np.arange(c - 1, -1, -1, dtype=np.int64))
    hist = np.bincount(ids, minlength=10 ** c).astype(np.int64)
    return ModeCoverage(modes=int(np.count_nonzero(hist)), n_modes=10 ** c,
                        kl=kl_to_uniform(hist), n=int(d.shape[0]), histogram=hist)


@dataclass(frozen=True)
class DigitReport:
    """Everything :func:`evaluate_digits` measures (see the module docstring).

    Attributes
    ----------
    modes : ModeCoverage
    fd : smallgan.metrics.fid.FIDResult
        Named ``FD[mnist-cnn]``, never FID.
    score : smallgan.metrics.classifier.ScoreResult
        Named ``CS[mnist-cnn]``.
    prdc : smallgan.metrics.prdc.PRDC
    """

    modes: ModeCoverage
    fd: Any
    score: Any
    prdc: Any

    def __str__(self) -> str:
        return f"{self.modes} | {self.fd} | {self.score} | {self.prdc}"

    def as_dict(self) -> Dict[str, float]:
        """Flat numbers for logs and CSV rows (keys say what they are)."""
        key = self.fd.feature.replace("-", "_")
        out: Dict[str, float] = dict(self.modes.as_dict())
        out[f"fd_{key}"] = self.fd.value
        out["fd_n_fake"], out["fd_n_real"] = float(self.fd.n_fake), float(self.fd.n_real)
        out[f"cs_{key}"], out[f"cs_{key}_std"] = self.score.mean, self.score.std
        out.update({k: float(v) for k, v in self.prdc.as_dict().items() if k != "prdc_feature"})
        return out


def _images(name: str, x: Any):
    import torch

    t = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
    if t.dim() != 4 or tuple(t.shape[-2:]) != (28, 28) or t.shape[0] < 2:
        raise ValueError(f"{name} must be images of shape (n, c, 28, 28) with n >= 2, got "
                         f"{tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be floating point images, got dtype {t.dtype}")
    return t


def _range(name: str, r: Any) -> Tuple[float, float]:
    if not (isinstance(r, (tuple, list)) and len(r) == 2 and float(r[1]) > float(r[0])):
        raise ValueError(f"{name} must be (low, high) with high > low, got {r!r}")
    return float(r[0]), float(r[1])


def evaluate_digits(fake: Any, real: Any, *, classifier: Any = None, nearest_k: int = 5,
                    splits: int = 10, fake_range: Tuple[float, float] = (-1.0, 1.0),
                    real_range: Tuple[float, float] = (0.0, 1.0), batch_size: int = 1000,
                    device: str = "cpu", threads: Optional[int] = None) -> DigitReport:
    """Modes, KL, FD[mnist-cnn], CS[mnist-cnn] and PRDC of generated digits.

    Parameters
    ----------
    fake : tensor or ndarray, shape (n, c, 28, 28)
        Generated images (``c = 1`` MNIST, ``c = 3`` Stacked MNIST), pixels
        in ``fake_range``; see :func:`sample_images` to draw them from G.
        VEEGAN/PacGAN use n = 26,000.
    real : tensor or ndarray, shape (m, c, 28, 28)
        Real images, pixels in ``real_range``, the same ``c``.
    classifier : MNISTClassifier, optional
        Default: :func:`smallgan.metrics.classifier.load_mnist_classifier`
        (trained and cached on first use).
    nearest_k : int
        k of precision/recall/density/coverage (5, Naeem et al.).
    splits : int
        Splits of the classifier score (10, as the Inception Score).
    fake_range, real_range : (low, high)
        Pixel ranges, mapped linearly to [0, 1] (the classifier's input).
    batch_size : int
        Images per classifier forward pass.
    device : str
    threads : int, optional
        Threads for torch, BLAS and faiss while it runs
        (:func:`smallgan.metrics.threads.limit_threads`; default: unchanged).
        On a busy machine 1 can be many times faster than 2.

    Cost: O(n d) for the classifier and O((n + m)^2 d) for the k-NN radii
    and the real x fake comparisons; 26,000 / 26,000 Stacked-MNIST images
    (d = 384) take about a minute on two busy cores, mostly in PRDC.

    Returns
    -------
    DigitReport
    """
    from smallgan.metrics.classifier import FEATURE, classifier_outputs, classifier_score, \
        load_mnist_classifier
    from smallgan.metrics.fid import FIDResult, feature_statistics, frechet_distance
    from smallgan.metrics.prdc import prdc

    fake_t, real_t = _images("fake", fake), _images("real", real)
    if fake_t.shape[1] != real_t.shape[1]:
        raise ValueError(f"fake and real must have the same channels, got {fake_t.shape[1]} "
                         f"and {real_t.shape[1]}")
    fr, rr = _range("fake_range", fake_range), _range("real_range", real_range)
    check_int("nearest_k", nearest_k, 1)
    check_int("splits", splits, 1)
    check_int("batch_size", batch_size, 1)
    if threads is not None:
        check_int("threads", threads, 1)
    net = classifier if classifier is not None else load_mnist_classifier(device=device)
    with limit_threads(threads):
        f_feat, f_prob = classifier_outputs(net, fake_t, batch_size=batch_size, value_range=fr,
                                            device=device)
        r_feat, _ = classifier_outputs(net, real_t, batch_size=batch_size, value_range=rr,
                                       device=device)
        modes = mode_coverage(f_prob.argmax(axis=2))
        mu_f, sig_f = feature_statistics(f_feat)
        mu_r, sig_r = feature_statistics(r_feat)
        fd = FIDResult(frechet_distance(mu_f, sig_f, mu_r, sig_r), f_feat.shape[0],
                       r_feat.shape[0], FEATURE)
        return DigitReport(modes=modes, fd=fd, score=classifier_score(f_prob, splits),
                           prdc=prdc(r_feat, f_feat, nearest_k, feature=FEATURE))


def sample_images(sample: Callable[[int], Any], n: int = N_SAMPLES, batch_size: int = 500):
    """``n`` images from ``sample(b)`` (e.g. ``lambda b: G(z(b))``), in batches,
    without autograd, concatenated on the CPU as one ``(n, c, H, W)`` tensor."""
    import torch

    check_int("n", n, 1)
    check_int("batch_size", batch_size, 1)
    out, left = [], n
    with torch.no_grad():
        while left > 0:
            x = sample(min(batch_size, left))
            if not isinstance(x, torch.Tensor) or x.dim() != 4:
                raise ValueError(f"sample(b) must return an image tensor (b, c, H, W), got "
                                 f"{type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}")
            out.append(x.detach().float().cpu())
            left -= x.shape[0]
    return torch.cat(out)[:n]


def stacked_mnist_reference(n: int = N_SAMPLES, *, seed: int = 0, classifier: Any = None,
                            nearest_k: int = 5, splits: int = 10, device: str = "cpu",
                            threads: Optional[int] = None) -> DigitReport:
    """The evaluation of *real* Stacked MNIST: ``n`` images stacked from the
    1,000 held-out digits (which the classifier never saw) as "fake",
    against ``n`` stacked from the 4,000 training digits as "real".

    What a generator that matched the data perfectly would score, under the
    same protocol and classifier (modes near 1,000, KL near
    ``999 / (2 n)`` from sampling noise plus the classifier's errors).
    """
    from smallgan.data.stacked_mnist import StackedMNIST
    from smallgan.metrics.classifier import load_mnist_classifier

    check_int("n", n, 2)
    check_int("seed", seed, 0)
    net = classifier if classifier is not None else load_mnist_classifier(device=device)
    # the split the classifier was trained with, so "held out" means unseen
    info = getattr(net, "info", None)
    split_seed = int(info.config["seed"]) if info is not None else 0
    seq = np.random.SeedSequence(seed).generate_state(2)
    held_out = StackedMNIST(n, seed=int(seq[0]), split="test", split_seed=split_seed)
    train = StackedMNIST(n, seed=int(seq[1]), split="train", split_seed=split_seed)
    idx = np.arange(n)
    return evaluate_digits(held_out.images(idx), train.images(idx), classifier=net,
                           nearest_k=nearest_k, splits=splits, fake_range=(0.0, 1.0),
                           real_range=(0.0, 1.0), device=device, threads=threads)

