"""Tests for smallgan.projection: JL distortion, reproducibility, chunking, errors."""
from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from smallgan.projection import (
    load_projection,
    projection_matrix,
    projection_settings,
    random_projection,
    save_projection,
)


def squared_distance_ratios(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """||y_i - y_j||^2 / ||x_i - x_j||^2 over all pairs i < j, in float64, written plainly."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    i, j = np.triu_indices(x.shape[0], k=1)
    return ((y[i] - y[j]) ** 2).sum(1) / ((x[i] - x[j]) ** 2).sum(1)


@pytest.mark.parametrize("kind", ["gaussian", "sparse"])
def test_pairwise_distortion_within_jl_bound(kind):
    # Dasgupta-Gupta: dim >= 4 ln n / (eps^2/2 - eps^3/3) keeps all squared
    # pairwise distances within (1 +- eps).  n = 100, eps = 0.5 -> dim >= 222.
    n, in_dim, eps = 100, 1024, 0.5
    dim = math.ceil(4 * math.log(n) / (eps**2 / 2 - eps**3 / 3))
    assert dim == 222
    x = np.random.default_rng(1).normal(size=(n, in_dim)).astype(np.float32)
    for seed in range(3):
        ratios = squared_distance_ratios(x, random_projection(x, dim, seed=seed, kind=kind))
        assert ratios.min() > 1 - eps and ratios.max() < 1 + eps, (seed, ratios.min(), ratios.max())
        # The projection is unbiased for squared distances, and for Gaussian-like
        # entries each ratio is chi^2_dim / dim with std sqrt(2/dim) = 0.095.
        assert abs(ratios.mean() - 1) < 0.03
        assert 0.7 * math.sqrt(2 / dim) < ratios.std() < 1.3 * math.sqrt(2 / dim)


def test_distortion_shrinks_with_dimension():
    x = np.random.default_rng(2).normal(size=(60, 512))
    spread = [squared_distance_ratios(x, random_projection(x, d, seed=0)).std() for d in (8, 32, 128)]
    assert spread[0] > spread[1] > spread[2]


def test_gaussian_matrix_entries():
    r = projection_matrix(4096, 64, seed=3)
    assert r.shape == (4096, 64) and r.dtype == np.float64
    assert abs(r.mean()) < 5 * math.sqrt(1 / 64 / r.size)
    assert r.var() == pytest.approx(1 / 64, rel=0.03)


@pytest.mark.parametrize("density", [None, 1 / 3])
def test_sparse_matrix_entries(density):
    in_dim, dim = 4096, 64
    r = projection_matrix(in_dim, dim, seed=4, kind="sparse", density=density)
    p = 1 / math.sqrt(in_dim) if density is None else density
    scale = math.sqrt(1 / (p * dim))
    values = set(np.unique(r).tolist())
    assert values == {-scale, 0.0, scale}
    nonzero = np.count_nonzero(r) / r.size
    assert nonzero == pytest.approx(p, rel=0.05)
    assert (r > 0).sum() == pytest.approx((r < 0).sum(), rel=0.06)
    assert r.var() == pytest.approx(1 / dim, rel=0.06)


def test_same_seed_same_matrix_and_result():
    x = np.random.default_rng(5).normal(size=(50, 300)).astype(np.float32)
    for kind in ("gaussian", "sparse"):
        a = random_projection(x, 16, seed=7, kind=kind)
        b = random_projection(x.copy(), 16, seed=7, kind=kind)
        assert np.array_equal(a, b)
        assert not np.allclose(a, random_projection(x, 16, seed=8, kind=kind))
    # a matrix of another shape is not a prefix/slice of this one
    r32 = projection_matrix(300, 32, seed=7)
    r16 = projection_matrix(300, 16, seed=7)
    assert not np.allclose(r32[:, :16], r16)


def test_matches_plain_float64_reference():
    x = np.random.default_rng(6).normal(size=(123, 77)).astype(np.float32)
    r = projection_matrix(77, 9, seed=0)
    ref = x.astype(np.float64) @ r
    y = random_projection(x, 9, seed=0, chunk_rows=10)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    y64 = random_projection(x.astype(np.float64), 9, seed=0, chunk_rows=10)
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, ref, rtol=1e-12, atol=1e-12)
    yi = random_projection(np.arange(12, dtype=np.int16).reshape(3, 4), 2)
    np.testing.assert_allclose(yi, np.arange(12).reshape(3, 4) @ projection_matrix(4, 2), rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), chunk=st.integers(1, 50), strided=st.booleans())
def test_chunking_and_strides_do_not_change_result(n, chunk, strided):
    base = np.random.default_rng(n).normal(size=(2 * n, 24))
    x = base[::2] if strided else base[:n]
    ref = np.ascontiguousarray(x) @ projection_matrix(24, 5, seed=1)
    np.testing.assert_allclose(random_projection(x, 5, seed=1, chunk_rows=chunk), ref, rtol=1e-10, atol=1e-12)


def test_memmap_in_memmap_out_bounded_memory(tmp_path):
    n, d, chunk = 20000, 256, 500
    src = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    for s in range(0, n, 5000):
        src[s:s + 5000] = rng.normal(size=(5000, d))
    src.flush()
    del src
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    before = np.array(x[:100])
    out = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.float32, shape=(n, 8))
    tracemalloc.start()
    try:
        random_projection(x, 8, seed=0, chunk_rows=chunk, out=out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The array is 20 MB; the working set is one chunk (0.5 MB), its projection
    # and the 256 x 8 matrix (as float64 and float32).  Allow 4 chunks.
    assert peak < 4 * chunk * d * 4, peak
    assert np.array_equal(x[:100], before)  # read-only input untouched
    ref = np.asarray(x[-300:], dtype=np.float64) @ projection_matrix(d, 8, seed=0)
    np.testing.assert_allclose(out[-300:], ref, rtol=1e-4, atol=1e-4)


def test_torch_input_gives_torch_output():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(9).normal(size=(40, 30)).astype(np.float32)
    yt = random_projection(torch.from_numpy(x), 6, seed=2, chunk_rows=7)
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32 and yt.shape == (40, 6)
    np.testing.assert_allclose(yt.numpy(), random_projection(x, 6, seed=2), rtol=1e-5, atol=1e-5)


def test_input_is_not_modified():
    x = np.random.default_rng(10).normal(size=(30, 12))
    x_copy = x.copy()
    random_projection(x, 4, seed=0, chunk_rows=4)
    assert np.array_equal(x, x_copy)


def test_errors_name_argument_and_value(tmp_path):
    x = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="x must be a numpy array.*list"):
        random_projection([[1.0]], 2)
    with pytest.raises(ValueError, match=r"x must be 2-D \(n, D\), got shape \(4,\)"):
        random_projection(np.zeros(4), 2)
    with pytest.raises(TypeError, match="real numeric dtype, got complex128"):
        random_projection(np.zeros((2, 2), dtype=complex), 2)
    with pytest.raises(TypeError, match="real numeric dtype, got object"):
        random_projection(np.zeros((2, 2), dtype=object), 2)
    with pytest.raises(ValueError, match="at least one column"):
        random_projection(np.zeros((4, 0)), 2)
    with pytest.raises(ValueError, match="dim must be >= 1, got 0"):
        random_projection(x, 0)
    with pytest.raises(TypeError, match="dim must be an int, got 2.5"):
        random_projection(x, 2.5)
    with pytest.raises(TypeError, match="dim must be an int, got True"):
        random_projection(x, True)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        random_projection(x, 2, seed=-1)
    with pytest.raises(ValueError, match="kind must be one of .*'dense'"):
        random_projection(x, 2, kind="dense")
    with pytest.raises(ValueError, match="chunk_rows must be >= 1, got 0"):
        random_projection(x, 2, chunk_rows=0)
    with pytest.raises(ValueError, match="density is only used with kind='sparse'"):
        random_projection(x, 2, density=0.5)
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\], got 1.5"):
        random_projection(x, 2, kind="sparse", density=1.5)
    with pytest.raises(ValueError, match=r"out must have shape \(4, 2\), got \(4, 3\)"):
        random_projection(x, 2, out=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="out must have a float dtype, got int64"):
        random_projection(x, 2, out=np.zeros((4, 2), dtype=np.int64))
    ro = np.zeros((4, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writable"):
        random_projection(x, 2, out=ro)
    bad = np.ones((10, 3))
    bad[7, 1] = np.nan
    bad[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"NaN or Inf: 2 row\(s\) in rows \[0, 10\), first at row 7"):
        random_projection(bad, 2, chunk_rows=10)


def test_nan_reported_with_first_row():
    bad = np.ones((10, 3))
    bad[7, 1] = np.nan
    out = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"1 row\(s\) in rows \[5, 10\), first at row 7"):
        random_projection(bad, 2, chunk_rows=5, out=out)
    assert np.all(out[:5] != 0)  # earlier chunks written, as documented


def test_save_and_load_projection(tmp_path):
    s = projection_settings(100, 8, seed=3, kind="sparse")
    assert s["density"] == pytest.approx(0.1)
    path = save_projection(tmp_path / "p.projection.npz", s)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.projection.npz"]  # no temp left
    matrix, loaded = load_projection(path)
    assert loaded == s
    assert matrix.dtype == np.float32
    assert np.array_equal(matrix, projection_matrix(**s).astype(np.float32))
    # readable without smallgan
    with np.load(path) as z:
        assert z["matrix"].shape == (100, 8)
    # a tampered file is detected
    np.savez(tmp_path / "t.npz", matrix=matrix * 2, settings=np.array(json.dumps(s)))
    with pytest.raises(ValueError, match="does not match its settings"):
        load_projection(tmp_path / "t.npz")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_projection(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match=r"unknown keys \['bogus'\]"):
        save_projection(tmp_path / "x.npz", {**s, "bogus": 1})


@pytest.mark.parametrize("case", ["whole", "slice", "copy-on-write", "unflushed-r+", "big-endian", "fortran"])
def test_memmap_inputs_of_every_kind_match_in_memory(tmp_path, case):
    # Whole-file memmaps are read with plain file reads; the others through
    # the mapping.  Either way the result must be that of the array's values.
    a = np.random.default_rng(11).normal(size=(301, 40)).astype(np.float32)
    path = tmp_path / "a.npy"
    if case == "big-endian":
        np.save(path, a.astype(">f4"))
    elif case == "fortran":
        np.save(path, np.asfortranarray(a))
    else:
        np.save(path, a)
    expected = a.copy()
    if case == "copy-on-write":
        x = np.load(path, mmap_mode="c")
        x[5] = 7.0  # private change, not in the file
        expected[5] = 7.0
    elif case == "unflushed-r+":
        x = np.load(path, mmap_mode="r+")
        x[9] = -3.0  # in the shared mapping, not yet flushed
        expected[9] = -3.0
    elif case == "slice":
        x = np.load(path, mmap_mode="r")[17:250]
        expected = a[17:250]
    else:
        x = np.load(path, mmap_mode="r")
    y = random_projection(x, 6, seed=2, chunk_rows=64)
    ref = expected.astype(np.float64) @ projection_matrix(40, 6, seed=2)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    del x
    if case == "unflushed-r+":
        assert np.load(path)[9, 0] == -3.0  # (the user's own write, flushed at close)


def test_overflowing_row_sum_is_not_reported_as_nan():
    x = np.full((3, 4), 3e38, dtype=np.float32)  # finite, but each float32 row sum overflows
    with np.errstate(over="ignore"):
        assert not np.isfinite(x.sum(axis=1)).any()
    assert random_projection(x, 2, seed=0).shape == (3, 2)  # no error: the rows are finite
    x[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"NaN or Inf: 1 row\(s\) in rows \[0, 3\), first at row 1"):
        random_projection(x, 2, seed=0)


def test_whole_file_memmap_is_read_with_file_reads(tmp_path, monkeypatch):
    import smallgan.projection as proj

    calls = []
    real = proj._read_exactly
    monkeypatch.setattr(proj, "_read_exactly", lambda *a: (calls.append(a[1]), real(*a)))
    np.save(tmp_path / "a.npy", np.ones((50, 8), dtype=np.float32))
    random_projection(np.load(tmp_path / "a.npy", mmap_mode="r"), 2, chunk_rows=20)
    assert calls == [128, 128 + 20 * 32, 128 + 40 * 32]  # header, then rows of 32 bytes
    calls.clear()
    random_projection(np.load(tmp_path / "a.npy", mmap_mode="r")[1:], 2, chunk_rows=20)
    random_projection(np.load(tmp_path / "a.npy", mmap_mode="c"), 2, chunk_rows=20)
    assert calls == []
