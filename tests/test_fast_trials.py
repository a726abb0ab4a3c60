"""Fast trials (issue 20): a failed start does not lock its workdir, `data.test_per_class`,
and the smoke preset (`--config.smoke=True`) that shrinks any config to about a minute."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxkd import data, plans, presets
from jaxkd import run as run_lib
from jaxkd.config import default_config
from tests.helpers import tiny_config, write_tiny_npz
from tests.test_configs import PAPER_CONFIGS, load

REPO = pathlib.Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env.update(JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


# -- a failed start ----------------------------------------------------------------------
def test_a_start_that_failed_at_data_loading_resumes_with_the_fixed_command(tmp_path):
    npz = write_tiny_npz(tmp_path / "tiny.npz")
    workdir = tmp_path / "run"
    typo = tiny_config(npz, num_epochs=1, **{"data.path": str(tmp_path / "tinyy.npz")})
    with pytest.raises(ValueError, match="cannot be read"):
        run_lib.run(typo, workdir)
    assert json.loads((workdir / "config.json").read_text())["data"]["path"].endswith(
        "tinyy.npz")
    fixed = tiny_config(npz, num_epochs=1)           # no allow_config_change
    assert not fixed.allow_config_change
    results = run_lib.run(fixed, workdir)
    assert [p["name"] for p in results["phases"]] == ["baseline"]
    assert json.loads((workdir / "config.json").read_text()) == json.loads(fixed.to_json())
    # Once a phase has a checkpoint, a different config is refused again.
    with pytest.raises(run_lib.ConfigMismatchError, match="config.schedule.base_lr"):
        run_lib.run(tiny_config(npz, num_epochs=1, **{"schedule.base_lr": 0.2}), workdir)


def test_the_cli_resumes_a_failed_start_without_allow_config_change(tmp_path):
    npz = write_tiny_npz(tmp_path / "tiny.npz")
    cmd = [sys.executable, "-m", "jaxkd.main", "--config=tests/chaos/tiny_config.py",
           f"--workdir={tmp_path / 'run'}", "--config.generations=0",
           "--config.progress_bar=False", "--config.write_report=False"]
    bad = subprocess.run(cmd + [f"--config.data.path={tmp_path / 'missing.npz'}"],
                         cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    good = subprocess.run(cmd + [f"--config.data.path={npz}"], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=300)
    out = good.stdout + good.stderr
    assert good.returncode == 0, out[-3000:]
    assert "written by a different config" not in out
    assert "config.json replaced" in out


# -- test_per_class ----------------------------------------------------------------------
def test_test_per_class_is_a_stratified_subset_of_the_test_split():
    full = data.load_splits({"source": "sample"}, seed=0)
    sub = data.load_splits({"source": "sample", "test_per_class": 7}, seed=0)
    assert len(sub.test) == 7 * full.num_classes
    assert np.bincount(sub.test.labels, minlength=full.num_classes).tolist() == \
        [7] * full.num_classes
    assert len(sub.train) == len(full.train)          # train untouched
    again = data.load_splits({"source": "sample", "test_per_class": 7}, seed=0)
    np.testing.assert_array_equal(again.test.images, sub.test.images)
    # The subset is drawn from the test split, in its order.
    rows = {im.tobytes(): i for i, im in enumerate(full.test.images)}
    idx = [rows[im.tobytes()] for im in sub.test.images]
    assert idx == sorted(idx)


def test_test_per_class_is_validated_and_in_the_schema():
    assert default_config().data.test_per_class == 0
    with pytest.raises(ValueError, match="config.data.test_per_class must be an integer >= 0"):
        data.load_splits({"source": "sample", "test_per_class": -1}, seed=0)
    with pytest.raises(ValueError, match=r"config.data.test_per_class=100000 but class 0"):
        data.load_splits({"source": "sample", "test_per_class": 100000}, seed=0)


# -- smoke -------------------------------------------------------------------------------
def _structure(plan):
    return [(p.name, p.role, p.init, p.loss,
             None if p.teacher is None else (p.teacher.phases, p.teacher.select,
                                             bool(p.teacher.checkpoint)))
            for p in plan]


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_every_paper_config_validates_under_smoke_with_one_epoch_per_phase(name):
    config = load(name)
    plan = plans.validate(config)
    small = presets.smoke(config)
    assert small.smoke and not config.smoke           # a copy; the original is unchanged
    small_plan = plans.validate(small)
    assert _structure(small_plan) == _structure(plan)
    for phase in small_plan:
        models = {phase.model} | set(dict(phase.model_overrides).get(k) for k in (
            "teacher_model", "student_model") if phase.model == "route_pair")
        assert models <= {"resnet8", "route_pair"}, (phase.name, models)
        if phase.role == "teacher" and config.method == "rco":
            # one epoch per anchor: the students keep every anchor of the route
            assert phase.num_epochs == len(small_plan[-1].teacher.route or ()) or \
                phase.num_epochs == small.rco.teacher_epochs
        else:
            assert phase.num_epochs == 1, (phase.name, phase.num_epochs)
    assert small.data.source == "sample" and small.batch_size == 32
    assert presets.smoke(small).to_dict() == small.to_dict()   # idempotent: reruns resume


def test_smoke_runs_a_paper_config_through_the_cli_in_under_90_s(tmp_path):
    workdir = tmp_path / "smoke"
    cmd = [sys.executable, "-m", "jaxkd.main", "--config=configs/sd_resnet56.py",
           f"--workdir={workdir}", "--config.smoke=True", "--config.progress_bar=False"]
    t0 = time.time()
    done = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=300)
    wall = time.time() - t0
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert [p["name"] for p in results["phases"]] == ["cycle1", "cycle2", "cycle3", "cycle4"]
    written = json.loads((workdir / "config.json").read_text())
    assert written["smoke"] and written["model"] == "resnet8"
    assert written["data"]["test_per_class"] == presets.SMOKE_TEST_PER_CLASS
    assert (workdir / "report.md").is_file()
    assert wall < 90, f"smoke run took {wall:.0f} s"
    # The same command again resumes the same workdir (smoke is idempotent).
    again = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "finished earlier, skipped" in again.stdout + again.stderr


def test_smoke_flag_is_the_smoke_field():
    from jaxkd import cli
    argv = cli.dispatch(["jaxkd", "train", "--config=configs/sd_resnet56.py", "--smoke",
                         "--workdir=/tmp/x"])
    assert "--config.smoke=True" in argv and "--smoke" not in argv
