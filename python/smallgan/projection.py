"""Johnson-Lindenstrauss random projection of cached embeddings.

Small-GAN selects real images by greedy k-center on their cached Inception
embeddings *randomly projected* to a low dimension (Sinha et al. 2020,
section 3.2; the ablation in their Table 6 finds projected embeddings better
than unprojected ones).  A random projection ``y = x @ R`` with ``R`` of shape
``(D, dim)`` keeps every pairwise distance of ``n`` points within a factor
``1 +- eps`` with high probability once ``dim >= 4 ln(n) / (eps^2/2 - eps^3/3)``
(Dasgupta & Gupta's form of the Johnson-Lindenstrauss lemma).

Two matrices are offered:

* ``"gaussian"``: i.i.d. ``N(0, 1/dim)`` entries.
* ``"sparse"``: Achlioptas (2003) / Li, Hastie & Church (2006) entries
  ``sqrt(s/dim) * {+1, 0, -1}`` with probabilities ``{1/(2s), 1 - 1/s, 1/(2s)}``,
  where ``density = 1/s``.  ``density=1/3`` is Achlioptas' matrix; the default
  ``1/sqrt(D)`` is Li et al.'s "very sparse" projection.

The matrix is a pure function of ``(D, dim, seed, kind, density)``, so the
settings stored next to a cache are enough to rebuild it; :func:`save_projection`
also stores the matrix itself, for users who want to project new data without
smallgan.
"""
from __future__ import annotations

import json
import math
import mmap
import numbers
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from smallgan.atomic import atomic_write
from smallgan.checks import check_int

__all__ = [
    "KINDS",
    "projection_matrix",
    "projection_settings",
    "random_projection",
    "save_projection",
    "load_projection",
]

KINDS = ("gaussian", "sparse")

# Bytes of input read per chunk when the caller does not choose.  BLAS on the
# skinny (rows x 2048) @ (2048 x 32) product ran 1.5-2x faster at 8192 rows
# than at 2048 on our dev machine; 64 MiB (8192 rows of 2048 float32) keeps
# that speed while a 1M x 2048 memory-mapped array streams through a fixed
# working set.
_DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024

PathLike = Union[str, "os.PathLike[str]"]

#: Default dimension the image embeddings are projected to, everywhere
#: (``smallgan embed``, the image experiments).  Sinha et al. project "to a
#: smaller dimension" without a number we could check; 32 keeps k-center on
#: 8 x 64 candidates well under a millisecond, and each squared distance
#: within a factor 1 +- sqrt(2/32) = 1 +- 0.25 (one std per pair).
DEFAULT_PROJECTION_DIM = 32




def _check_kind_density(kind: Any, density: Any, in_dim: int) -> Tuple[str, Optional[float]]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if density is None:
        return kind, None
    if kind != "sparse":
        raise ValueError(f"density is only used with kind='sparse', got density={density!r} with kind={kind!r}")
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise TypeError(f"density must be a float in (0, 1], got {density!r}")
    density = float(density)
    if not (0.0 < density <= 1.0):
        raise ValueError(f"density must be in (0, 1], got {density}")
    return kind, density


def projection_settings(
    in_dim: int,
    dim: int,
    seed: int = 0,
    kind: str = "gaussian",
    density: Optional[float] = None,
) -> Dict[str, Any]:
    """Validated, JSON-serialisable settings that determine a projection matrix.

    Parameters
    ----------
    in_dim : int
        Input dimension ``D`` (>= 1).
    dim : int
        Output dimension (>= 1).
    seed : int
        Seed for :func:`numpy.random.default_rng` (>= 0).
    kind : {"gaussian", "sparse"}
        Matrix family.
    density : float or None
        Fraction of non-zero entries for ``kind="sparse"``; ``None`` means
        ``1/sqrt(in_dim)`` (Li et al.).  Must be ``None`` for ``"gaussian"``.

    Returns
    -------
    dict
        ``{"in_dim", "dim", "seed", "kind", "density"}`` with ``density``
        resolved to a float for the sparse kind (``None`` for Gaussian).
    """
    in_dim = check_int("in_dim", in_dim, 1)
    dim = check_int("dim", dim, 1)
    seed = check_int("seed", seed, 0)
    kind, density = _check_kind_density(kind, density, in_dim)
    if kind == "sparse" and density is None:
        density = 1.0 / math.sqrt(in_dim)
    return {"in_dim": in_dim, "dim": dim, "seed": seed, "kind": kind, "density": density}


