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


def test_config_command(capsys):
    assert main(["config"]) == 0
    assert "simd_level" in capsys.readouterr().out
