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
    once per test session into a fresh cache folder: about 10-20 s on one
    core.  Yields ``(network, cache_dir)``."""
    from smallgan.metrics.classifier import load_mnist_classifier

    cache = tmp_path_factory.mktemp("mnist-cnn-cache")
    return load_mnist_classifier(cache_dir=cache, threads=1, log=lambda line: None), cache
