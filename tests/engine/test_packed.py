"""Packed seeds (`config.num_seeds`): N runs in one program equal N separate runs.

Tolerance: a packed step computes each run as its separate step does (on XLA:CPU the
runs one after the other inside one program, `map_runs`; elsewhere `jax.vmap`), but XLA
compiles the one program of N runs differently from the program of one run, and some
results differ in the last bit. Measured (jax 0.10.2, XLA:CPU, ResNet-8, batch 64, one
device): one step of 3 packed runs gives run 1 one BatchNorm scale element 1 ulp away
from its separate step, although the same run packed alone equals it exactly and the
runs are fenced by optimization barriers; on a shared 'data' axis the running means also
differ by an ulp. Float32 results therefore agree to rounding (about 1e-7 per step,
growing to about 1e-4 over the few dozen steps here), not bit for bit. Another run
diverging and a resume change nothing in a run's lane and are compared bit for bit; the
device count and compiled chunks change the programs and are compared to the same
tolerance.
"""

import json
import pathlib
import shutil

import jax
import numpy as np
import pytest

from jaxkd import run as run_lib
from jaxkd import workdir as workdir_lib
from jaxkd.engine import packed, sharding
from jaxkd.engine.writer import read_records
from jaxkd.workspace import Workspace
from tests.helpers import crash_after, tiny_config, write_tiny_npz

SEEDS = (0, 1, 2)
PARAM_ATOL = 1e-3
PLANS = {"ban": ("born_again", {"generations": 1}),
         "sd": ("snapshot_distillation", {"snapshot.cycles": 2, "num_epochs": 2})}


def config(npz, plan: str, **changes):
    method, fields = PLANS[plan]
    return tiny_config(npz, method, **{**fields, **changes})


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("packed") / "tiny.npz")


@pytest.fixture(scope="module")
def runs(npz, tmp_path_factory):
    """For each plan: a packed run of SEEDS and the separate runs of each seed."""
    root, out = tmp_path_factory.mktemp("runs"), {}
    for plan in PLANS:
        packed_dir = root / f"{plan}_packed"
        run_lib.run(config(npz, plan, num_seeds=len(SEEDS)), packed_dir)
        separate = {}
        for s in SEEDS:
            separate[s] = root / f"{plan}_seed{s}"
            run_lib.run(config(npz, plan, seed=s), separate[s])
        out[plan] = (packed_dir, separate)
    return out


def final_params(workdir: pathlib.Path) -> list:
    ws = Workspace.from_workdir(workdir)
    return [jax.device_get(ws.final_state(i).params) for i in range(len(ws.plan))]


def train_losses(workdir: pathlib.Path) -> list[float]:
    return [r["loss"] for _, r in read_records(workdir_lib.metrics_path(workdir))
            if r["kind"] == "train"]


