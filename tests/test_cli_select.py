"""`smallgan select` and `smallgan config` command lines."""
from __future__ import annotations

import numpy as np

from smallgan.cli import main
from kcenter_reference import reference_kcenter


def test_select_writes_reference_picks(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(500, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "sub" / "picks.npy"
    assert main(["select", str(tmp_path / "x.npy"), "-k", "40", "--first", "3", "--out", str(out), "--radius"]) == 0
    picks = np.load(out)
    ref, radius, _ = reference_kcenter(x, 40, first=3)
    np.testing.assert_array_equal(picks, ref)
    assert f"radius {radius:.6g}" in capsys.readouterr().out
    assert not [p for p in out.parent.iterdir() if p.name != "picks.npy"]  # no temp file left


def test_select_prints_and_extends_selected(tmp_path, capsys):
    x = np.random.default_rng(1).normal(size=(60, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "sel.npy", np.array([0, 1]))
    assert main(["select", str(tmp_path / "x.npy"), "-k", "5", "--selected", str(tmp_path / "sel.npy")]) == 0
    printed = [int(v) for v in capsys.readouterr().out.split()]
    np.testing.assert_array_equal(printed, reference_kcenter(x, 5, selected=[0, 1])[0])


def test_select_errors_are_clear(tmp_path, capsys):
    assert main(["select", str(tmp_path / "missing.npy"), "-k", "3"]) == 2
    assert "does not exist" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    assert main(["select", str(tmp_path / "x.npy"), "-k", "9"]) == 2
    assert "k = 9 is larger than the number of points n = 4" in capsys.readouterr().err


def test_select_unreadable_or_foreign_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "points.csv").write_text("1,2\n3,4\n")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    (tmp_path / "dir.npy").mkdir()
    cases = [
        (["select", str(tmp_path / "points.csv"), "-k", "1"], "is not a readable .npy array"),
        (["select", str(tmp_path / "objects.npy"), "-k", "1"], "is not a readable .npy array"),
        (["select", str(tmp_path / "dir.npy"), "-k", "1"], "does not exist"),
        (["select", str(tmp_path / "x.npy"), "-k", "1", "--selected", str(tmp_path / "points.csv")],
         "--selected file"),
    ]
    for argv, match in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_config_command(capsys):
    assert main(["config"]) == 0
    assert "simd_level" in capsys.readouterr().out
