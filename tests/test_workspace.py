"""jaxkd.workspace.Workspace: fresh states and initialisation from a checkpoint, teachers,
final states, and a workspace rebuilt from a workdir.

[SD] Table 2 starts a student from the M#75 / M#150 snapshot of a baseline run
(`config.init.checkpoint`); [BAN] Table 5 students share their teacher's first convolution
and classifier, frozen (`config.init.subtrees` + `config.optimizer.frozen`); plain KD learns
from a checkpoint on disk (`config.method='kd'`, `config.teacher.checkpoint`). The rest
reads the finished snapshot-distillation run of `tests.shared_runs`.
"""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import traverse_util

from jaxkd import config as config_lib, plans, run as run_lib, schedules
from jaxkd.workspace import Workspace
from tests.helpers import tiny_config, write_tiny_npz
from tests.test_run import _assert_same_tree, _final_params


SHARED = ("Conv_0", "head")   # resnet8's first convolution and classifier


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


@pytest.fixture(scope="module")
def source(npz, tmp_path_factory):
    """A finished one-epoch baseline run: (its phase dir, its saved variables)."""
    workdir = tmp_path_factory.mktemp("source")
    run_lib.run(tiny_config(npz, num_epochs=1), workdir)
    phase = workdir / "phases" / "baseline"
    step = max(int(p.name) for p in (phase / "final").iterdir() if p.name.isdigit())
    with ocp.StandardCheckpointer() as ck:
        tree = ck.restore(phase / "final" / str(step) / "state")
    return phase, {"params": tree["params"], "batch_stats": tree["batch_stats"]}


def _flat(tree):
    return traverse_util.flatten_dict(jax.device_get(tree), sep="/")


def _first_state(config, workdir):
    ws = Workspace(config, workdir, plans.validate(config))
    phase = ws.plan[0]
    return ws.fresh_state(phase, ws.phase_model(phase))


# -- the first phase from a checkpoint ([SD] Table 2, [BAN] Table 5) --------------------


@pytest.mark.parametrize("where", ["phase", "final", "step", "anchor"])
def test_first_phase_starts_from_the_whole_checkpoint(npz, source, tmp_path, where):
    """[SD] Table 2: every param and BatchNorm statistic of the first step is the
    checkpoint's, whichever folder of it is named."""
    phase, saved = source
    step_dir = next(p for p in (phase / "final").iterdir() if p.name.isdigit())
    path = {"phase": phase, "final": phase / "final", "step": step_dir}.get(where)
    if where == "anchor":
        path = tmp_path / "anchors" / "1"
        shutil.copytree(step_dir, path)
    state = _first_state(tiny_config(npz, **{"init.checkpoint": str(path)}), tmp_path)
    for got, want in ((state.params, saved["params"]),
                      (state.batch_stats, saved["batch_stats"])):
        jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(got), want)


def test_shared_subtrees_start_from_the_checkpoint_and_stay_frozen(npz, source, tmp_path):
    """[BAN] Table 5: conv1 and the classifier come from the checkpoint and stay
    bit-identical through training (weight decay on), while every other parameter,
    randomly initialised, is trained."""
    phase, saved = source
    config = tiny_config(npz, num_epochs=1, **{"init.checkpoint": str(phase),
                                               "init.subtrees": SHARED,
                                               "optimizer.frozen": SHARED})
    assert config.optimizer.weight_decay > 0
    first = _flat(_first_state(config, tmp_path / "probe").params)
    want = _flat(saved["params"])
    shared = [k for k in first if k.split("/")[0] in SHARED]
    assert sorted(shared) == ["Conv_0/kernel", "head/bias", "head/kernel"]
    for k in first:
        same = np.array_equal(first[k], want[k])
        assert same == (k in shared), k
    run_lib.run(config, tmp_path / "run")
    final = _flat(Workspace.from_workdir(tmp_path / "run").final_state(0).params)
    for k in first:
        if k in shared:
            np.testing.assert_array_equal(final[k], want[k], err_msg=k)
        else:
            assert not np.array_equal(final[k], first[k]), f"{k} did not train"