def projection_matrix(
    in_dim: int,
    dim: int,
    seed: int = 0,
    kind: str = "gaussian",
    density: Optional[float] = None,
) -> np.ndarray:
    """The ``(in_dim, dim)`` projection matrix for the given settings.

    Parameters
    ----------
    in_dim, dim, seed, kind, density
        See :func:`projection_settings`.

    Returns
    -------
    numpy.ndarray of shape (in_dim, dim), dtype float64
        Entries with mean 0 and variance ``1/dim``, so that
        ``E ||x @ R||^2 = ||x||^2``.  The same arguments always give the same
        matrix, on any machine (numpy's PCG64 stream is platform independent).

    Thread safety
    -------------
    Pure function; safe to call from any thread.

    Examples
    --------
    >>> R = projection_matrix(2048, 32, seed=0)
    >>> R.shape, bool((R == projection_matrix(2048, 32, seed=0)).all())
    ((2048, 32), True)
    """
    s = projection_settings(in_dim, dim, seed, kind, density)
    in_dim, dim = s["in_dim"], s["dim"]
    # Mix the shape and kind into the seed so that, e.g., the first rows of
    # the (2048, 32) and (2048, 64) matrices are not the same numbers.
    rng = np.random.default_rng([s["seed"], in_dim, dim, KINDS.index(s["kind"])])
    if s["kind"] == "gaussian":
        return rng.standard_normal((in_dim, dim)) / math.sqrt(dim)
    p = s["density"]
    # One uniform draw per entry decides {+1, 0, -1}; the scale sqrt(1/(p*dim))
    # gives variance 1/dim per entry.
    u = rng.random((in_dim, dim))
    r = np.zeros((in_dim, dim))
    r[u < p / 2] = 1.0
    r[(u >= p / 2) & (u < p)] = -1.0
    r *= math.sqrt(1.0 / (p * dim))
    return r


def _as_2d_real(x: Any, name: str = "x") -> Any:
    """Check x is a 2-D real array (numpy or torch) without copying it."""
    try:
        import torch
    except ImportError:  # torch is optional for numpy inputs
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor of dtype {x.dtype}")
        if x.dim() != 2:
            raise ValueError(f"{name} must be 2-D (n, D), got shape {tuple(x.shape)}")
        return x
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array (a np.memmap works) or a torch tensor, got {type(x).__name__}"
        )
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name} must have a real numeric dtype, got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, D), got shape {x.shape}")
    return x


