"""A resumable on-disk cache of image embeddings (optionally randomly projected).

Small-GAN picks real images by greedy k-center on their Inception embeddings
(Sinha et al. 2020, section 3.2), computed once per dataset and read by the
training loop.  :func:`compute_embeddings` writes them as::

    <path>                       # .npy, (n, d) float32, read back as a np.memmap
    <path minus .npy>.json       # manifest: what was embedded, how, how far
    <path minus .npy>.projection.npz   # the JL matrix and its settings (if projected)

The manifest records the dataset's length and a content fingerprint, the
extractor's id, the array's shape and dtype, the projection settings and the
number of rows done.  It is replaced atomically (temp file + ``os.replace``)
and only after the rows it counts are flushed to disk, so after a crash,
Ctrl-C or an exception the cache is always consistent and the next call
resumes where the last one stopped.  A finished cache is reused; a cache made
for another dataset, extractor or projection is an error, never silently reused.

An *extractor* is any callable mapping a float tensor of images (b, C, H, W)
to features (b, D) (more dimensions are flattened): a ``torch.nn.Module``
(see :func:`smallgan.inception.load_inception`) or a function.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Union

import numpy as np
import torch

from smallgan.atomic import atomic_write
from smallgan.checks import check_int
from smallgan.projection import projection_matrix, projection_settings, save_projection

__all__ = [
    "compute_embeddings",
    "dataset_fingerprint",
    "extractor_id",
    "load_embeddings",
    "manifest_path",
    "projection_path",
    "read_manifest",
]

PathLike = Union[str, "os.PathLike[str]"]
_FORMAT = "smallgan-embeddings"
_VERSION = 1
# Items hashed for the dataset fingerprint: enough to tell datasets apart
# (first, last and evenly spaced items) without reading a million images.
_FINGERPRINT_ITEMS = 16
# A crash (kill -9, power loss) loses at most this much work; exceptions and
# Ctrl-C lose nothing, they checkpoint on the way out.
_CHECKPOINT_SECONDS = 2.0


def manifest_path(path: PathLike) -> Path:
    """``cache.npy`` -> ``cache.json``."""
    return Path(path).with_suffix(".json")


def projection_path(path: PathLike) -> Path:
    """``cache.npy`` -> ``cache.projection.npz``."""
    return Path(path).with_suffix(".projection.npz")


def _image_of(item: Any) -> Any:
    # Datasets yield an image or (image, label, ...): the image comes first.
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError("dataset item is an empty tuple; expected an image or (image, label)")
        return item[0]
    return item


def dataset_fingerprint(dataset: Any) -> str:
    """A content hash of a dataset: its length and a spread of its items.

    Hashes the dtype, shape and bytes of the images (and the labels) at up to
    16 evenly spaced indices, first and last included, so two datasets of the
    same length but different content are told apart without reading all of
    either.  A dataset with random augmentation gives a different
    fingerprint each time: embed a deterministic version of it.

    Parameters
    ----------
    dataset : map-style dataset
        ``len(dataset)`` and ``dataset[i]`` returning an image tensor/array,
        or a tuple whose first element is one.

    Returns
    -------
    str
        ``"sha256:<hex>"``.
    """
    n = len(dataset)
    h = hashlib.sha256(f"n={n}".encode())
    if n:
        for i in sorted(set(np.linspace(0, n - 1, num=min(n, _FINGERPRINT_ITEMS)).round().astype(int).tolist())):
            item = dataset[i]
            image = _image_of(item)
            if isinstance(image, torch.Tensor):
                arr = image.detach().cpu().contiguous().numpy()
            elif isinstance(image, np.ndarray):
                arr = np.ascontiguousarray(image)
            else:
                raise TypeError(
                    f"dataset[{i}] gives an image of type {type(image).__name__}; expected a torch.Tensor "
                    f"or numpy array (add a transform that converts it)"
                )
            h.update(f"{i}:{arr.dtype.str}:{arr.shape}".encode())
            h.update(arr.tobytes())
            if isinstance(item, (tuple, list)) and len(item) > 1:
                label = item[1]
                h.update(repr(label.tolist() if isinstance(label, (torch.Tensor, np.ndarray)) else label).encode())
    return "sha256:" + h.hexdigest()


def extractor_id(extractor: Callable) -> str:
    """A string that changes when the extractor would compute other features.

    * An ``extractor_id`` attribute (str) is used as is (the built-in
      Inception extractor has one naming its layout and weights digest).
    * A ``torch.nn.Module``: its class and a hash of its state dict (names,
      shapes, dtypes, values).
    * Another callable: its module and qualified name only, so pass
      ``extractor_id=`` to :func:`compute_embeddings` when its behaviour
      depends on data the name does not capture.
    """
    own = getattr(extractor, "extractor_id", None)
    if isinstance(own, str) and own:
        return own
    cls = type(extractor)
    if isinstance(extractor, torch.nn.Module):
        h = hashlib.sha256()
        for name, value in sorted(extractor.state_dict().items()):
            t = value.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            # bytes of the raw storage; view as uint8 handles every dtype (bf16 too)
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return f"{cls.__module__}.{cls.__qualname__}/sha256:{h.hexdigest()[:16]}"
    if callable(extractor):
        target = extractor if hasattr(extractor, "__qualname__") else cls
        return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', cls.__name__)}"
    raise TypeError(f"extractor must be callable, got {type(extractor).__name__}")


_identify = extractor_id  # compute_embeddings has an argument of the same name


def read_manifest(path: PathLike) -> Dict[str, Any]:
    """The manifest of the cache at ``path`` (``cache.npy``) as a dict.

    Raises
    ------
    FileNotFoundError
        No manifest next to ``path``.
    ValueError
        The file is not a smallgan embedding manifest.
    """
    mpath = manifest_path(path)
    if not mpath.is_file():
        raise FileNotFoundError(f"no embedding manifest {str(mpath)!r} for {str(path)!r}")
    try:
        m = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(mpath)!r} is not valid JSON ({exc})") from None
    if not isinstance(m, dict) or m.get("format") != _FORMAT:
        raise ValueError(f"{str(mpath)!r} is not a smallgan embedding manifest")
    if m.get("version") != _VERSION:
        raise ValueError(f"{str(mpath)!r} has manifest version {m.get('version')!r}; this smallgan reads {_VERSION}")
    return m


def _write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    mpath = manifest_path(path)
    # atomic: readers see the old or the new manifest, never half of one
    atomic_write(mpath, lambda f: (json.dump(manifest, f, indent=2, sort_keys=True), f.write("\n")), text=True)


def load_embeddings(path: PathLike, mmap_mode: str = "r") -> np.memmap:
    """Open a finished embedding cache.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file given to :func:`compute_embeddings`.
    mmap_mode : {"r", "c"}
        Read-only, or copy-on-write (changes stay in memory).

    Returns
    -------
    numpy.memmap of shape (n, d)
        The embeddings (float32 unless another dtype was asked for), row
        ``i`` belonging to ``dataset[i]``.

    Raises
    ------
    FileNotFoundError
        No cache (array or manifest) at ``path``.
    ValueError
        The cache is unfinished, or the array does not match its manifest.
    """
    if mmap_mode not in ("r", "c"):
        raise ValueError(f"mmap_mode must be 'r' or 'c' (the cache is never modified), got {mmap_mode!r}")
    path = Path(path)
    m = read_manifest(path)
    if not path.is_file():
        raise FileNotFoundError(f"embedding array {str(path)!r} is missing (its manifest exists)")
    if m["rows_done"] != m["dataset"]["length"]:
        raise ValueError(
            f"embedding cache {str(path)!r} is unfinished: {m['rows_done']} of {m['dataset']['length']} rows "
            f"done; call compute_embeddings (or `smallgan embed`) again to resume"
        )
    arr = np.load(path, mmap_mode=mmap_mode)
    if list(arr.shape) != m["shape"] or arr.dtype.name != m["dtype"]:
        raise ValueError(
            f"embedding array {str(path)!r} has shape {arr.shape} and dtype {arr.dtype}, its manifest says "
            f"{tuple(m['shape'])} and {m['dtype']}"
        )
    return arr




def _requested_projection(projection: Any) -> Optional[Dict[str, Any]]:
    if projection is None:
        return None
    if not isinstance(projection, Mapping):
        raise TypeError(
            f"projection must be None or a dict like {{'dim': 32, 'seed': 0, 'kind': 'gaussian'}}, "
            f"got {type(projection).__name__}"
        )
    unknown = set(projection) - {"dim", "seed", "kind", "density"}
    if unknown:
        raise ValueError(f"projection has unknown keys {sorted(unknown)}; allowed: dim, seed, kind, density")
    if "dim" not in projection:
        raise ValueError("projection needs 'dim' (the projected dimension)")
    req = {"dim": projection["dim"], "seed": projection.get("seed", 0),
           "kind": projection.get("kind", "gaussian"), "density": projection.get("density")}
    projection_settings(1, **req)  # validates every value; in_dim is not known yet
    return req


def _diff(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list:
    out = []
    for key, value in wanted.items():
        if stored.get(key) != value:
            out.append(f"{key}: cache has {stored.get(key)!r}, requested {value!r}")
    return out


def compute_embeddings(
    dataset: Any,
    extractor: Callable[[torch.Tensor], torch.Tensor],
    path: PathLike,
    *,
    batch_size: int = 64,
    device: Union[str, torch.device] = "cpu",
    num_workers: int = 0,
    projection: Optional[Mapping[str, Any]] = None,
    dtype: str = "float32",
    extractor_id: Optional[str] = None,
    progress: bool = True,
) -> np.memmap:
    """Embed every item of a dataset into a memory-mapped ``.npy`` cache, resumably.

    Parameters
    ----------
    dataset : map-style dataset
        ``len(dataset)`` items, each an image tensor (C, H, W) or a tuple
        whose first element is one (e.g. ``(image, label)``).  Must be
        deterministic (no random augmentation).  Never modified.
    extractor : callable
        Maps a float tensor (b, C, H, W) on ``device`` to features (b, D, ...)
        (flattened to (b, D)).  A ``torch.nn.Module`` is moved to ``device``
        and run in eval mode (its training flag is restored afterwards).
    path : str or os.PathLike
        The ``.npy`` file to write; the manifest goes to ``path`` with the
        suffix ``.json``, the projection to ``.projection.npz``.
    batch_size : int
        Images per extractor call (>= 1).
    device : str or torch.device
        Where the extractor runs.
    num_workers : int
        ``DataLoader`` worker processes (>= 0).
    projection : dict or None
        ``{"dim": int, "seed": int = 0, "kind": "gaussian"|"sparse", "density": float|None}``:
        store ``features @ R`` (see :mod:`smallgan.projection`) instead of the
        raw features.  ``None`` stores the raw (b, D) features.
    dtype : {"float32", "float16", "float64"}
        Storage dtype.
    extractor_id : str or None
        Identity of the extractor recorded in (and checked against) the
        manifest; default :func:`smallgan.embeddings.extractor_id`.
    progress : bool
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    numpy.memmap of shape (len(dataset), dim or D)
        The finished cache, opened read-only.

    Raises
    ------
    TypeError, ValueError
        Bad arguments (before any work); an existing cache whose manifest
        does not match (the message lists every differing field); an
        ``.npy`` at ``path`` without a manifest (not overwritten); extractor
        output of the wrong batch size, feature size, or with NaN/Inf.
    Exception
        Whatever the dataset or extractor raises.  Rows finished before it
        are kept: the next call resumes after them.

    Thread safety
    -------------
    One writer per ``path`` at a time; nothing guards against two processes
    writing the same cache.

    Examples
    --------
    >>> import torch, tempfile, os
    >>> data = [torch.rand(1, 8, 8) for _ in range(10)]
    >>> net = torch.nn.Flatten()
    >>> d = tempfile.mkdtemp()
    >>> emb = compute_embeddings(data, net, os.path.join(d, "e.npy"), batch_size=4,
    ...                          projection={"dim": 16}, progress=False)
    >>> emb.shape, emb.dtype
    ((10, 16), dtype('float32'))
    """
    # ---- validate everything before touching the disk or the data
    if not callable(extractor):
        raise TypeError(f"extractor must be callable, got {type(extractor).__name__}")
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"path must end in .npy, got {str(path)!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} for the cache does not exist")
    batch_size = check_int("batch_size", batch_size, 1)
    num_workers = check_int("num_workers", num_workers, 0)
    if dtype not in ("float32", "float16", "float64"):
        raise ValueError(f"dtype must be 'float32', 'float16' or 'float64', got {dtype!r}")
    proj = _requested_projection(projection)
    if extractor_id is not None and (not isinstance(extractor_id, str) or not extractor_id):
        raise TypeError(f"extractor_id must be a non-empty str or None, got {extractor_id!r}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda:0', got {device!r}") from None
    try:
        n = len(dataset)
    except TypeError:
        raise TypeError(f"dataset must be a map-style dataset with len(), got {type(dataset).__name__}") from None
    if n < 1:
        raise ValueError("dataset is empty (len 0): nothing to embed")

    ext_id = extractor_id if extractor_id is not None else _identify(extractor)
    wanted = {
        "dataset": {"length": n, "fingerprint": dataset_fingerprint(dataset)},
        "extractor": ext_id,
        "dtype": dtype,
    }

    # ---- reuse, resume, or refuse
    mpath = manifest_path(path)
    manifest: Optional[Dict[str, Any]] = None
    if mpath.exists():
        manifest = read_manifest(path)
        problems = _diff(manifest["dataset"], wanted["dataset"])
        problems = [f"dataset {p}" for p in problems]
        problems += _diff(manifest, {"extractor": ext_id, "dtype": dtype})
        stored_proj = manifest.get("projection")
        if stored_proj is None or proj is None:
            if stored_proj is not proj:
                problems.append(f"projection: cache has {stored_proj!r}, requested {proj!r}")
        else:
            # resolve the request's defaults (sparse density) against the stored input size
            resolved = projection_settings(stored_proj["in_dim"], **proj)
            stored = {k: stored_proj.get(k) for k in resolved}
            if stored != resolved:
                problems.append(f"projection: cache has {stored!r}, requested {resolved!r}")
        if problems:
            raise ValueError(
                f"embedding cache {str(path)!r} was made for something else; not reusing it. "
                + "; ".join(problems)
                + f". Delete {str(path)!r} and {str(mpath)!r} to recompute, or choose another path."
            )
        if manifest["rows_done"] == n:
            return load_embeddings(path)
        if manifest["rows_done"] > 0 and not path.is_file():
            raise ValueError(
                f"embedding cache {str(path)!r} is missing although its manifest counts "
                f"{manifest['rows_done']} rows done; delete {str(mpath)!r} to start over"
            )
    elif path.exists():
        raise ValueError(
            f"{str(path)!r} exists but has no manifest {str(mpath)!r}: it was not written by "
            f"compute_embeddings (which writes the manifest first); refusing to overwrite it. "
            f"Delete it or choose another path."
        )

    # ---- compute
    from torch.utils.data import DataLoader

    start = manifest["rows_done"] if manifest is not None else 0
    module = extractor if isinstance(extractor, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.to(device).eval()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=range(start, n),  # in order, from the first row not done
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    out: Optional[np.memmap] = None
    matrix: Optional[torch.Tensor] = None
    if manifest is not None and path.is_file():
        out = np.load(path, mmap_mode="r+")
        if list(out.shape) != manifest["shape"] or out.dtype.name != dtype:
            raise ValueError(
                f"embedding array {str(path)!r} has shape {out.shape} and dtype {out.dtype}, its manifest "
                f"says {tuple(manifest['shape'])} and {manifest['dtype']}; delete both to start over"
            )
    if manifest is not None and manifest.get("projection") is not None:
        proj = {k: manifest["projection"][k] for k in ("in_dim", "dim", "seed", "kind", "density")}
        matrix = torch.from_numpy(projection_matrix(**proj)).to(device, torch.float32)

    from tqdm.auto import tqdm

    bar = tqdm(total=n, initial=start, disable=not progress, unit="img", desc=f"embed {path.name}")
    done = start
    last_checkpoint = time.monotonic()
    try:
        with torch.inference_mode():
            for batch in loader:
                images = _image_of(batch)
                if not isinstance(images, torch.Tensor):
                    raise TypeError(
                        f"dataset items batch to {type(images).__name__}; expected image tensors"
                    )
                b = images.shape[0]
                feats = extractor(images.to(device, non_blocking=True))
                if not isinstance(feats, torch.Tensor):
                    raise TypeError(f"extractor returned {type(feats).__name__}, expected a torch.Tensor")
                if feats.dim() < 2 or feats.shape[0] != b:
                    raise ValueError(
                        f"extractor returned shape {tuple(feats.shape)} for a batch of {b} images; "
                        f"expected (b, D)"
                    )
                feats = feats.reshape(b, -1).float()
                bad = ~torch.isfinite(feats).all(dim=1)
                if bool(bad.any()):
                    first = done + int(torch.nonzero(bad)[0])
                    raise ValueError(
                        f"extractor returned NaN or Inf for {int(bad.sum())} image(s) of rows "
                        f"[{done}, {done + b}), first dataset index {first}"
                    )
                if out is None:
                    # First batch of a fresh cache: now D is known.  Write the
                    # manifest before the array, so an .npy never exists
                    # without the manifest that says what it is.
                    in_dim = feats.shape[1]
                    projection_record = None
                    width = in_dim
                    if proj is not None:
                        s = projection_settings(in_dim, proj["dim"], proj["seed"], proj["kind"], proj["density"])
                        matrix = torch.from_numpy(projection_matrix(**s)).to(device, torch.float32)
                        projection_record = {**s, "file": projection_path(path).name}
                        width = s["dim"]
                    manifest = {
                        "format": _FORMAT,
                        "version": _VERSION,
                        **wanted,
                        "feature_dim": in_dim,
                        "projection": projection_record,
                        "shape": [n, width],
                        "rows_done": 0,
                    }
                    _write_manifest(path, manifest)
                    if projection_record is not None:
                        save_projection(projection_path(path), {k: projection_record[k] for k in
                                                                ("in_dim", "dim", "seed", "kind", "density")})
                    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(n, width))
                if feats.shape[1] != manifest["feature_dim"]:
                    raise ValueError(
                        f"extractor returned {feats.shape[1]} features per image, the cache was started "
                        f"with {manifest['feature_dim']}"
                    )
                if matrix is not None:
                    feats = feats @ matrix
                out[done:done + b] = feats.cpu().numpy()
                done += b
                bar.update(b)
                if time.monotonic() - last_checkpoint >= _CHECKPOINT_SECONDS:
                    _checkpoint(path, out, manifest, done)
                    last_checkpoint = time.monotonic()
    finally:
        # Exceptions and Ctrl-C included: keep every finished row.
        bar.close()
        if out is not None and manifest is not None and done > manifest["rows_done"]:
            _checkpoint(path, out, manifest, done)
        if module is not None:
            module.train(was_training)
        del out
    return load_embeddings(path)


def _checkpoint(path: Path, out: np.memmap, manifest: Dict[str, Any], done: int) -> None:
    """Flush the array, then (and only then) record the rows as done."""
    out.flush()
    manifest["rows_done"] = done
    _write_manifest(path, manifest)