def test_kd_learns_from_the_teacher_checkpoint(npz, source, tmp_path):
    """Plain KD: method 'kd' runs one phase whose teacher is the checkpoint's network
    (same variables, same logits)."""
    phase, saved = source
    config = tiny_config(npz, "kd", num_epochs=1, seed=1,
                         **{"teacher.checkpoint": str(phase), "teacher.model": "resnet8",
                            "loss.name": "kd"})
    results = run_lib.run(config, tmp_path)
    assert [p["name"] for p in results["phases"]] == ["student"]
    ws = Workspace.from_workdir(tmp_path)
    teacher = ws.teacher_of_ref(ws.plan[0].teacher)
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           jax.device_get(teacher.variables), saved)
    images = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
    want = ws.model("resnet8", ()).apply(saved, images, train=False)
    np.testing.assert_array_equal(teacher.model.apply(teacher.variables, images,
                                                      train=False), want)


def test_snapshot_student_runs_the_rest_of_the_schedule(npz, source, tmp_path):
    """[SD] Table 2: M#E continues the remaining epochs from the schedule's epoch E."""
    config = tiny_config(npz, **{"init.checkpoint": str(source[0]), "init.epoch": 1,
                                 "optimizer.momentum": 0.0, "optimizer.weight_decay": 0.0})
    ws = Workspace(config, tmp_path, plans.validate(config))
    phase = ws.plan[0]
    assert (phase.num_epochs, phase.schedule_start_epoch, phase.schedule_num_epochs) == (1, 1, 2)
    spe = ws.pipeline.steps_per_epoch
    lr = schedules.build(dict(phase.schedule), steps_per_epoch=spe, num_epochs=2)
    tx, params = ws.optimizer(phase, 0), {"w": jnp.zeros(3)}
    updates, _ = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
    np.testing.assert_allclose(-updates["w"], float(lr(spe)), rtol=1e-6)
    assert float(lr(spe)) < float(lr(0))


@pytest.mark.parametrize("subtrees", [(), ("head",)])
def test_shape_mismatch_names_the_field_and_the_path(source, tmp_path, subtrees):
    """A 5-class student cannot take the 4-class checkpoint's classifier."""
    npz = write_tiny_npz(tmp_path / "five.npz")
    arrays = dict(np.load(npz))
    arrays["class_names"] = np.array(["a", "b", "c", "d", "e"])
    np.savez(npz, **arrays)
    config = tiny_config(npz, **{"init.checkpoint": str(source[0]), "init.subtrees": subtrees})
    with pytest.raises(ValueError, match=r"config.init.checkpoint .*'head/.*shape") as info:
        run_lib.run(config, tmp_path / "w")
    assert "shape (4,), the model's is (5,)" in str(info.value)
    ckpt = tmp_path / "w" / "phases" / "baseline" / "ckpt"    # nothing was trained
    assert not ckpt.exists() or not any(p.name.isdigit() for p in ckpt.iterdir())


def test_another_architecture_shares_subtrees_but_not_the_whole_model(npz, source, tmp_path):
    """[BAN] Table 5 shape: a deeper student takes conv1 and the classifier of another
    network; taking its whole model is refused, naming a leaf only one side has."""
    phase, saved = source
    config = tiny_config(npz, model="resnet14", **{"init.checkpoint": str(phase),
                                                   "init.subtrees": SHARED})
    params, want = _flat(_first_state(config, tmp_path).params), _flat(saved["params"])
    for k in ("Conv_0/kernel", "head/kernel", "head/bias"):
        np.testing.assert_array_equal(params[k], want[k])
    config.init.subtrees = ()
    with pytest.raises(ValueError, match=r"config.init.checkpoint .*'BasicBlock_3/.*only in "
                                         r"the model"):
        _first_state(config, tmp_path)


def test_unknown_subtree_or_frozen_prefix_is_an_error(npz, source, tmp_path):
    config = tiny_config(npz, **{"init.checkpoint": str(source[0]), "init.subtrees": ("nope",)})
    with pytest.raises(ValueError, match="config.init.subtrees: 'nope'"):
        _first_state(config, tmp_path)
    config = tiny_config(npz, **{"optimizer.frozen": ("Conv_0/nope",)})
    with pytest.raises(ValueError, match="config.optimizer.frozen: 'Conv_0/nope'"):
        _first_state(config, tmp_path)


