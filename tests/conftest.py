import os

import numpy as np
import pytest

# Hypothesis: deterministic and bounded in CI.
try:
    from hypothesis import settings

    settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
    settings.register_profile("dev", max_examples=30, deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def mnist_classifier(tmp_path_factory):
    """The shipped evaluation classifier (default settings, seed 0), trained
    once per test session by ``smallgan train mnist-classifier`` into a fresh
    folder (about 10-20 s on one core), then loaded the way evaluations load
    it.  Yields ``(network, folder)``."""
    import contextlib
    import io

    from smallgan.cli import main
    from smallgan.metrics.classifier import load_mnist_classifier

    cache = tmp_path_factory.mktemp("mnist-cnn-cache")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "mnist-classifier", "--out", str(cache)]) == 0
    net = load_mnist_classifier(cache_dir=cache, train=False)
    net.cli_output = out.getvalue()  # for the CLI test
    return net, cache


@pytest.fixture
def classifier_cache(mnist_classifier, tmp_path):
    """A fresh cache folder holding the session's classifier (nothing is
    trained; runs write their embeddings here, not in the session's folder)."""
    import shutil

    _, session_cache = mnist_classifier
    folder = tmp_path / "classifier-cache"
    folder.mkdir()
    for f in session_cache.glob("mnist-cnn.*.pt"):
        shutil.copy(f, folder / f.name)
    return folder
