"""MEG anomaly detection (paper Table 2): metrics, split, losses, models, CLI, resume."""
import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from smallgan import cli
from smallgan.data.anomaly import anomaly_split, check_source
from smallgan.experiments.meg import MEGConfig, run
from smallgan.experiments.meg_grid import (format_markdown, format_table, paired, parse_digits,
                                          summarize)
from smallgan.metrics.anomaly import auprc, auroc, average_precision
from smallgan.models.meg import MEGEnergy, MEGGenerator, MEGStatistics
from smallgan.training.meg import jsd_mi, mi_bce, score_penalty


# ------------------------------------------------------------------ metrics

def _plain_pr_auc(scores, labels):
    """Independent float64 reference: PR points at each distinct threshold,
    highest first, after (recall 0, precision 1); trapezoids in that order
    (sklearn's auc keeps the order of the points)."""
    s, y = np.asarray(scores, float), np.asarray(labels, int)
    pts = [(0.0, 1.0)]
    for thr in sorted(set(s.tolist()), reverse=True):
        pred = s >= thr
        tp = int((pred & (y == 1)).sum())
        fp = int((pred & (y == 0)).sum())
        pts.append((tp / y.sum(), tp / (tp + fp)))
    area = 0.0
    for (r0, p0), (r1, p1) in zip(pts[:-1], pts[1:]):
        area += (r1 - r0) * (p0 + p1) / 2
    return area


