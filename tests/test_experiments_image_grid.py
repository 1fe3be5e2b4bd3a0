"""``smallgan train image-grid``: a tiny grid end to end, --resume, and its statistics by hand."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from smallgan.cli import main
from smallgan.experiments.image_grid import (DEFAULT_VARIANTS, METRICS, paired, plan_grid,
                                             plot_curves, plot_samples, plot_seeds, sample_grids,
                                             summarize)
from smallgan.metrics.classifier import torch_threads


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):  # see test_metrics_classifier.py
        yield


def read(path: Path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def grid_args(out: Path, cache: Path, *more: str):
    return ["train", "image-grid", "--experiment", "stacked-mnist", "--variants", "GAN-64",
            "Small-GAN-64", "--steps", "2", "--eval-every", "1", "--n-train", "600",
            "--fid-fake", "100", "--fid-real", "100", "--projection-dim", "8", "--ngf", "8",
            "--ndf", "8", "--prefetch", "0", "--threads", "1", "--cache-dir", str(cache),
            "--no-tensorboard", "--out", str(out), *more]


def test_grid_runs_writes_tables_and_resumes(classifier_cache, tmp_path, capsys) -> None:
    cache = classifier_cache
    out = tmp_path / "grid"
    assert main(grid_args(out, cache, "--seeds", "2")) == 0
    printed = capsys.readouterr().out
    assert "GAN-64" in printed and "Small-GAN-64" in printed and "summary.csv" in printed

    runs = read(out / "runs.csv")
    assert [(r["variant"], r["seed"]) for r in runs] == [
        ("GAN-64", "0"), ("Small-GAN-64", "0"), ("GAN-64", "1"), ("Small-GAN-64", "1")]
    assert [(r["sampling"], r["batch_size"], r["embedding"]) for r in runs[:2]] == [
        ("random", "64", ""), ("coreset", "64", "raw")]
    for r in runs:  # every run: its own folder, the grid's shared settings, its variant's
        cfg = json.loads((out / r["variant"] / f"seed{r['seed']}" / "result.json").read_text())
        assert cfg["config"]["ngf"] == 8 and cfg["config"]["steps"] == 2
        assert cfg["config"]["seed"] == int(r["seed"])
        assert float(r["modes"]) == cfg["metrics"]["modes"] and r["n_fake"] == "100.0"

    # summary.csv and paired.csv against a computation from runs.csv
    summary = {r["variant"]: r for r in read(out / "summary.csv")}
    assert set(summary) == {"GAN-64", "Small-GAN-64"}
    for variant, row in summary.items():
        vals = [float(r["fd_mnist_cnn"]) for r in runs if r["variant"] == variant]
        mean = (vals[0] + vals[1]) / 2
        assert row["n_seeds"] == "2" and float(row["fd_mnist_cnn_mean"]) == pytest.approx(mean)
        assert float(row["fd_mnist_cnn_std"]) == pytest.approx(abs(vals[0] - vals[1]) / math.sqrt(2))
    diffs = {r["metric"]: r for r in read(out / "paired.csv")}
    assert set(diffs) == set(METRICS)
    d = [float(runs[i + 1]["kl"]) - float(runs[i]["kl"]) for i in (0, 2)]
    assert float(diffs["kl"]["diff_mean"]) == pytest.approx((d[0] + d[1]) / 2)
    assert diffs["kl"]["variant"] == "Small-GAN-64" and diffs["kl"]["n_pairs"] == "2"
    table = (out / "table.md").read_text()
    assert "| Small-GAN-64 | 2 | 2 |" in table and "Paired difference to GAN-64" in table

    # curves: every evaluation of every run (steps 1 and 2), read from metrics.csv
    curves = read(out / "curves.csv")
    assert sorted((c["variant"], c["seed"], c["step"]) for c in curves) == sorted(
        (v, s, st) for v in ("GAN-64", "Small-GAN-64") for s in "01" for st in "12")
    last = next(c for c in curves if (c["variant"], c["seed"], c["step"]) == ("GAN-64", "1", "2"))
    assert float(last["coverage"]) == pytest.approx(float(runs[2]["coverage"]))
    assert (out / "curves.png").stat().st_size > 10_000
    assert (out / "samples.png").stat().st_size > 10_000
    assert (out / "seeds.png").stat().st_size > 10_000

    # --resume: finished runs are read back, not rerun; a third seed runs
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/seed*/result.json")}
    assert len(stamps) == 4
    assert main(grid_args(out, cache, "--seeds", "3", "--resume")) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    runs3 = read(out / "runs.csv")
    assert runs3[:4] == runs and [r["seed"] for r in runs3[4:]] == ["2", "2"]
    assert read(out / "summary.csv")[0]["n_seeds"] == "3"
    capsys.readouterr()

    # without --resume, or with other settings: refused before any run
    assert main(grid_args(out, cache, "--seeds", "2")) == 2
    assert "already exists: pass resume=True (--resume)" in capsys.readouterr().err
    assert main(grid_args(out, cache, "--seeds", "2", "--resume", "--ndf", "4")) == 2
    err = capsys.readouterr().err
    assert "holds a run with other settings (ndf=8 there, 4 here)" in err
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # --report: trains nothing, tables from the finished runs only, the missing ones listed
    (out / "runs.csv").unlink()
    report = grid_args(out, cache, "--seeds", "4", "--report")
    report[report.index("Small-GAN-64") + 1:report.index("Small-GAN-64") + 1] = ["GAN-256"]
    assert main(report) == 0
    printed = capsys.readouterr().out
    assert "GAN-256             seed 0: not finished, left out of the report" in printed
    assert "Small-GAN-64        seed 3: not finished, left out of the report" in printed
    assert not (out / "GAN-256").exists() and not (out / "GAN-64" / "seed3").exists()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert read(out / "runs.csv") == runs3
    assert main(grid_args(tmp_path / "empty", cache, "--report")) == 1
    assert "no finished run of this grid" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()


def test_ablation_variants_split_small_gan_into_its_halves(classifier_cache, tmp_path) -> None:
    # the default grid is issue 14's four rows; the halves run only when named
    assert [v for v, *_ in plan_grid("mnist", tmp_path / "g", seeds=[0])] == [
        "GAN-64", "Small-GAN-64", "Small-GAN-64-cnn", "GAN-256"] == list(DEFAULT_VARIANTS)
    out = tmp_path / "abl"
    args = grid_args(out, classifier_cache, "--seeds", "1")
    i = args.index("--variants")
    args[i + 1:i + 3] = ["Small-GAN-64-prior", "Small-GAN-64-target"]
    assert main(args) == 0
    got = {}
    for variant in ("Small-GAN-64-prior", "Small-GAN-64-target"):
        res = json.loads((out / variant / "seed0" / "result.json").read_text())
        cfg = res["config"]
        got[variant] = (res["label"], cfg["sampling"], cfg["batch_size"], cfg["coreset_prior"],
                        cfg["coreset_target"], cfg["prior_factor"], cfg["target_factor"])
    assert got == {
        "Small-GAN-64-prior": ("Small-GAN (prior only)", "coreset", 64, True, False, 4, 8),
        "Small-GAN-64-target": ("Small-GAN (target only)", "coreset", 64, False, True, 4, 8)}
    assert [r["variant"] for r in read(out / "runs.csv")] == ["Small-GAN-64-prior",
                                                              "Small-GAN-64-target"]


def _rows():
    """A synthetic runs list: GAN-64 on seeds 0-2, Small-GAN-64 on 0 and 1,
    GAN-256 on seed 5 only (no pair); metric m of run (v, s) is base + k."""
    base = {("GAN-64", 0): 10.0, ("GAN-64", 1): 12.0, ("GAN-64", 2): 17.0,
            ("Small-GAN-64", 0): 11.0, ("Small-GAN-64", 1): 16.0, ("GAN-256", 5): 3.0}
    rows = []
    for (v, s), b in base.items():
        row = {"variant": v, "seed": s, "steps": 100}
        row.update({m: b + k for k, m in enumerate(METRICS)})
        rows.append(row)
    rows.append({"variant": "Small-GAN-64-cnn", "seed": 0, "steps": 100,
                 **{m: "" for m in METRICS}})  # a run without an evaluation
    return rows


def test_summary_and_paired_by_hand() -> None:
    rows = _rows()
    summary = summarize(rows[::-1])  # input order does not matter
    assert [r["variant"] for r in summary] == ["GAN-64", "Small-GAN-64", "GAN-256"]
    g64, sg, g256 = summary
    # GAN-64: 10, 12, 17 -> mean 13, sample var (9 + 1 + 16) / 2 = 13
    assert (g64["n_seeds"], g64["seeds"]) == (3, "2 1 0")
    assert g64["modes_mean"] == pytest.approx(13.0) and g64["modes_std"] == pytest.approx(math.sqrt(13))
    assert g64["kl_mean"] == pytest.approx(14.0) and g64["kl_std"] == pytest.approx(math.sqrt(13))
    # Small-GAN-64: 11, 16 -> mean 13.5, std 5 / sqrt 2; one seed -> std 0
    assert sg["coverage_mean"] == pytest.approx(13.5 + 7)
    assert sg["coverage_std"] == pytest.approx(5 / math.sqrt(2))
    assert (g256["n_seeds"], g256["fd_mnist_cnn_mean"], g256["fd_mnist_cnn_std"]) == (1, 5.0, 0.0)

    diffs = paired(rows)
    # only Small-GAN-64 shares seeds with GAN-64: 11 - 10 = 1 and 16 - 12 = 4
    assert {d["variant"] for d in diffs} == {"Small-GAN-64"}
    assert [d["metric"] for d in diffs] == list(METRICS)
    for d in diffs:
        assert (d["n_pairs"], d["seeds"], d["baseline"]) == (2, "0 1", "GAN-64")
        assert d["diff_mean"] == pytest.approx(2.5)
        assert d["diff_std"] == pytest.approx(3 / math.sqrt(2))
        assert (d["n_positive"], d["n_negative"]) == (2, 0)


def test_markdown_table_by_hand() -> None:
    from smallgan.experiments.image_grid import format_markdown

    summary = [{"variant": "GAN-64", "n_seeds": 3, "steps": 2000, "fd_mnist_cnn_mean": 55.0,
                "fd_mnist_cnn_std": 1.25, "coverage_mean": 0.4, "coverage_std": 0.01},
               {"variant": "GAN-256", "n_seeds": 3, "steps": 2000, "fd_mnist_cnn_mean": 47.5,
                "fd_mnist_cnn_std": 2.0, "coverage_mean": 0.5, "coverage_std": 0.02}]
    # GAN-256 - GAN-64 per seed: FD -8, -7, +1 (lower is better: 2 of 3 better);
    # coverage +0.1, +0.1, -0.05 (higher is better: 2 of 3)
    diffs = [{"variant": "GAN-256", "metric": "fd_mnist_cnn", "n_pairs": 3, "diff_mean": -14 / 3,
              "diff_std": 4.93, "n_positive": 1, "n_negative": 2},
             {"variant": "GAN-256", "metric": "coverage", "n_pairs": 3, "diff_mean": 0.05,
              "diff_std": 0.0866, "n_positive": 2, "n_negative": 1}]
    lines = format_markdown(summary, diffs).splitlines()
    assert lines[0] == "| variant | seeds | steps | FD[mnist-cnn] | coverage |"
    assert lines[2] == "| GAN-64 | 3 | 2000 | 55.0 ± 1.2 | 0.400 ± 0.010 |"
    assert lines[3] == "| GAN-256 | 3 | 2000 | 47.5 ± 2.0 | 0.500 ± 0.020 |"
    assert lines[-1] == "| GAN-256 | 3 | -4.7 ± 4.9 (2/3) | +0.050 ± 0.087 (2/3) |"


def test_curves_figure_without_modes_panel(tmp_path) -> None:
    rows = [{"variant": v, "seed": s, "step": st, **{m: float(st + s) for m in METRICS}}
            for v in ("GAN-64", "GAN-256") for s in (0, 1) for st in (100, 200)]
    path = plot_curves(rows, tmp_path / "c.png", modes=False, title="MNIST-5k")
    assert path.stat().st_size > 10_000


def test_bad_options(tmp_path, capsys) -> None:
    out = tmp_path / "g"
    assert main(["train", "image-grid", "--experiment", "mnist", "--n-train", "5",
                 "--out", str(out)]) == 2
    assert "--n-train applies to --experiment stacked-mnist only, not mnist" in capsys.readouterr().err
    assert main(["train", "image-grid", "--experiment", "mnist", "--seeds", "0",
                 "--out", str(out)]) == 2
    assert "--seeds must be >= 1, got 0" in capsys.readouterr().err
    assert main(["train", "image-grid", "--experiment", "mnist", "--ndf", "0",
                 "--out", str(out)]) == 2
    assert "ndf must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # each variant sets the sampling: no such flag
        main(["train", "image-grid", "--experiment", "mnist", "--sampling", "random",
              "--out", str(out)])
    assert not out.exists()
    with pytest.raises(ValueError, match=r"settings may not set \['batch_size'\]"):
        plan_grid("mnist", out, settings={"batch_size": 32})
    with pytest.raises(ValueError, match=r"variants must be among .* got \['GAN-32'\]"):
        plan_grid("mnist", out, variants=["GAN-32"])
    with pytest.raises(ValueError, match="experiment must be one of"):
        plan_grid("cifar10", out)


def test_sample_figure_picks_each_variants_first_seed_with_a_grid(tmp_path) -> None:
    import matplotlib.pyplot as plt

    def run(variant, seed, steps):
        d = tmp_path / variant / f"seed{seed}"
        (d / "samples").mkdir(parents=True)
        for step in steps:
            plt.imsave(d / "samples" / f"step_{step:07d}.png", [[0.0, 1.0], [1.0, 0.0]])
        return (variant, seed, d)

    runs = [run("GAN-256", 0, [5, 10]), run("GAN-64", 1, [10, 20]), run("GAN-64", 0, []),
            run("GAN-64", 2, [30]), run("Small-GAN-64", 0, [20, 100, 40])]
    grids = sample_grids(runs)
    assert list(grids) == ["GAN-64", "Small-GAN-64", "GAN-256"]  # VARIANTS order
    assert grids["GAN-64"] == (1, tmp_path / "GAN-64" / "seed1" / "samples" / "step_0000020.png")
    assert grids["Small-GAN-64"][1].name == "step_0000100.png"  # the last step, not the last file
    assert grids["GAN-256"][1].name == "step_0000010.png"
    out = plot_samples(runs, tmp_path / "samples.png", title="t")
    assert out == tmp_path / "samples.png" and out.stat().st_size > 5_000
    assert plot_samples([runs[2]], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_seed_figure(tmp_path) -> None:
    rows = [r for r in _rows() if r["variant"] != "Small-GAN-64-cnn"]
    assert plot_seeds(rows, tmp_path / "seeds.png", title="t").stat().st_size > 10_000
    assert plot_seeds(rows, tmp_path / "no-modes.png", modes=False).exists()
    # runs without an evaluation have nothing to plot
    empty = [r for r in _rows() if r["variant"] == "Small-GAN-64-cnn"]
    assert plot_seeds(empty, tmp_path / "empty.png") is None
    assert not (tmp_path / "empty.png").exists()


def test_paired_differences_by_hand() -> None:
    from smallgan.experiments.grid import format_paired, paired_differences

    # seeds as strings (read back from a CSV); "b" lacks seed 2; "c" shares no seed;
    # a run without an evaluation (empty first metric) is left out
    rows = [{"name": "a", "seed": "1", "fd": 10.0, "cs": 2.0},
            {"name": "a", "seed": "2", "fd": 12.0, "cs": 2.5},
            {"name": "b", "seed": "1", "fd": 7.0, "cs": 3.0},
            {"name": "b", "seed": "2", "fd": "", "cs": ""},
            {"name": "b", "seed": "3", "fd": 1.0, "cs": 1.0},
            {"name": "z", "seed": "1", "fd": 13.0, "cs": 1.0},
            {"name": "z", "seed": "2", "fd": 11.0, "cs": 2.5},
            {"name": "c", "seed": "9", "fd": 1.0, "cs": 1.0}]
    out = paired_differences(rows, "name", "a", ("fd", "cs"), order=("a", "z", "b"))
    assert [(r["name"], r["metric"]) for r in out] == [("z", "fd"), ("z", "cs"), ("b", "fd"),
                                                       ("b", "cs")]
    z_fd, z_cs, b_fd, _ = out
    # z - a: fd +3, -1 -> mean 1, sample std sqrt(8); cs -1, 0
    assert (z_fd["n_pairs"], z_fd["seeds"]) == (2, "1 2")
    assert z_fd["diff_mean"] == pytest.approx(1.0) and z_fd["diff_std"] == pytest.approx(8 ** 0.5)
    assert (z_fd["n_positive"], z_fd["n_negative"]) == (1, 1)
    assert (z_cs["n_positive"], z_cs["n_negative"]) == (0, 1)
    assert (b_fd["n_pairs"], b_fd["seeds"], b_fd["diff_mean"], b_fd["diff_std"]) == (1, "1", -3.0,
                                                                                        0.0)
    lines = format_paired(out, "name", "a", [("fd", "FD", "{:.1f}", False),
                                             ("cs", "CS", "{:.2f}", True)])
    assert lines[0].startswith("Paired difference to a of the same seed")
    assert lines[2] == "| name | pairs | Δ FD | Δ CS |"
    assert lines[4] == f"| z | 2 | +1.0 ± {8 ** 0.5:.1f} (1/2) | -0.50 ± {0.5 ** 0.5:.2f} (0/2) |"
    assert lines[5] == "| b | 1 | -3.0 ± 0.0 (1/1) | +1.00 ± 0.00 (1/1) |"
    assert format_paired([], "name", "a", []) == []
