"""``smallgan train selection-bias``: what the core-sets feed the networks, against analytic cases."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from smallgan.cli import main
from smallgan.experiments.selection_bias import prior_batches, prior_moments, selected_rows
from smallgan.metrics.classifier import torch_threads


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):  # see test_metrics_classifier.py
        yield


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_prior_moments_by_hand() -> None:
    z = np.array([[0.5, -1.0], [0.95, 0.0]])
    m = prior_moments(z)
    assert m["mean_abs"] == pytest.approx((0.5 + 1.0 + 0.95 + 0.0) / 4)
    assert m["rms"] == pytest.approx(math.sqrt((0.25 + 1.0 + 0.9025) / 4))
    assert m["outer_share"] == pytest.approx(2 / 4)


def test_random_prior_is_uniform_and_the_coreset_prior_is_pushed_outward() -> None:
    n, dim = 6400, 100
    rnd = prior_moments(prior_batches(dim, n, batch_size=64, factor=4, seed=0, sampling="random"))
    # uniform on [-1, 1]: E|z| = 1/2, E z^2 = 1/3, P(|z| > 0.9) = 0.1; 640,000 coordinates
    assert rnd["mean_abs"] == pytest.approx(0.5, abs=0.003)
    assert rnd["rms"] == pytest.approx(1 / math.sqrt(3), abs=0.003)
    assert rnd["outer_share"] == pytest.approx(0.1, abs=0.003)
    z = prior_batches(dim, n, batch_size=64, factor=4, seed=0, sampling="coreset")
    assert z.shape == (n, dim) and np.abs(z).max() <= 1.0
    core = prior_moments(z)
    # k-center keeps the candidates far from the others: farther from the centre
    assert core["mean_abs"] > rnd["mean_abs"] + 0.01
    assert core["outer_share"] > rnd["outer_share"] + 0.01


def test_coreset_rows_over_draw_the_outliers() -> None:
    # 900 rows in a tight cluster, 100 spread far apart: k-center picks the spread ones
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal(0, 0.01, (900, 4)), rng.normal(0, 10.0, (100, 4))])
    emb = emb.astype(np.float32)
    outlier = np.arange(1000) >= 900
    rnd = selected_rows(emb, 2000, batch_size=16, factor=8, seed=0, sampling="random")
    core = selected_rows(emb, 2000, batch_size=16, factor=8, seed=0, sampling="coreset")
    assert rnd.shape == core.shape == (2000,) and rnd.dtype == core.dtype == np.int64
    # random: the first 62 batches (992 rows) are one epoch, every row once
    assert np.unique(rnd[:992]).size == 992
    assert outlier[rnd].mean() == pytest.approx(0.1, abs=0.03)
    # a batch of 16 from 128 candidates holds about 12.8 outliers: all of them are taken
    assert outlier[core].mean() > 0.6
    with pytest.raises(ValueError, match="sampling must be"):
        selected_rows(emb, 10, batch_size=16, factor=8, seed=0, sampling="kcenter")


def test_cli_on_mnist(classifier_cache, tmp_path, capsys) -> None:
    out = tmp_path / "bias"
    assert main(["train", "selection-bias", "--experiment", "mnist", "--n", "320",
                 "--threads", "1", "--cache-dir", str(classifier_cache), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| random (GAN) | 320 | 320 | 10 / 10 |" in printed
    assert "core-set x8 on raw/proj32-seed0" in printed
    assert "core-set x8 on mnist-cnn/proj32-seed0" in printed
    assert "| uniform on [-1, 1] (exact) | | 0.500 | 0.577 | 0.100 |" in printed
    real = read(out / "real.csv")
    assert [r["sampling"] for r in real] == ["random", "coreset", "coreset"]
    rnd, raw = real[0], real[1]
    # a whole run draws 2,000 x 64 rows from 5,000 images: every image, evenly
    assert rnd["run_draws"] == "128000" and float(rnd["run_seen_share"]) == 1.0
    assert float(rnd["run_top10_share"]) == pytest.approx(0.1, abs=0.01)
    assert float(raw["run_top10_share"]) > 0.2
    for r in real:
        hist_ok = 0 <= float(r["true_kl"]) <= math.log(10)
        assert hist_ok and int(r["true_modes"]) <= 10 and float(r["fd_mnist_cnn"]) >= 0
    prior = read(out / "prior.csv")
    assert [p["sampling"] for p in prior] == ["random", "coreset"]
    assert (out / "table.md").read_text().startswith("| real batches |")

    # bad input: named, before anything is written
    bad = tmp_path / "bad"
    assert main(["train", "selection-bias", "--experiment", "mnist", "--n", "3",
                 "--out", str(bad)]) == 2
    assert "n must be" in capsys.readouterr().err and not bad.exists()
    assert main(["train", "selection-bias", "--experiment", "mnist", "--threads", "0",
                 "--out", str(bad)]) == 2
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err and not bad.exists()