def _plain_auroc(scores, labels):
    s, y = np.asarray(scores, float), np.asarray(labels, int)
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_metrics_hand_computed():
    # PR points (recall, precision): (0,1) (.5,1) (.5,.5) (1,2/3) (1,.5)
    s, y = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    assert auprc(s, y) == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)  # 19/24, not AP
    assert average_precision(s, y) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert auroc(s, y) == pytest.approx(0.75)
    assert auprc([0, 0, 1, 1], [0, 0, 1, 1]) == pytest.approx(1.0)
    assert auroc([3, 2, 1, 0], [0, 0, 1, 1]) == pytest.approx(0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_against_plain_reference_and_sklearn(seed):
    from sklearn.metrics import auc, precision_recall_curve, roc_auc_score

    rng = np.random.default_rng(seed)
    y = (rng.random(60) < 0.3).astype(int)
    y[:2] = [0, 1]
    s = np.round(rng.normal(size=60) + y, 1)  # rounding makes ties
    p, r, _ = precision_recall_curve(y, s)
    assert auprc(s, y) == pytest.approx(auc(r, p), abs=1e-12)
    assert auprc(s, y) == pytest.approx(_plain_pr_auc(s, y), abs=1e-12)
    assert auroc(s, y) == pytest.approx(_plain_auroc(s, y), abs=1e-12)
    assert auroc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match="both classes"):
        auprc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="same length"):
        auroc([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="NaN or Inf"):
        auprc([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        auprc([0.1, 0.2], [0, 2])


# -------------------------------------------------------------------- split

def _toy_digits(per_class=20):
    labels = np.repeat(np.arange(10), per_class)
    images = (np.arange(len(labels)) % 256).astype(np.uint8)[:, None, None, None] * np.ones((1, 1, 2, 2), np.uint8)
    return images, labels


@pytest.mark.parametrize("digit", [0, 4, 9])
def test_split_composition_and_reproducible(digit):
    images, labels = _toy_digits()
    a = anomaly_split(images, labels, digit)
    b = anomaly_split(images, labels, digit)
    n_normal = 9 * 20
    assert len(a.train) == int(0.8 * n_normal) == 144
    assert len(a.test) == n_normal - 144 + 20
    assert (labels[a.train_index] != digit).all()  # held-out digit never in train
    assert (labels[a.test_index] == digit).sum() == 20  # every anomaly in test
    np.testing.assert_array_equal(a.test_labels, (labels[a.test_index] == digit).astype(int))
    assert set(a.train_index) | set(a.test_index) == set(range(len(labels)))
    assert not set(a.train_index) & set(a.test_index)
    np.testing.assert_array_equal(a.train_index, b.train_index)
    # the reference's shuffle: RandomState(42) over the normals in their original order
    normal = np.flatnonzero(labels != digit)
    np.testing.assert_array_equal(a.train_index, normal[np.random.RandomState(42).permutation(n_normal)][:144])
    # pixels to [-1, 1]
    np.testing.assert_allclose(a.train, images[a.train_index] / 255.0 * 2 - 1, atol=1e-6)
    assert a.train.dtype == np.float32


def test_split_mnist_5k_sizes():
    from smallgan.data.anomaly import load_digits_source

    images, labels = load_digits_source("mnist-5k")
    s = anomaly_split(images, labels, 7)
    assert s.train.shape == (3600, 1, 28, 28) and s.test.shape == (1400, 1, 28, 28)
    assert s.test_labels.sum() == 500
    assert s.train.min() >= -1 and s.train.max() <= 1 and s.train.min() == -1


def test_split_refuses_bad_digit():
    images, labels = _toy_digits()
    with pytest.raises(ValueError, match="digit must be <= 9, got 10"):
        anomaly_split(images, labels, 10)


# ------------------------------------------------------- losses and models

def test_score_penalty_matches_finite_differences():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 5), nn.Tanh(), nn.Linear(5, 1)).double()

    def energy(x):
        return net(x).squeeze(1)

    x = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    got = float(score_penalty(energy, x).detach())
    h, grads = 1e-6, torch.zeros_like(x)
    with torch.no_grad():
        flat = x.reshape(-1)
        for i in range(flat.numel()):
            e = torch.zeros_like(flat)
            e[i] = h
            grads.reshape(-1)[i] = (energy((flat + e).view_as(x)).sum()
                                    - energy((flat - e).view_as(x)).sum()) / (2 * h)
    # norm over the channel axis, squared, mean over batch and pixels
    expected = float((grads ** 2).sum(dim=1).mean())
    assert got == pytest.approx(expected, rel=1e-6)
    # = mean over samples of ||grad||^2 / (H * W)
    assert got == pytest.approx(float((grads ** 2).sum(dim=(1, 2, 3)).mean() / 9), rel=1e-6)


def test_mi_estimator_sign_on_a_toy_case():
    torch.manual_seed(0)
    n = 2000
    z = torch.randn(n, 1)
    x_dep = z + 0.1 * torch.randn(n, 1)
    x_ind = torch.randn(n, 1)

    def trained_estimate(x):
        t = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
        opt = torch.optim.Adam(t.parameters(), lr=1e-2)
        for _ in range(200):
            z_bar = z[torch.randperm(n)]
            tj, tm = t(torch.cat([x, z], 1)), t(torch.cat([x, z_bar], 1))
            opt.zero_grad()
            mi_bce(tj, tm).backward()
            opt.step()
        with torch.no_grad():
            z_bar = z[torch.randperm(n)]
            return float(jsd_mi(t(torch.cat([x, z], 1)), t(torch.cat([x, z_bar], 1))))

    dep, ind = trained_estimate(x_dep), trained_estimate(x_ind)
    assert dep > ind + 0.3
    assert ind == pytest.approx(-2 * math.log(2), abs=0.1)  # chance: BCE = log 2


def test_jsd_mi_is_minus_twice_the_reference_bce():
    tj, tm = torch.randn(7), torch.randn(7)
    ref = nn.BCEWithLogitsLoss()(torch.cat([tj, tm]), torch.cat([torch.ones(7), torch.zeros(7)]))
    assert float(mi_bce(tj, tm)) == pytest.approx(float(ref))
    assert float(jsd_mi(tj, tm)) == pytest.approx(-2 * float(ref))


@pytest.mark.parametrize("dim", [8, 24, 512])
def test_model_shapes(dim):
    g, e, t = MEGGenerator(128, dim), MEGEnergy(dim), MEGStatistics(128, dim)
    z = torch.randn(2, 128)
    with torch.no_grad():
        x = g(z)
        assert x.shape == (2, 1, 28, 28)
        assert x.abs().max() <= 1
        assert e(x).shape == (2,)
        assert t(x, z).shape == (2,)
    if dim == 512:  # the paper's widths
        convs = [m.out_channels for m in e.modules() if isinstance(m, nn.Conv2d)]
        assert convs == [64, 128, 256, 512]
        assert t.mlp[0].out_features == 512 and t.trunk[-1].out_features == 128


def test_model_width_must_be_multiple_of_8():
    with pytest.raises(ValueError, match="dim must be a multiple of 8, got 12"):
        MEGEnergy(12)


# ------------------------------------------------------------ experiment

_TINY = ["--dim", "8", "--batch-size", "16", "--n-dis", "2", "--projection-dim", "8",
         "--threads", "1", "--prefetch", "0", "--no-tensorboard", "--no-progress"]


@pytest.mark.parametrize("sampling", ["random", "coreset"])
def test_cli_end_to_end(tmp_path, capsys, sampling):
    out = tmp_path / sampling
    rc = cli.main(["train", "meg-anomaly", "--digit", "4", "--sampling", sampling, "--seed", "1",
                   "--steps", "3", "--eval-every", "1", "--out", str(out), *_TINY])
    assert rc == 0
    text = capsys.readouterr().out
    assert "AUPRC E(x)" in text and "[paper: " in text
    r = json.loads((out / "result.json").read_text())
    assert r["label"] == ("MEG" if sampling == "random" else "Core-set+MEG")
    assert r["n_train"] == 3600 and r["n_test"] == 1400 and r["n_anomalies"] == 500
    assert r["n_evals"] == 3 and 0 < r["auprc_energy_last10"] <= 1
    evals = (out / "evaluations.csv").read_text().splitlines()
    assert len(evals) == 4 and evals[0].startswith("step,energy_auprc")
    assert (out / "pr_curve.png").stat().st_size > 0
    assert list((out / "samples").glob("*.png"))
    hist = [float(line.split(",")[1]) for line in evals[1:]]
    assert r["auprc_energy_last10"] == pytest.approx(sum(hist) / 3)


def test_resume_equals_uninterrupted(tmp_path):
    base = dict(digit=5, sampling="coreset", dim=8, batch_size=16, n_dis=2, projection_dim=8,
                eval_every=2, threads=1, prefetch=0)

    def state(d):
        return torch.load(d / "checkpoint.pt", weights_only=True)

    run(MEGConfig(steps=4, **base), tmp_path / "full", tensorboard=False)
    run(MEGConfig(steps=2, **base), tmp_path / "part", tensorboard=False)
    r = run(MEGConfig(steps=4, **base), tmp_path / "part", resume=True, tensorboard=False)
    a, b = state(tmp_path / "full"), state(tmp_path / "part")
    assert b["step"] == 4
    for key in ("generator", "discriminator", "statnet"):
        for name, v in a[key].items():
            torch.testing.assert_close(b[key][name], v, rtol=0, atol=0, msg=f"{key}.{name}")
    for key in ("opt_t", "opt_d", "opt_g"):
        for i, s in a[key]["state"].items():
            torch.testing.assert_close(b[key]["state"][i]["exp_avg"], s["exp_avg"], rtol=0, atol=0)
    assert a["meg_history"] == b["meg_history"] and len(b["meg_history"]) == 2
    full = json.loads((tmp_path / "full" / "result.json").read_text())
    assert r["auprc_energy_last10"] == full["auprc_energy_last10"]


def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    args = ["train", "meg-anomaly", "--steps", "1", "--out", str(tmp_path), *_TINY]
    assert cli.main(args) == 0
    assert cli.main([*args, "--resume", "--lr-e", "0.001"]) == 2
    assert "lr_e" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--digit", "10"], "digit must be <= 9, got 10"),
    (["--dim", "12"], "dim must be a multiple of 8"),
    (["--root", "MISSING"], "not a folder"),
    (["--root", "EMPTY"], "MNIST file train-images-idx3-ubyte"),
])
def test_cli_refuses_bad_arguments(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [{"MISSING": str(tmp_path / "nope"), "EMPTY": str(tmp_path / "empty")}.get(a, a) for a in argv]
    rc = cli.main(["train", "meg-anomaly", "--out", str(tmp_path / "run"), *_TINY, *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("smallgan train meg-anomaly: ") and message in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_configs_saved_before_the_embedding_option_still_resume():
    # runs saved before `embedding`/`weights` existed used raw pixels; their
    # stored configs lack the two keys and must compare equal to today's default
    d = MEGConfig(dim=8).to_dict()
    assert "embedding" not in d and "weights" not in d
    assert MEGConfig(dim=8, embedding="random-conv").to_dict()["embedding"] == "random-conv"


def test_random_conv_embedding_matches_a_direct_computation(tmp_path, capsys, monkeypatch):
    # the real core-set's features: the fixed random conv net on the training
    # images in [0, 1], projected with the seed-0 Gaussian matrix; checked
    # against a direct computation of the same formula
    from smallgan.data.anomaly import anomaly_split, load_digits_source
    from smallgan.metrics.fid import random_conv_features
    from smallgan.projection import random_projection

    monkeypatch.setenv("SMALLGAN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    rc = cli.main(["train", "meg-anomaly", "--digit", "3", "--sampling", "coreset", "--steps", "2",
                   "--embedding", "random-conv", "--out", str(out), *_TINY])
    assert rc == 0, capsys.readouterr().err
    assert "random-conv/proj8-seed0" in capsys.readouterr().out
    cache = tmp_path / "cache" / "meg-mnist-5k-digit3-train.random-conv.proj8-seed0.npy"
    got = np.load(cache)
    images, labels = load_digits_source("mnist-5k")
    train = anomaly_split(images, labels, 3).train
    with torch.no_grad():
        feats = random_conv_features()(torch.from_numpy((train[:300] + 1) / 2)).numpy()
    want = random_projection(feats.astype(np.float64), 8, seed=0)
    np.testing.assert_allclose(got[:300], want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    assert got.shape == (3600, 8)
    assert json.loads((out / "config.json").read_text())["experiment"]["meg"]["embedding"] == "random-conv"


@pytest.mark.parametrize("argv, message", [
    (["--embedding", "inception", "--weights", "NOPE"], "weights file"),
    (["--embedding", "raw", "--weights", "FILE"], "weights only apply to embedding 'inception'"),
    (["--embedding", "inception"], "--embedding inception needs Inception weights"),
])
def test_cli_refuses_bad_embedding_options(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setenv("SMALLGAN_INCEPTION_WEIGHTS", str(tmp_path / "absent.pth"))
    (tmp_path / "file.pth").write_bytes(b"x")
    argv = [{"NOPE": str(tmp_path / "nope.pth"), "FILE": str(tmp_path / "file.pth")}.get(a, a)
            for a in argv]
    rc = cli.main(["train", "meg-anomaly", "--sampling", "coreset", "--out", str(tmp_path / "run"),
                   *_TINY, *argv])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_refuses_bad_sampling(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "meg-anomaly", "--sampling", "kcenter", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "invalid choice: 'kcenter'" in capsys.readouterr().err


def test_check_source_messages(tmp_path):
    with pytest.raises(ValueError, match="needs root"):
        check_source("mnist")
    with pytest.raises(ValueError, match="source must be one of"):
        check_source("cifar")


# ------------------------------------------------------------------- grid

def test_parse_digits():
    assert parse_digits("0-9") == list(range(10))
    assert parse_digits("1,4,5,7,9") == [1, 4, 5, 7, 9]
    with pytest.raises(ValueError, match="digits in 0-9"):
        parse_digits("3-10")
    with pytest.raises(ValueError, match="must look like"):
        parse_digits("one")


def test_grid_tables():
    results = [{"digit": 4, "sampling": s, "seed": seed, "steps": 10, "auprc_energy_last10": v,
                "auprc_grad_last10": v, "energy_auroc_last10": v, "energy_ap_last10": v}
               for s, seed, v in [("random", 0, 0.3), ("coreset", 0, 0.5),
                                  ("random", 1, 0.4), ("coreset", 1, 0.4)]]
    rows = summarize(results)
    assert [r["method"] for r in rows] == ["MEG", "Core-set+MEG"]
    assert rows[0]["auprc_energy_last10_mean"] == pytest.approx(0.35)
    assert rows[0]["paper_auprc"] == 0.401 and rows[1]["paper_auprc"] == 0.501
    d = paired(results)
    assert d[0]["diff_mean"] == pytest.approx(0.1) and d[0]["n_pairs"] == 2
    assert d[0]["diff_std"] == pytest.approx(math.sqrt(0.02))
    assert "paired difference" in format_table(rows, d)


def test_grid_markdown_table_against_hand_computation():
    # digit 4: E(x) random 0.3 / 0.4, core-set 0.5 / 0.4 over seeds 0 / 1;
    # the gradient score is the E(x) score minus 0.1; digit 2 has one seed
    results = [{"digit": dg, "sampling": s, "seed": seed, "steps": 10, "auprc_energy_last10": v,
                "auprc_grad_last10": v - 0.1, "energy_auroc_last10": v, "energy_ap_last10": v}
               for dg, s, seed, v in [(4, "random", 0, 0.3), (4, "coreset", 0, 0.5),
                                      (4, "random", 1, 0.4), (4, "coreset", 1, 0.4),
                                      (2, "random", 0, 0.6), (2, "coreset", 0, 0.2)]]
    text = format_markdown(results)
    line2 = next(l for l in text.splitlines() if l.startswith("| 2 |"))
    line4 = next(l for l in text.splitlines() if l.startswith("| 4 |"))
    sd = math.sqrt(0.005)  # sample std of {0.3, 0.4}
    assert line2 == "| 2 | 1 | 0.600 | 0.200 | -0.400 (0/1) | 0.500 | 0.100 | -0.400 (0/1) |  |"
    assert line4 == (f"| 4 | 2 | 0.350 ± {sd:.3f} | 0.450 ± {sd:.3f} | +0.100 ± {math.sqrt(0.02):.3f} "
                     f"(1/2) | 0.250 ± {sd:.3f} | 0.350 ± {sd:.3f} | +0.100 ± {math.sqrt(0.02):.3f} "
                     f"(1/2) | 0.401 / 0.501 (+0.100) |")
    # over digits: mean of (-0.4, +0.1); pairs: +0.2, 0.0, -0.4 -> one ahead
    assert "E(x): Core-set+MEG ahead on 1 of 2 digits (mean over seeds), mean difference " \
           "-0.150; ahead in 1 of 3 (digit, seed) pairs." in text


def test_grid_cli_writes_csvs_and_resumes(tmp_path, capsys):
    args = ["train", "meg-grid", "--digits", "1", "--seeds", "1", "--steps", "1",
            "--out", str(tmp_path), *[a for a in _TINY if a != "--no-progress"]]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "paired difference" in out and "0.281" in out
    for name in ("runs.csv", "summary.csv", "paired.csv", "table.md"):
        assert (tmp_path / name).exists()
    assert len((tmp_path / "runs.csv").read_text().splitlines()) == 3
    assert cli.main(args) == 2  # exists: needs --resume
    assert cli.main([*args, "--resume"]) == 0  # finished runs are read back
    # the curves: every evaluation of every run, epochs from the run's steps per epoch
    capsys.readouterr()
    assert cli.main(["train", "meg-curves", str(tmp_path), "--out", str(tmp_path / "c")]) == 0
    with open(tmp_path / "c.csv") as f:
        rows = list(csv.DictReader(f))
    for sampling, label in (("random", "MEG"), ("coreset", "Core-set+MEG")):
        run_dir = tmp_path / "digit1" / sampling / "seed0"
        result = json.loads((run_dir / "result.json").read_text())
        with open(run_dir / "metrics.csv") as f:
            want = list(csv.DictReader(f))
        mine = [r for r in rows if r["label"] == label]
        assert [float(r["energy_auprc"]) for r in mine] == [float(w["energy_auprc"]) for w in want]
        assert [float(r["epoch"]) for r in mine] == [
            int(w["step"]) / result["steps_per_epoch"] for w in want]
        assert float(mine[0]["chance_auprc"]) == result["n_anomalies"] / result["n_test"]
    assert (tmp_path / "c.png").stat().st_size > 0
    assert cli.main(["train", "meg-curves", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert "no grid directory" in capsys.readouterr().err
