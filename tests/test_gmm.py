"""The grid mixture of Gaussians, the MLPs and the GMM experiment's CLI."""
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from smallgan.data.gmm import PAPER_MODES, GMMGrid, grid_means
from smallgan.experiments.gmm import GMMConfig, run
from smallgan.experiments.gmm_grid import format_table, run_grid, summarize
from smallgan.models.mlp import MLPDiscriminator, MLPGenerator


def test_grid_25_is_pacgan_grid():
    means = grid_means(25)
    assert sorted(set(means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert sorted(set(means[:, 1].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(r) for r in means.tolist()}) == 25


@pytest.mark.parametrize("m", PAPER_MODES)
def test_grid_centred_with_spacing_2(m):
    means = grid_means(m)
    side = int(round(np.sqrt(m)))
    assert means.shape == (m, 2)
    np.testing.assert_allclose(means.mean(axis=0), 0.0, atol=1e-12)
    ticks = np.unique(means[:, 0])
    assert len(ticks) == side
    np.testing.assert_allclose(np.diff(ticks), 2.0)


def test_sampler_modes_and_std():
    grid = GMMGrid(36)
    x, labels = grid.sample(72_000, seed=3)
    assert x.dtype == np.float32 and labels.dtype == np.int64
    counts = np.bincount(labels, minlength=36)
    assert counts.min() > 1700 and counts.max() < 2300  # 2000 expected per mode
    resid = x - grid.means[labels]
    np.testing.assert_allclose(resid.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(resid.std(axis=0), 0.05, rtol=0.02)
    # the same seed gives the same points
    np.testing.assert_array_equal(grid.sample(10, seed=3)[0], grid.sample(10, seed=3)[0])


@pytest.mark.parametrize("m", [0, 10, -4, 2.5, True])
def test_bad_m(m):
    with pytest.raises(ValueError, match="m must be a"):
        grid_means(m)


def test_bad_std_and_n():
    with pytest.raises(ValueError, match="std must be a positive finite number, got -1"):
        GMMGrid(25, std=-1)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        GMMGrid(25).sample(0)


def test_mlp_shapes_and_depth():
    g, d = MLPGenerator(2, 16), MLPDiscriminator(2, 16)
    assert sum(isinstance(m, torch.nn.Linear) for m in g) == 4
    assert sum(isinstance(m, torch.nn.ReLU) for m in d) == 3
    assert g(torch.zeros(3, 2)).shape == (3, 2)
    assert d(torch.zeros(3, 2)).shape == (3,)
    with pytest.raises(ValueError, match="hidden must be a positive integer, got 0"):
        MLPGenerator(2, 0)
    with pytest.raises(ValueError, match="scale must be a positive finite number, got 0"):
        MLPDiscriminator(2, 16, scale=0)


def test_mlp_scale_is_a_fixed_change_of_units():
    torch.manual_seed(0)
    g1 = MLPGenerator(2, 16)
    torch.manual_seed(0)
    g9 = MLPGenerator(2, 16, scale=9.0)
    z = torch.rand(5, 2)
    torch.testing.assert_close(g9(z), 9.0 * g1(z))
    torch.manual_seed(0)
    d1 = MLPDiscriminator(2, 16)
    torch.manual_seed(0)
    d9 = MLPDiscriminator(2, 16, scale=9.0)
    torch.testing.assert_close(d9(9.0 * z), d1(z))


@pytest.mark.parametrize("kw, match", [
    ({"modes": 50}, "m must be a perfect square"),
    ({"steps": -1}, "steps must be >= 0, got -1"),
    ({"prior_factor": 0}, "prior_factor must be >= 1, got 0"),
    ({"loss": "wgan"}, "loss must be one of 'ns', 'hinge', 'lsgan'; got 'wgan'"),
    ({"sampling": "fancy"}, "sampling must be one of 'random', 'coreset'; got 'fancy'"),
    ({"dataset_size": 100}, "dataset_size=100 is smaller than target_factor"),
])
def test_bad_gmm_config(kw, match):
    with pytest.raises(ValueError, match=match):
        GMMConfig(**kw)


TINY = dict(modes=4, steps=60, batch_size=16, hidden=16, dataset_size=2000, n_eval=500)


def test_grid_runner_writes_table_csv_and_figure(tmp_path):
    base = GMMConfig(**TINY)
    lines = []
    results = run_grid(base, tmp_path, modes=(4,), seeds=(0, 1), tensorboard=False,
                       echo=lines.append)
    assert len(results) == 4 and len(lines) == 4
    for name in ("runs.csv", "summary.csv", "figure.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = summarize(results)
    assert [r["method"] for r in rows] == ["GAN", "Small-GAN"]
    assert rows[0]["n_seeds"] == 2
    gan = [r["high_quality_pct"] for r in results if r["label"] == "GAN"]
    assert rows[0]["high_quality_pct_mean"] == pytest.approx(np.mean(gan))
    assert rows[0]["high_quality_pct_std"] == pytest.approx(np.std(gan, ddof=1))
    assert "Small-GAN" in format_table(rows)
    # a finished grid is read back with resume, refused without
    again = run_grid(base, tmp_path, modes=(4,), seeds=(0, 1), resume=True, tensorboard=False,
                     echo=lambda s: None)
    assert [r["high_quality_pct"] for r in again] == [r["high_quality_pct"] for r in results]
    with pytest.raises(ValueError, match="already exists: pass resume=True"):
        run_grid(base, tmp_path, modes=(4,), seeds=(0,), tensorboard=False)


def test_gan_and_smallgan_share_data_and_init(tmp_path):
    a = run(GMMConfig(**dict(TINY, steps=0), sampling="random"), tmp_path / "a", tensorboard=False)
    b = run(GMMConfig(**dict(TINY, steps=0), sampling="coreset"), tmp_path / "b", tensorboard=False)
    # with no training the two generators are the same network
    sa = np.load(tmp_path / "a" / "samples.npz")["samples"]
    sb = np.load(tmp_path / "b" / "samples.npz")["samples"]
    np.testing.assert_array_equal(sa, sb)
    assert a["high_quality_pct"] == b["high_quality_pct"]


def test_cli_train_gmm(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "smallgan", "train", "gmm", "--modes", "4", "--steps", "40",
           "--batch-size", "16", "--hidden", "16", "--sampling", "coreset", "--seed", "1",
           "--out", str(out), "--no-tensorboard", "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Small-GAN  m=4" in p.stdout
    r = json.loads((out / "result.json").read_text())
    assert r["label"] == "Small-GAN" and r["steps"] == 40 and r["seed"] == 1
    bad = subprocess.run(cmd[:-4] + ["--steps", "-5", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "steps must be >= 0, got -5" in bad.stderr


def test_cli_quick_demo_prints_two_rows(tmp_path, monkeypatch, capsys):
    from smallgan import cli
    from smallgan.experiments import gmm_grid

    monkeypatch.setattr(gmm_grid, "QUICK_STEPS", 30)
    monkeypatch.setattr(gmm_grid, "QUICK_MODES", (4,))
    rc = cli.main(["train", "gmm-grid", "--quick", "--hidden", "16", "--batch-size", "16",
                   "--out", str(tmp_path), "--no-tensorboard"])
    assert rc == 0
    out = capsys.readouterr().out
    table = out[out.index("recovered %"):]
    assert "   4  GAN " in table and "   4  Small-GAN " in table
    assert (tmp_path / "figure.png").stat().st_size > 0
    assert json.loads((tmp_path / "m4" / "coreset" / "seed0" / "result.json").read_text())["steps"] == 30


def test_grid_cli_keeps_tracebacks_for_errors_raised_while_training(tmp_path, monkeypatch, capsys):
    # only option mistakes are "exit 2, one line"; a ValueError from training
    # (say NaN samples) must surface with its traceback
    from smallgan import cli
    from smallgan.experiments import gmm_grid

    def nan_run(*args, **kwargs):
        raise ValueError("generator produced NaN samples at step 17")

    monkeypatch.setattr(gmm_grid, "run", nan_run)
    argv = ["train", "gmm-grid", "--modes", "4", "--seeds", "1", "--steps", "5",
            "--out", str(tmp_path / "g"), "--no-tensorboard"]
    with pytest.raises(ValueError, match="NaN samples at step 17"):
        cli.main(argv)
    assert cli.main(argv[:-3] + ["--steps", "-1", "--out", str(tmp_path / "h")]) == 2
    assert "steps must be >= 0, got -1" in capsys.readouterr().err
    # an existing grid directory without --resume is an option mistake: exit 2
    (tmp_path / "g" / "m4" / "random" / "seed0").mkdir(parents=True, exist_ok=True)
    (tmp_path / "g" / "m4" / "random" / "seed0" / "log.csv").write_text("x\n")
    assert cli.main(argv) == 2
    assert "already exists: pass resume=True" in capsys.readouterr().err


def test_gmm_curves_collects_every_evaluation_and_draws_them(tmp_path, capsys):
    import csv

    from smallgan import cli

    base = GMMConfig(**dict(TINY, steps=12, eval_every=4))
    run_grid(base, tmp_path / "g", modes=(4,), seeds=(0,), tensorboard=False, echo=lambda s: None)
    assert cli.main(["train", "gmm-curves", str(tmp_path / "g"), "--out", str(tmp_path / "c")]) == 0
    with open(tmp_path / "c.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], int(r["step"])) for r in rows] == [
        (lab, s) for lab in ("Small-GAN", "GAN") for s in (4, 8, 12)]
    for sampling, label in (("random", "GAN"), ("coreset", "Small-GAN")):
        with open(tmp_path / "g" / "m4" / sampling / "seed0" / "metrics.csv") as f:
            want = [float(r["high_quality_pct"]) for r in csv.DictReader(f)]
        assert [float(r["high_quality_pct"]) for r in rows if r["label"] == label] == want
        secs = [float(r["seconds"]) for r in rows if r["label"] == label]
        assert all(0 < a <= b for a, b in zip(secs, secs[1:]))
    assert (tmp_path / "c.png").stat().st_size > 0
    assert cli.main(["train", "gmm-curves", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "no grid directory" in capsys.readouterr().err



def _result(run_dir):
    return json.loads((run_dir / "result.json").read_text())


def test_gmm_table_means_paired_differences_and_steps_against_the_run_files(tmp_path, capsys):
    import csv

    from smallgan import cli
    from smallgan.metrics.modes import mode_stats

    base = GMMConfig(**dict(TINY, steps=12, eval_every=4))
    run_grid(base, tmp_path / "g", modes=(4,), seeds=(0, 1), tensorboard=False, echo=lambda s: None)
    # large-batch GAN rows: a second grid with the GAN only
    run_grid(dataclasses.replace(base, batch_size=32), tmp_path / "b32", modes=(4,), seeds=(0, 1),
             samplings=("random",), tensorboard=False, echo=lambda s: None)
    assert not (tmp_path / "b32" / "m4" / "coreset").exists()
    # a run that finished before KL was recorded: the table recomputes it from samples.npz
    old = tmp_path / "g" / "m4" / "coreset" / "seed1"
    r = _result(old)
    with np.load(old / "samples.npz") as z:
        want_kl = mode_stats(z["samples"], z["means"], 0.05).kl_uniform
    assert r["kl_uniform"] == pytest.approx(want_kl)
    del r["kl_uniform"], r["kl_uniform_hq"]
    (old / "result.json").write_text(json.dumps(r))

    assert cli.main(["train", "gmm-table", str(tmp_path / "g"), str(tmp_path / "b32"),
                     "--out", str(tmp_path / "t")]) == 0
    with open(tmp_path / "t.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["GAN", "Small-GAN", "GAN (batch 32)"]
    res = {(s, seed): _result(tmp_path / "g" / "m4" / s / f"seed{seed}")
           for s in ("random", "coreset") for seed in (0, 1)}
    big = [_result(tmp_path / "b32" / "m4" / "random" / f"seed{seed}") for seed in (0, 1)]
    for method, runs in (("GAN", [res["random", 0], res["random", 1]]),
                         ("Small-GAN", [res["coreset", 0], res["coreset", 1]]),
                         ("GAN (batch 32)", big)):
        hq = [x["high_quality_pct"] for x in runs]
        assert float(rows[method]["high_quality_pct_mean"]) == pytest.approx(np.mean(hq))
        assert float(rows[method]["high_quality_pct_std"]) == pytest.approx(np.std(hq, ddof=1))
    kl = [res["coreset", 0]["kl_uniform"], want_kl]
    assert float(rows["Small-GAN"]["kl_uniform_mean"]) == pytest.approx(np.mean(kl))
    diffs = [res["coreset", s]["recovered_pct"] - res["random", s]["recovered_pct"] for s in (0, 1)]
    assert float(rows["Small-GAN"]["diff_recovered_pct_mean"]) == pytest.approx(np.mean(diffs))
    assert float(rows["Small-GAN"]["diff_recovered_pct_std"]) == pytest.approx(np.std(diffs, ddof=1))
    assert rows["GAN"]["n_pairs"] == "0" and rows["GAN (batch 32)"]["n_pairs"] == "2"
    assert "| 4 | GAN (batch 32) | 2 |" in (tmp_path / "t.md").read_text()
    assert (tmp_path / "t-samples.png").stat().st_size > 0

    # --at reads metrics.csv at that step
    assert cli.main(["train", "gmm-table", str(tmp_path / "g"), "--at", "8",
                     "--out", str(tmp_path / "t8")]) == 0
    with open(tmp_path / "t8.csv") as f:
        at8 = {r["method"]: r for r in csv.DictReader(f)}
    want = []
    for seed in (0, 1):
        with open(tmp_path / "g" / "m4" / "random" / f"seed{seed}" / "metrics.csv") as f:
            want += [float(r["high_quality_pct"]) for r in csv.DictReader(f) if r["step"] == "8"]
    assert len(want) == 2
    assert float(at8["GAN"]["high_quality_pct_mean"]) == pytest.approx(np.mean(want))
    assert not (tmp_path / "t8-samples.png").exists()  # only final samples are kept
    # a run that logged no KL along the way (it predates KL): the mean is the
    # other seed's value, and the table says it rests on 1 of 2 runs
    log = tmp_path / "g" / "m4" / "random" / "seed1" / "metrics.csv"
    with open(log) as f:
        logged = list(csv.DictReader(f))
    with open(log, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[k for k in logged[0] if not k.startswith("kl_")])
        w.writeheader()
        w.writerows({k: v for k, v in r.items() if not k.startswith("kl_")} for r in logged)
    assert cli.main(["train", "gmm-table", str(tmp_path / "g"), "--at", "8",
                     "--out", str(tmp_path / "t8")]) == 0
    with open(tmp_path / "g" / "m4" / "random" / "seed0" / "metrics.csv") as f:
        kl0 = next(float(r["kl_uniform"]) for r in csv.DictReader(f) if r["step"] == "8")
    gan_line = next(l for l in (tmp_path / "t8.md").read_text().splitlines() if "| GAN |" in l)
    assert f"| {kl0:.3f} ± 0.000 (1 of 2) |" in gan_line
    sg_line = next(l for l in (tmp_path / "t8.md").read_text().splitlines() if "| Small-GAN |" in l)
    assert "(1 of 2)" in sg_line.split("|")[-3]  # Δ KL: one pair has both values
    capsys.readouterr()
    # a step nobody was evaluated at, and a missing directory: one line, exit 2
    assert cli.main(["train", "gmm-table", str(tmp_path / "g"), "--at", "6",
                     "--out", str(tmp_path / "x")]) == 2
    assert "was not evaluated at step 6" in capsys.readouterr().err
    assert cli.main(["train", "gmm-table", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert "no grid directory" in capsys.readouterr().err


def test_curves_average_over_seeds_only_where_every_seed_has_reached_the_step():
    from smallgan.experiments.grid import mean_curve

    rows = [{"seed": 0, "step": 5, "seconds": 1.0, "hq": 10.0},
            {"seed": 0, "step": 10, "seconds": 2.0, "hq": 30.0},
            {"seed": 1, "step": 5, "seconds": 3.0, "hq": 20.0}]   # seed 1 not at step 10 yet
    assert mean_curve(rows, "step", "hq") == ([5], [15.0], [10.0], [20.0], 2)
    assert mean_curve(rows, "seconds", "hq") == ([2.0], [15.0], [10.0], [20.0], 2)
    assert mean_curve(rows[:2], "step", "hq") == ([5, 10], [10.0, 30.0], [10.0, 30.0], [10.0, 30.0], 1)
    assert mean_curve([], "step", "hq") is None


@pytest.mark.parametrize("sampling", ["random", "coreset"])
def test_a_shorter_run_is_the_first_part_of_a_longer_one(tmp_path, sampling):
    # The ablations run half the main grid's steps and are paired with the main
    # grid's evaluation at that step: this holds only if nothing in a run
    # (sample plots, checkpoints, log spacing, all scheduled by `steps`)
    # changes its trajectory.
    import csv

    logs = []
    for steps in (24, 48):
        cfg = GMMConfig(**dict(TINY, steps=steps, eval_every=8, sampling=sampling))
        run(cfg, tmp_path / f"s{steps}", tensorboard=False)
        with open(tmp_path / f"s{steps}" / "metrics.csv") as f:
            logs.append({r["step"]: r for r in csv.DictReader(f)})
    short, long = logs
    assert sorted(short, key=int) == ["8", "16", "24"]
    for step, row in short.items():
        assert row == long[step]