def random_projection(
    x: Any,
    dim: int,
    seed: int = 0,
    kind: str = "gaussian",
    *,
    density: Optional[float] = None,
    chunk_rows: Optional[int] = None,
    out: Optional[np.ndarray] = None,
) -> Any:
    """Project the rows of ``x`` to ``dim`` dimensions with a JL random matrix.

    Works through ``x`` in chunks of rows, so a memory-mapped array larger than
    RAM is streamed: the only sizeable temporaries are one chunk converted to
    float (``chunk_rows * D``) and its projection.

    Parameters
    ----------
    x : numpy.ndarray (incl. np.memmap) or torch.Tensor, shape (n, D)
        Real values; integer and bool arrays are converted chunk by chunk.
        Never modified.
    dim : int
        Output dimension (>= 1).
    seed : int
        Seed of the projection matrix (>= 0).
    kind : {"gaussian", "sparse"}
        Matrix family, see the module docstring.
    density : float or None
        Non-zero fraction for ``kind="sparse"`` (default ``1/sqrt(D)``).
    chunk_rows : int or None
        Rows per chunk; default: as many as fit in 64 MiB of float32 input.
    out : numpy.ndarray of shape (n, dim), optional
        Where to write the result (e.g. a writable np.memmap); must have a
        float dtype.  Only for numpy input.

    Returns
    -------
    numpy.ndarray of shape (n, dim), or torch.Tensor of shape (n, dim)
        float32 for float32/integer input, float64 for float64 input; ``out``
        when given.  Torch input gives a tensor on ``x.device`` (computed
        there, no round trip to host).

    Raises
    ------
    TypeError
        ``x`` is not a real numpy array or tensor, or an argument has the
        wrong type.
    ValueError
        ``x`` is not 2-D, ``dim``/``chunk_rows``/``seed`` out of range, unknown
        ``kind``, ``out`` of the wrong shape or dtype, or ``x`` contains NaN
        or Inf (checked chunk by chunk; rows before the offending chunk are
        already written to ``out``).

    Thread safety
    -------------
    Reentrant; concurrent calls writing to different ``out`` arrays are safe.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(1000, 2048)).astype(np.float32)
    >>> y = random_projection(x, 32, seed=0)
    >>> y.shape, y.dtype
    ((1000, 32), dtype('float32'))
    """
    x = _as_2d_real(x)
    dim = check_int("dim", dim, 1)
    seed = check_int("seed", seed, 0)
    n, in_dim = int(x.shape[0]), int(x.shape[1])
    if in_dim == 0:
        raise ValueError(f"x must have at least one column, got shape {tuple(x.shape)}")
    kind, density = _check_kind_density(kind, density, in_dim)
    if chunk_rows is None:
        chunk_rows = max(1, _DEFAULT_CHUNK_BYTES // (4 * in_dim))
    else:
        chunk_rows = check_int("chunk_rows", chunk_rows, 1)

    is_numpy = isinstance(x, np.ndarray)
    if not is_numpy:
        if out is not None:
            raise TypeError("out is only supported for numpy input; got a torch tensor x")
        return _project_torch(x, dim, seed, kind, density, chunk_rows)

    work = np.float64 if x.dtype == np.float64 else np.float32
    if out is None:
        out = np.empty((n, dim), dtype=work)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
        if out.shape != (n, dim):
            raise ValueError(f"out must have shape {(n, dim)}, got {out.shape}")
        if out.dtype.kind != "f":
            raise ValueError(f"out must have a float dtype, got {out.dtype}")
        if not out.flags.writeable:
            raise ValueError("out must be writable, got a read-only array")
        if np.shares_memory(out, x):
            raise ValueError("out must not overlap x (x is never modified)")
    r = projection_matrix(in_dim, dim, seed, kind, density).astype(work)
    source = _memmap_source(x)
    reader = None
    if source is not None:
        # Read chunks with plain file reads into one reused buffer instead of
        # touching the mapping: page-faulting a mapping in costs several times
        # more than read() from the page cache (measured 5-8x on our dev VM),
        # and the process never accumulates the file's pages as resident memory.
        reader = open(source[0], "rb", buffering=0)
        buffer = np.empty((min(chunk_rows, n), in_dim), dtype=x.dtype)
        row_bytes = in_dim * x.dtype.itemsize
    try:
        for start in range(0, n, chunk_rows):
            stop = min(n, start + chunk_rows)
            if reader is not None:
                raw = buffer[:stop - start]
                _read_exactly(reader, source[1] + start * row_bytes, memoryview(raw).cast("B"), source[0])
                block = np.asarray(raw, dtype=work)
            else:
                block = np.asarray(x[start:stop], dtype=work)
            _check_finite(block, start)
            if out.dtype == work and out[start:stop].flags.c_contiguous:
                np.matmul(block, r, out=out[start:stop])  # no temporary
            else:
                out[start:stop] = block @ r
    finally:
        if reader is not None:
            reader.close()
    return out


def _check_finite(block: np.ndarray, start: int) -> None:
    # A row sum is NaN or Inf whenever the row holds a NaN or Inf (IEEE
    # propagation), so one cheap reduction screens the chunk without a
    # chunk-sized boolean temporary; only flagged rows are examined exactly
    # (a finite row can overflow its sum).
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is expected and handled below
        sums = block.sum(axis=1)
    if np.isfinite(sums).all():
        return
    suspects = np.flatnonzero(~np.isfinite(sums))
    bad = suspects[~np.isfinite(block[suspects]).all(axis=1)]
    if bad.size:
        raise ValueError(
            f"x contains NaN or Inf: {bad.size} row(s) in rows [{start}, {start + block.shape[0]}), "
            f"first at row {start + int(bad[0])}"
        )


def _memmap_source(x: np.ndarray) -> Optional[Tuple[str, int]]:
    """(file name, byte offset of row 0) when x's rows can be read from its file.

    Only for a whole-file np.memmap (its ``base`` is the mapping itself, so
    row 0 is at ``x.offset``; a slice's base is another memmap), C-ordered,
    and not copy-on-write (mode "c" keeps changes in private pages a file
    read would not see).  Changes made through a shared mapping live in the
    page cache that read() also goes through, so they are seen.
    """
    if not isinstance(x, np.memmap) or getattr(x, "filename", None) is None:
        return None
    if getattr(x, "mode", "c") == "c" or not isinstance(x.base, mmap.mmap) or not x.flags.c_contiguous:
        return None
    return str(x.filename), int(x.offset)


def _read_exactly(f, offset: int, view: memoryview, name: str) -> None:
    f.seek(offset)
    got = 0
    while got < len(view):
        k = f.readinto(view[got:])
        if not k:
            raise ValueError(f"{name!r} ended after {offset + got} bytes while reading rows of x")
        got += k


def _project_torch(x: Any, dim: int, seed: int, kind: str, density: Optional[float], chunk_rows: int) -> Any:
    import torch

    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    r = torch.from_numpy(projection_matrix(int(x.shape[1]), dim, seed, kind, density)).to(x.device, work)
    out = torch.empty((x.shape[0], dim), dtype=work, device=x.device)
    for start in range(0, int(x.shape[0]), chunk_rows):
        block = x[start:start + chunk_rows].to(work)
        finite = torch.isfinite(block).all(dim=1)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten()
            raise ValueError(
                f"x contains NaN or Inf: {bad.numel()} row(s) in rows [{start}, {start + block.shape[0]}), "
                f"first at row {start + int(bad[0])}"
            )
        torch.matmul(block, r, out=out[start:start + block.shape[0]])
    return out


def save_projection(path: PathLike, settings: Dict[str, Any]) -> Path:
    """Store a projection's settings and matrix in an ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, e.g. ``cache.projection.npz``.
    settings : dict
        As returned by :func:`projection_settings` (validated again here).

    Returns
    -------
    pathlib.Path
        The written path.  The file holds ``matrix`` (float32, shape
        ``(in_dim, dim)``) and ``settings`` (a JSON string), readable with
        plain ``numpy.load``.
    """
    if not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict from projection_settings(), got {type(settings).__name__}")
    unknown = set(settings) - {"in_dim", "dim", "seed", "kind", "density"}
    if unknown:
        raise ValueError(f"settings has unknown keys {sorted(unknown)}")
    s = projection_settings(**settings)
    matrix = projection_matrix(**s).astype(np.float32)
    path = Path(path)

    def write(f):
        np.savez(f, matrix=matrix, settings=np.array(json.dumps(s, sort_keys=True)))

    atomic_write(path, write)
    return path


def load_projection(path: PathLike) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Read a file written by :func:`save_projection`.

    Returns
    -------
    matrix : numpy.ndarray of shape (in_dim, dim), float32
    settings : dict
        The settings; ``projection_matrix(**settings)`` rebuilds ``matrix``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The stored matrix does not match its settings (corrupt or edited file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"projection file {str(path)!r} does not exist")
    with np.load(path, allow_pickle=False) as z:
        matrix = np.array(z["matrix"])
        settings = json.loads(str(z["settings"]))
    expected = projection_matrix(**projection_settings(**settings)).astype(np.float32)
    if matrix.shape != expected.shape or not np.array_equal(matrix, expected):
        raise ValueError(f"projection file {str(path)!r}: stored matrix does not match its settings {settings}")
    return matrix, settings