def assert_trees_close(a, b, atol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("plan", list(PLANS))
def test_each_packed_seed_equals_its_separate_run(runs, plan):
    packed_dir, separate = runs[plan]
    results = json.loads(workdir_lib.results_path(packed_dir).read_text())
    assert results["seeds"] == list(SEEDS) and results["num_seeds"] == len(SEEDS)
    for i, s in enumerate(SEEDS):
        mine = workdir_lib.seed_workdir(packed_dir, s)
        alone = json.loads(workdir_lib.results_path(separate[s]).read_text())
        assert json.loads(workdir_lib.config_path(mine).read_text())["seed"] == s
        got = results["per_seed"][i]["phases"]
        assert [p["name"] for p in got] == [p["name"] for p in alone["phases"]]
        for p, q in zip(got, alone["phases"]):
            # one of the 32 test images may flip under float32 rounding
            assert abs(p["last_top1"] - q["last_top1"]) <= 1 / 32 + 1e-9
        np.testing.assert_allclose(train_losses(mine), train_losses(separate[s]),
                                   rtol=1e-2, atol=1e-3)
        for a, b in zip(final_params(mine), final_params(separate[s]), strict=True):
            assert_trees_close(a, b, PARAM_ATOL)


@pytest.mark.parametrize("plan", list(PLANS))
def test_results_hold_mean_sample_std_and_n_of_the_seeds(runs, plan):
    packed_dir, _ = runs[plan]
    results = json.loads(workdir_lib.results_path(packed_dir).read_text())
    for name, row in results["aggregate"]["phases"].items():
        values = [next(p for p in r["phases"] if p["name"] == name)["best_top1"]
                  for r in results["per_seed"]]
        assert row["best_top1"]["n"] == len(SEEDS)
        assert row["best_top1"]["mean"] == pytest.approx(np.mean(values))
        assert row["best_top1"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert not (packed_dir / "packed").exists() or not any((packed_dir / "packed").iterdir())


def test_a_diverging_seed_leaves_the_others_bit_identical(npz, runs, tmp_path, monkeypatch):
    """Seed 1 starts from NaN parameters: every one of its steps is non-finite and not
    applied; seeds 0 and 2 train exactly as in the packed run without the poison."""
    packed_dir, _ = runs["ban"]
    real = Workspace.fresh_state

    def poisoned(self, phase, model):
        state = real(self, phase, model)
        if self.config.seed == 1 and phase.name == self.plan[0].name:
            state = state.replace(params=jax.tree_util.tree_map(lambda x: x * np.nan,
                                                                state.params))
        return state

    monkeypatch.setattr(Workspace, "fresh_state", poisoned)
    results = run_lib.run(config(npz, "ban", num_seeds=3), tmp_path / "w")
    assert results["per_seed"][1]["phases"][0]["diverged"] is True
    assert not results["per_seed"][0]["phases"][0]["diverged"]
    for s in (0, 2):
        assert_trees_equal(final_params(workdir_lib.seed_workdir(tmp_path / "w", s)),
                           final_params(workdir_lib.seed_workdir(packed_dir, s)))


def test_a_killed_packed_run_resumes_bit_exactly(npz, runs, tmp_path, monkeypatch):
    packed_dir, _ = runs["sd"]
    cfg = config(npz, "sd", num_seeds=3, checkpoint_every_steps=2)
    crash_after(monkeypatch, 7)   # in the second cycle, after its checkpoint at step 2
    with pytest.raises(KeyboardInterrupt):
        run_lib.run(cfg, tmp_path / "w")
    assert any(workdir_lib.packed_dir(tmp_path / "w", "cycle2").glob("ckpt/*"))
    monkeypatch.undo()
    run_lib.run(cfg, tmp_path / "w")
    for s in SEEDS:
        mine, ref = (workdir_lib.seed_workdir(d, s) for d in (tmp_path / "w", packed_dir))
        assert_trees_equal(final_params(mine), final_params(ref))
        assert train_losses(mine) == train_losses(ref)


def test_one_device_equals_four(npz, runs, tmp_path):
    packed_dir, _ = runs["ban"]
    run_lib.run(config(npz, "ban", num_seeds=3, num_devices=1), tmp_path / "w")
    for s in SEEDS:
        assert_trees_close(final_params(workdir_lib.seed_workdir(tmp_path / "w", s)),
                           final_params(workdir_lib.seed_workdir(packed_dir, s)), PARAM_ATOL)


def test_two_seeds_on_four_devices_split_a_runs_axis(npz, runs, tmp_path, caplog):
    """2 seeds on 4 fake devices: a 2 x 2 ('runs', 'data') mesh, each run data-parallel
    over its own pair of devices, equals the separate runs (3 seeds share one axis)."""
    _, separate = runs["ban"]
    with caplog.at_level("INFO", logger="jaxkd.run"):
        run_lib.run(config(npz, "ban", num_seeds=2), tmp_path / "w")
    assert "2 packed seeds over a 2 runs x 2 data mesh of 4 devices" in caplog.text
    for s in SEEDS[:2]:
        mine = workdir_lib.seed_workdir(tmp_path / "w", s)
        assert_trees_close(final_params(mine), final_params(separate[s]), PARAM_ATOL)
        np.testing.assert_allclose(train_losses(mine), train_losses(separate[s]), rtol=1e-2,
                                   atol=1e-3)


@pytest.mark.parametrize("seeds, devices, processes, groups",
                         [(4, 4, 1, 4), (2, 4, 1, 2), (3, 4, 1, 1), (8, 4, 1, 4),
                          (1, 4, 1, 1), (4, 4, 2, 1)])
def test_runs_spread_over_the_largest_common_divisor_of_one_host(seeds, devices, processes,
                                                                 groups):
    assert sharding.runs_axis_size(seeds, devices, processes) == groups


def test_compiled_chunks_equal_one_step_per_call(npz, runs, tmp_path):
    packed_dir, _ = runs["sd"]
    run_lib.run(config(npz, "sd", num_seeds=3, steps_per_call=4), tmp_path / "w")
    for s in SEEDS:
        mine, ref = (workdir_lib.seed_workdir(d, s) for d in (tmp_path / "w", packed_dir))
        assert_trees_close(final_params(mine), final_params(ref), PARAM_ATOL)
        np.testing.assert_allclose(train_losses(mine), train_losses(ref), rtol=1e-2,
                                   atol=1e-3)


@pytest.mark.parametrize("runs_axis", [None, 2])
def test_stack_and_unstack_are_inverse(runs_axis):
    mesh = sharding.make_mesh(runs=runs_axis)
    trees = [{"a": np.full((2,), i, np.float32), "b": [np.int32(i)]} for i in range(4)]
    stacked = packed.stack(trees, mesh)
    assert stacked["a"].shape == (4, 2) and stacked["b"][0].shape == (4,)
    # Run-split over a ('runs', 'data') mesh: each device holds its group's 2 runs only.
    shard_rows = {s.data.shape[0] for s in stacked["a"].addressable_shards}
    assert shard_rows == ({2} if runs_axis else {4})
    for got, want in zip(packed.unstack(stacked, 4, mesh), trees):
        assert got["a"].sharding.is_fully_replicated
        assert_trees_equal(got, want)
