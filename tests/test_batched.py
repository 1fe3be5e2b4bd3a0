"""kcenter_batched: B point sets at once, each exactly as a separate kcenter call."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kcenter_reference import reference_kcenter
from smallgan import kcenter, kcenter_batched


def _clouds(B=6, n=300, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(B, n, d)).astype(np.float32)


@pytest.mark.parametrize("d", [1, 2, 3, 8, 64])
def test_each_set_equals_a_separate_call_and_the_float64_reference(d):
    x = _clouds(d=d)
    lengths = np.array([300, 17, 250, 40, 300, 9])
    got = kcenter_batched(x, 9, lengths=lengths, seed=5)
    assert got.shape == (6, 9) and got.dtype == np.int64
    for b in range(6):
        want = kcenter(x[b, : lengths[b]], 9, seed=5)
        np.testing.assert_array_equal(got[b], want)
        assert got[b].max() < lengths[b]  # padding rows never picked
    first = [0, 3, 7, 1, 2, 8]
    got = kcenter_batched(x, 9, lengths=lengths, first=first)
    for b in range(6):
        ref, _, _ = reference_kcenter(x[b, : lengths[b]].astype(np.float64), 9, first=first[b])
        np.testing.assert_array_equal(got[b], ref)


def test_threads_and_torch_parity():
    x = _clouds(B=4, n=2000, d=3, seed=1)
    one = kcenter_batched(x, 64, first=0, threads=1)
    two = kcenter_batched(x, 64, first=0, threads=2)
    np.testing.assert_array_equal(one, two)
    t = kcenter_batched(torch.from_numpy(x), 64, first=0, lengths=torch.tensor([2000] * 4))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.int64
    np.testing.assert_array_equal(t.numpy(), one)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(lengths=[10, -1, 5]), ValueError, r"lengths\[1\] = -1 is outside \[0, n = 10\]"),
    (dict(lengths=[10, 11, 5]), ValueError, r"lengths\[1\] = 11 is outside \[0, n = 10\]"),
    (dict(lengths=[10, 10]), ValueError, r"lengths must have shape \(B,\) = \(3,\), got \(2,\)"),
    (dict(lengths=[10.0, 10.0, 10.0]), TypeError, "lengths must hold integers, got dtype float64"),
    (dict(lengths=[10, 2, 5]), ValueError, r"k = 3 is larger than lengths\[1\] = 2"),
    (dict(first=[0, 0]), ValueError, "first must be one int or B = 3 ints, got 2"),
    (dict(lengths=[10, 4, 5], first=[0, 4, 0]), ValueError,
     r"first = 4 is out of range for set 1 of lengths\[1\] = 4"),
])
def test_bad_arguments_are_refused_before_any_work(kw, exc, match):
    x = _clouds(B=3, n=10)
    with pytest.raises(exc, match=match):
        kcenter_batched(x, 3, **kw)


def test_bad_shapes_and_a_bad_set_name_the_set():
    with pytest.raises(ValueError, match=r"x must be 3-D \(B sets, n points, d features\), got shape \(10, 3\)"):
        kcenter_batched(np.zeros((10, 3)), 2)
    with pytest.raises(ValueError, match="at least one set, point and feature"):
        kcenter_batched(np.zeros((0, 5, 3)), 2)
    x = _clouds(B=3, n=10)
    x[2, 4, 1] = np.nan
    with pytest.raises(ValueError, match=r"set 2: x contains 1 NaN or Inf value\(s\); the first is in row 4"):
        kcenter_batched(x, 3, first=0)
    x[2, 4, 1] = 0.0
    x[1, 9, 0] = np.nan  # in set 1's padding: never read
    kcenter_batched(x, 3, lengths=[10, 9, 10], first=0)