def test_fresh_phases_draw_their_own_init_and_repeat_it(npz, tmp_path):
    config = tiny_config(npz, "born_again", generations=1)
    ws = Workspace(config, tmp_path, plans.validate(config))
    gen0, gen1 = ws.plan
    a = _flat(ws.fresh_state(gen0, ws.phase_model(gen0)).params)
    b = _flat(ws.fresh_state(gen1, ws.phase_model(gen1)).params)
    again = _flat(ws.fresh_state(gen0, ws.phase_model(gen0)).params)
    assert all(np.array_equal(a[k], again[k]) for k in a)              # deterministic
    assert not np.array_equal(a["Conv_0/kernel"], b["Conv_0/kernel"])  # its own key
    assert int(ws.fresh_state(gen0, ws.phase_model(gen0)).step) == 0


# -- a workspace rebuilt from a finished run ---------------------------------------------
@pytest.fixture(scope="module")
def ws(sd_workdir):
    return Workspace.from_workdir(sd_workdir)


def test_from_workdir_reads_the_config_json(sd_workdir, ws):
    saved = json.loads((sd_workdir / "config.json").read_text())
    assert ws.config.to_dict() == config_lib.from_saved(saved).to_dict()
    assert ws.workdir == sd_workdir.absolute()
    assert [p.name for p in ws.plan] == ["cycle1", "cycle2"]
    assert (ws.index_of("cycle2"), ws.phase_dir("cycle1")) == (
        1, sd_workdir / "phases" / "cycle1")
    assert ws.image_shape == (32, 32, 3) and ws.splits.num_classes == 10


def test_from_workdir_with_another_config(sd_workdir):
    config = config_lib.from_saved(json.loads((sd_workdir / "config.json").read_text()))
    config.eval_batch_size = 100
    other = Workspace.from_workdir(sd_workdir, config)
    assert other.config.eval_batch_size == 100
    assert max(len(b["label"]) for b in other.pipeline.eval_batches("test")) == 100


def test_final_state_is_the_phases_final_checkpoint(sd_workdir, ws):
    for index, (name, step) in enumerate((("cycle1", 5), ("cycle2", 10))):
        state = ws.final_state(index)
        assert int(jax.device_get(state.step)) == step
        _assert_same_tree(jax.device_get(state.params), _final_params(sd_workdir, name))
    assert ws.final_state(1) is ws.final_state(1)                      # read once


def test_a_continued_phase_starts_from_its_predecessors_final_state(ws):
    cycle2 = ws.plan[1]
    state, start = ws.initial_state(1, ws.phase_model(cycle2))
    assert start == 5 and int(jax.device_get(state.step)) == 5
    _assert_same_tree(jax.device_get(state.params),
                      jax.device_get(ws.final_state(0).params))
    fresh, zero = ws.initial_state(0, ws.phase_model(ws.plan[0]))
    assert zero == 0 and int(jax.device_get(fresh.step)) == 0


def test_teacher_of_ref_of_a_phase_a_checkpoint_and_an_ensemble(sd_workdir, ws):
    one = ws.teacher_of_ref(plans.TeacherRef(phases=("cycle1",)))
    assert one.name == "resnet8"
    _assert_same_tree(jax.device_get(one.variables["params"]),
                      _final_params(sd_workdir, "cycle1"))
    on_disk = ws.teacher_of_ref(ws.checkpoint_ref(ws.plan[0]))
    _assert_same_tree(jax.device_get(on_disk.variables["params"]),
                      _final_params(sd_workdir, "cycle1"))
    both = ws.teacher_of_ref(plans.TeacherRef(phases=("cycle1", "cycle2")))
    assert isinstance(both.variables, list) and len(both.variables) == 2
    _assert_same_tree(jax.device_get(both.variables[1]["params"]),
                      _final_params(sd_workdir, "cycle2"))


def test_checkpoint_ref_names_the_phase_dir_or_the_given_checkpoint(sd_workdir, ws):
    ref = ws.checkpoint_ref(ws.plan[1])
    assert ref == plans.TeacherRef(checkpoint=str(sd_workdir / "phases" / "cycle2"),
                                   model="resnet8", model_overrides=())
    assert ws.checkpoint_ref(ws.plan[1], "/x/final").checkpoint == "/x/final"


def test_data_record_is_what_results_json_recorded(sd_workdir, ws):
    record = ws.data_record()
    assert record == json.loads((sd_workdir / "results.json").read_text())["data"]
    assert record["num_classes"] == 10 and record["image_shape"] == [32, 32, 3]
    assert record["class_names"][0] == "airplane" and len(record["mean"]) == 3
