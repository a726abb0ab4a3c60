"""End to end: plans run on tiny data, phases chain their teachers, runs resume exactly."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxkd import checkpoints, plans, run as run_lib
from jaxkd.engine import sharding
from jaxkd.workspace import Workspace
from tests.helpers import crash_after, tiny_config, write_tiny_npz

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _final_params(workdir, phase):
    path = workdir / "phases" / phase / "final"
    step = max(int(p.name) for p in path.iterdir() if p.name.isdigit())
    import orbax.checkpoint as ocp
    with ocp.StandardCheckpointer() as ck:
        tree = ck.restore(path / str(step) / "state")
    return tree["params"]


def _has_final(workdir, phase):
    path = workdir / "phases" / phase / "final"
    return path.is_dir() and any(p.name.isdigit() for p in path.iterdir())


def _without_times(results):
    out = json.loads(json.dumps(results))
    out.pop("run_wall_time", None)
    out.pop("provenance", None)
    for p in out["phases"]:
        p.pop("wall_time", None)
        p.pop("history", None)
        p.pop("checkpoint", None)
    return out


def _assert_same_tree(a, b):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_born_again_three_generations(npz, tmp_path):
    config = tiny_config(npz, "born_again", generations=2)
    results = run_lib.run(config, tmp_path)
    assert [p["name"] for p in results["phases"]] == ["gen0", "gen1", "gen2"]
    assert set(results["ensembles"]) == {"bane"}
    assert results["ensembles"]["bane"]["members"] == ["gen1", "gen2"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [p["name"] for p in saved["phases"]] == ["gen0", "gen1", "gen2"]
    for p in saved["phases"]:
        assert 0.0 <= p["best_top1"] <= 1.0 and p["epochs"] == 2
    # Generation 1 learns from the teacher only (BAN): its loss is a KL, not gen0's CE.
    recs = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first = {ph: next(r["loss"] for r in recs if r["phase"] == ph and r["kind"] == "train")
             for ph in ("gen0", "gen1")}
    assert first["gen0"] > 1.0 > first["gen1"]      # CE at init ~ln 4; KL between two inits small
    assert (tmp_path / "tensorboard").is_dir()


def test_snapshot_distillation_swaps_teacher_at_cycle_boundaries(npz, tmp_path):
    config = tiny_config(npz, "snapshot_distillation", num_epochs=3,
                         **{"snapshot.cycles": 3, "schedule.base_lr": 0.05})
    results = run_lib.run(config, tmp_path)
    assert [p["name"] for p in results["phases"]] == ["cycle1", "cycle2", "cycle3"]
    assert {"snapshot_ensemble", "sd_ensemble"} <= set(results["ensembles"])
    assert results["ensembles"]["sd_ensemble"]["scales"] == [1.0, 2.0, 4.0]
    # Weights continue: cycle k's final step is k * steps_per_epoch.
    steps = [int(sorted((tmp_path / "phases" / f"cycle{k}" / "final").iterdir())[0].name)
             for k in (1, 2, 3)]
    assert steps == [4, 8, 12]
    # The teacher of cycle k is exactly the final snapshot of cycle k-1.
    runner = run_lib.Runner(Workspace(config, tmp_path, plans.validate(config)))
    for k in (1, 2):
        teacher = runner.teacher(k)
        _assert_same_tree(jax.device_get(teacher.variables["params"]),
                          _final_params(tmp_path, f"cycle{k}"))


def test_rco_one_stage_follows_anchors(npz, tmp_path):
    config = tiny_config(npz, "rco", **{"rco.anchor_every_epochs": 1, "rco.teacher_epochs": 2,
                                        "teacher.model": "resnet14",
                                        "rco.teacher_lr": 0.05})
    results = run_lib.run(config, tmp_path)
    assert [p["name"] for p in results["phases"]] == ["teacher", "stage1", "stage2"]
    anchors = sorted(p.name for p in (tmp_path / "phases/teacher/anchors").iterdir())
    assert anchors == ["1", "2"]
    runner = run_lib.Runner(Workspace(config, tmp_path, plans.validate(config)))
    t1 = runner.teacher(1)
    assert t1.name == "resnet14"
    anchor1 = checkpoints.load_variables(tmp_path / "phases/teacher/anchors/1",
                                         runner.ws.abstract_variables(t1.model))
    _assert_same_tree(jax.device_get(t1.variables), jax.device_get(anchor1))


def test_rco_greedy_picks_anchors_on_heldout(npz, tmp_path):
    config = tiny_config(npz, "rco", **{"rco.mode": "greedy", "rco.anchor_every_epochs": 1,
                                        "rco.teacher_epochs": 2, "data.heldout_size": 16})
    results = run_lib.run(config, tmp_path)
    route = json.loads((tmp_path / "rco_route.json").read_text())
    assert route["1"] == 0                       # the first stage learns from anchor 1
    assert route["2"] == 1                       # two anchors: the rule must advance to 2
    assert len(results["phases"]) == 3


def test_rco_greedy_route_decides_the_number_of_stages(npz, tmp_path):
    """Algorithm 2 multi-stage: with no r_ij above delta, stage 2 jumps to the last anchor
    (N) and the run ends there: 2 stages of a full schedule each, not one per anchor."""
    config = tiny_config(npz, "rco", num_epochs=1, **{
        "rco.mode": "greedy", "rco.anchor_every_epochs": 1, "rco.teacher_epochs": 3,
        "rco.delta": 1e9, "data.heldout_size": 16, "data.heldout_mode": "sample"})
    results = run_lib.run(config, tmp_path)
    assert [p["name"] for p in results["phases"]] == ["teacher", "stage1", "stage2"]
    assert json.loads((tmp_path / "rco_route.json").read_text()) == {"1": 0, "2": 2}
    assert not (tmp_path / "phases" / "stage3").exists()
    assert [p["epochs"] for p in results["phases"][1:]] == [1, 1]   # a full schedule each
    ws = Workspace.from_workdir(tmp_path)                           # analysis sees 3 phases
    assert [p.name for p in ws.plan] == ["teacher", "stage1", "stage2"]
    # 'sample': X' is drawn from the training set and stays in it (64 train images).
    assert len(ws.splits.train) == 64 and len(ws.splits.heldout) == 16
    again = run_lib.run(config, tmp_path)                           # a rerun trains nothing
    assert [p["name"] for p in again["phases"]] == ["teacher", "stage1", "stage2"]


def test_resume_mid_phase_equals_uninterrupted_run(npz, tmp_path, monkeypatch):
    config = tiny_config(npz, "born_again", generations=1, checkpoint_every_steps=3)
    full = run_lib.run(config, tmp_path / "full")
    with monkeypatch.context() as m:
        crash_after(m, 10)                       # gen0 has 8 steps: crash inside gen1
        with pytest.raises(KeyboardInterrupt):
            run_lib.run(config, tmp_path / "crashed")
    assert _has_final(tmp_path / "crashed", "gen0")
    assert not _has_final(tmp_path / "crashed", "gen1")
    resumed = run_lib.run(config, tmp_path / "crashed")
    assert _without_times(resumed) == _without_times(full)
    # Each invocation left its code version: one for the full run, two for the resumed one.
    assert len(full["provenance"]) == 1 and len(resumed["provenance"]) == 2
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=pathlib.Path(run_lib.__file__).parents[1]).stdout.strip()
    assert {r["git_commit"] for r in resumed["provenance"]} == {head or None}
    assert resumed["provenance"][0]["versions"]["jax"] == jax.__version__
    for phase in ("gen0", "gen1"):
        _assert_same_tree(_final_params(tmp_path / "full", phase),
                          _final_params(tmp_path / "crashed", phase))


def test_workdir_of_another_config_is_refused(npz, tmp_path):
    config = tiny_config(npz, num_epochs=1)
    run_lib.run(config, tmp_path)
    changed = tiny_config(npz, num_epochs=1, **{"schedule.base_lr": 0.2})
    with pytest.raises(run_lib.ConfigMismatchError, match=r"config.schedule.base_lr: 0.05 -> 0.2"):
        run_lib.run(changed, tmp_path)
    changed.allow_config_change = True
    run_lib.run(changed, tmp_path)               # explicit override: resumes (all done)


def test_extending_a_finished_process_with_more_generations(npz, tmp_path):
    run_lib.run(tiny_config(npz, "born_again", generations=1, num_epochs=1), tmp_path)
    before = _final_params(tmp_path, "gen1")
    results = run_lib.run(tiny_config(npz, "born_again", generations=2, num_epochs=1), tmp_path)
    assert [p["name"] for p in results["phases"]] == ["gen0", "gen1", "gen2"]
    _assert_same_tree(before, _final_params(tmp_path, "gen1"))   # never rewritten


def test_cli_killed_between_phases_resumes(npz, tmp_path):
    """SIGKILL the CLI right after the first generation is final; the rerun completes."""
    args = [sys.executable, "-m", "jaxkd.main", "--config=configs/quickstart.py",
            f"--workdir={tmp_path}", "--config.data.source=npz", f"--config.data.path={npz}",
            "--config.num_epochs=1", "--config.batch_size=16", "--config.eval_batch_size=16",
            "--config.progress_bar=False", "--config.write_report=False"]
    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(args, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not _has_final(tmp_path, "gen0") and proc.poll() is None:
        assert time.time() < deadline, "gen0 never finished"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "gen1" in done.stdout and "best top-1" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert [p["name"] for p in results["phases"]] == ["gen0", "gen1"]
    assert (tmp_path / "metrics.jsonl").exists() and (tmp_path / "config.json").exists()


def test_invalid_config_fails_before_compiling(npz, tmp_path):
    config = tiny_config(npz, **{"loss.name": "snapshot_distillation"})
    with pytest.raises(ValueError, match="needs a teacher"):
        run_lib.run(config, tmp_path)
    config = tiny_config(npz, "tolerant_teacher", **{"tolerant_teacher.k": 7})
    with pytest.raises(ValueError, match="config.tolerant_teacher.k"):
        run_lib.run(config, tmp_path / "b")


@pytest.mark.parametrize("batches, cores, requested, expected", [
    ((64, 250), 2, 0, 2), ((64, 250), 6, 0, 2), ((128, 1000), 6, 0, 4),
    ((100, 100), 8, 0, 5), ((64, 250), 1, 0, 1), ((7, 7), 2, 0, 1), ((64, 64), 2, 4, 4)])
def test_host_cpu_devices_divide_every_batch(batches, cores, requested, expected):
    assert sharding.host_cpu_devices(batches, cores, requested) == expected


def test_cli_splits_a_cpu_host_into_one_device_per_core(npz, tmp_path):
    """Without XLA_FLAGS the CLI gives the CPU backend one device per core (as many as
    divide the batch sizes); the run records that device count in its provenance."""
    args = [sys.executable, "-m", "jaxkd.main", "--config=configs/quickstart.py",
            f"--workdir={tmp_path}", "--config.data.source=npz", f"--config.data.path={npz}",
            "--config.num_epochs=1", "--config.generations=0", "--config.batch_size=16",
            "--config.eval_batch_size=16", "--config.progress_bar=False",
            "--config.write_report=False"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / "provenance.jsonl").read_text().splitlines()[-1])
    assert record["devices"] == sharding.host_cpu_devices(
        (16, 16), len(os.sched_getaffinity(0)))
    assert record["backend"] == "cpu"


def test_checkpoint_of_four_devices_loads_on_one(npz, tmp_path):
    """A workdir trained on 4 devices (a CPU host split per core, TPU cores) serves as a
    teacher checkpoint in a 1-device process: same values, no topology error."""
    run_lib.run(tiny_config(npz, num_epochs=1), tmp_path)
    expected = _final_params(tmp_path, "baseline")
    script = (
        "import sys, jax, numpy as np\n"
        "from jaxkd import checkpoints, models\n"
        "from jaxkd.engine import state\n"
        "assert jax.device_count() == 1\n"
        "m = models.get_model(sys.argv[2], num_classes=int(sys.argv[3]))\n"
        "abstract = jax.eval_shape(lambda: state.init_variables(\n"
        "    m, jax.random.key(0), tuple(map(int, sys.argv[4].split(',')))))\n"
        "v = checkpoints.load_variables(sys.argv[1], abstract)\n"
        "np.savez(sys.argv[5], *[np.asarray(x) for x in jax.tree_util.tree_leaves(v['params'])])\n")
    config = json.loads((tmp_path / "config.json").read_text())
    shape = np.load(npz)["x_train"].shape[1:]
    out = tmp_path / "loaded.npz"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "phases/baseline"),
                           config["model"], str(int(np.load(npz)["y_train"].max()) + 1),
                           ",".join(map(str, shape)), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Metadata file does not exist" not in done.stderr
    loaded = np.load(out)
    leaves = jax.tree_util.tree_leaves(expected)
    assert len(loaded.files) == len(leaves)
    for i, leaf in enumerate(leaves):
        np.testing.assert_array_equal(loaded[f"arr_{i}"], np.asarray(leaf))


def test_results_record_the_data_a_model_needs(npz, tmp_path):
    """Class names, mean/std and image shape go into results.json (`jaxkd export`)."""
    results = run_lib.run(tiny_config(npz, num_epochs=1), tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())["data"]
    ws = Workspace.from_workdir(tmp_path)
    assert saved == results["data"]
    assert saved["class_names"] == list(ws.splits.class_names) and saved["num_classes"] == 4
    np.testing.assert_allclose(saved["mean"], ws.splits.mean, rtol=1e-6)
    np.testing.assert_allclose(saved["std"], ws.splits.std, rtol=1e-6)
    assert saved["image_shape"] == [32, 32, 3]


# -- checks before anything is trained; a failed start --------------------------------


def test_missing_checkpoints_are_errors_naming_the_field(npz, tmp_path):
    bad = str(tmp_path / "nowhere")
    with pytest.raises(checkpoints.CheckpointError, match="config.init.checkpoint"):
        run_lib.run(tiny_config(npz, **{"init.checkpoint": bad}), tmp_path / "a")
    with pytest.raises(checkpoints.CheckpointError, match="config.teacher.checkpoint"):
        run_lib.run(tiny_config(npz, "kd", **{"teacher.checkpoint": bad, "loss.name": "kd"}),
                    tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _env() -> dict:
    env = dict(os.environ)
    env.update(JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


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
