"""jaxkd.grid, the grid harness: runs (config, seed) pairs, skips finished ones, resumes,
aggregates. The `jaxkd grid` command: tests/cli/test_grid.py."""

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxkd import grid
from jaxkd import workdir as workdir_lib
from jaxkd.engine.writer import read_records

REPO = pathlib.Path(__file__).resolve().parents[1]


def _results(root, name, seed):
    return json.loads((grid.finished_workdir(root, name, seed, [0, 1])
                       / "results.json").read_text())


def _eval_losses(workdir):
    return [r["loss"] for _, r in read_records(workdir_lib.metrics_path(workdir))
            if r["kind"] == "eval"]


def test_each_config_trains_its_seeds_packed_each_in_its_own_workdir(grid_root):
    for name in ("base", "sd"):
        packed = grid_root / name / "seeds0-1"
        assert json.loads((packed / "config.json").read_text())["num_seeds"] == 2
        assert (packed / "results.json").exists()
        for seed in (0, 1):
            workdir = grid.finished_workdir(grid_root, name, seed, [0, 1])
            assert workdir == packed / "seeds" / str(seed)
            assert json.loads((workdir / "config.json").read_text())["seed"] == seed
    assert [p["name"] for p in _results(grid_root, "sd", 0)["phases"]] == [
        "cycle1", "cycle2"]


def test_summary_matches_hand_computed_mean_and_std(grid_root):
    summary = json.loads((grid_root / "summary.json").read_text())
    assert set(summary) == {"base", "sd"}
    for name in ("base", "sd"):
        runs = [_results(grid_root, name, s) for s in (0, 1)]
        assert summary[name]["runs"] == 2 and summary[name]["seeds"] == [0, 1]
        for i, phase in enumerate(runs[0]["phases"]):
            for key in ("best_top1", "last_top1"):
                values = [r["phases"][i][key] for r in runs]
                stat = summary[name]["phases"][phase["name"]][key]
                assert stat["n"] == 2
                np.testing.assert_allclose(stat["mean"], (values[0] + values[1]) / 2)
                np.testing.assert_allclose(stat["std"], abs(values[0] - values[1]) / np.sqrt(2))
        times = [sum(p["wall_time"] for p in r["phases"]) for r in runs]
        np.testing.assert_allclose(summary[name]["wall_time"]["mean"], np.mean(times))
    for ens in ("snapshot_ensemble", "sd_ensemble"):
        values = [_results(grid_root, "sd", s)["ensembles"][ens]["top1"] for s in (0, 1)]
        np.testing.assert_allclose(summary["sd"]["ensembles"][ens]["top1"]["mean"],
                                   np.mean(values))
        np.testing.assert_allclose(summary["sd"]["ensembles"][ens]["top1"]["std"],
                                   np.std(values, ddof=1))
    table = (grid_root / "summary.md").read_text()
    best = summary["base"]["phases"]["baseline"]["best_top1"]
    assert f"{best['mean'] * 100:.2f} ± {best['std'] * 100:.2f}" in table
    assert "snapshot_ensemble" in table and "Pending" not in table


def test_rerun_skips_finished_and_resumes_the_unfinished_one(grid_root, grid_file):
    """A removed results.json (a run killed before it wrote one) is redone, in a child
    process, from its finished phases; the other runs are not touched."""
    victim = grid.finished_workdir(grid_root, "sd", 1, [0, 1]) / "results.json"
    before = json.loads(victim.read_text())
    victim.unlink()
    base = grid.finished_workdir(grid_root, "base", 0, [0, 1]) / "results.json"
    untouched = base.stat().st_mtime_ns
    summary = grid.write_summary(grid_root, grid.load_grid(grid_file),
                                        [0, 1])
    assert summary["sd"]["pending"] == [1] and summary["sd"]["runs"] == 1
    assert "Pending or failed (1): sd/seed1" in (grid_root / "summary.md").read_text()

    out = subprocess.run(
        [sys.executable, "-m", "jaxkd.grid", f"--grid={grid_file}",
         f"--root={grid_root}", "--seeds=2", "--noreport"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 runs in 2 jobs (seeds packed), 1 finished earlier, 1 to run" in out.stdout
    assert "done  sd/seeds0-1" in out.stdout
    after = json.loads(victim.read_text())
    for a, b in zip(before["phases"], after["phases"]):   # finished phases were only read
        assert a["best_top1"] == b["best_top1"] and a["last_top1"] == b["last_top1"]
    assert base.stat().st_mtime_ns == untouched
    summary = json.loads((grid_root / "summary.json").read_text())
    assert summary["sd"]["runs"] == 2 and summary["sd"]["pending"] == []


def test_nopack_runs_each_seed_alone_and_it_counts_beside_packed_seeds(grid_root, grid_file,
                                                                       tmp_path):
    """--nopack_seeds: one workdir and child per (config, seed), equal to the packed lane
    to float32 rounding (tests/engine/test_packed.py); a summary takes a seed finished
    alone where its packed run is missing."""
    assert grid.run_grid(str(grid_file), tmp_path, [0, 1], only=["base"], report=False,
                         isolate=False, pack=False) == 0
    for seed in (0, 1):
        alone = tmp_path / "base" / f"seed{seed}"
        assert grid.finished_workdir(tmp_path, "base", seed, [0, 1]) == alone
        mine = json.loads((alone / "results.json").read_text())["phases"][0]
        ref = _results(grid_root, "base", seed)["phases"][0]
        assert abs(mine["last_top1"] - ref["last_top1"]) <= 1 / 32
        packed = grid.finished_workdir(grid_root, "base", seed, [0, 1])
        np.testing.assert_allclose(_eval_losses(alone), _eval_losses(packed), rtol=1e-2)
    assert grid.jobs_of({"a": 0, "b": 0}, [0, 1], pack=False) == [
        ("a", 0, 1), ("b", 0, 1), ("a", 1, 1), ("b", 1, 1)]
    with pytest.raises(ValueError, match="consecutive"):
        grid.jobs_of({"a": 0}, [0, 2], pack=True)


def test_a_failing_run_is_recorded_and_the_grid_goes_on(tmp_path, grid_file):
    bad = tmp_path / "bad_grid.py"
    bad.write_text(grid_file.read_text() + textwrap.dedent("""
        _good = get_grid
        def get_grid():
            grid = _good()
            grid["sd"].model = "no_such_model"
            return grid
    """))
    failures = grid.run_grid(str(bad), tmp_path / "root", [0], report=False,
                                    isolate=False)
    assert failures == 1
    summary = json.loads((tmp_path / "root" / "summary.json").read_text())
    assert summary["sd"]["pending"] == [0] and summary["base"]["runs"] == 1


def test_grid_names_must_be_directory_names(tmp_path):
    path = tmp_path / "g.py"
    path.write_text("from jaxkd.config import default_config\n"
                    "def get_grid():\n    return {'a/b': default_config()}\n")
    with pytest.raises(ValueError, match="not a directory name"):
        grid.load_grid(path)


def test_grid_files_of_the_repository_build_valid_plans():
    from jaxkd import plans
    paths = sorted((REPO / "grids").glob("*.py"))
    assert [p.name for p in paths] == ["cpu_cifar100.py", "cpu_converged.py",
                                       "cpu_converged_long.py", "gpu_cifar100.py"]
    for path in paths:
        for name, config in grid.load_grid(path).items():
            plans.validate(grid.seeded(config, 2))
    long = grid.load_grid(REPO / "grids" / "cpu_converged_long.py")
    assert {(c.num_epochs, c.data.train_per_class) for c in long.values()} == {(128, 25)}
    assert long["kd_resnet20"].rco.teacher_epochs == 128
