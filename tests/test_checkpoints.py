"""Checkpoints: the digest manifests, the free-space check, a phase's final checkpoint, and
compatibility: a checkpoint written by the oldest supported set restores under the
installed one.

`tests/fixtures/ckpt_v1` was written by jax 0.10.2 / orbax 0.12.8
(`python -m tests.fixtures.make_checkpoint_fixture`); CI runs this file under that set and
under the newest one (constraints/newest-py312.txt), so a format change in either
direction shows here.
"""
import errno
import json
import logging
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxkd import checkpoints, models
from jaxkd.engine import sharding, state as state_lib
from tests.fixtures.make_checkpoint_fixture import FIXTURE, probe_images


def _model_and_target():
    model = models.get_model("resnet8", num_classes=4)
    target = jax.eval_shape(lambda: state_lib.init_variables(model, jax.random.key(0),
                                                             (32, 32, 3)))
    return model, target


def test_old_checkpoint_loads_as_a_teacher_with_the_same_logits():
    expected = json.loads((FIXTURE / "expected.json").read_text())
    assert expected["written_by"]["jax"] == "0.10.2"
    model, target = _model_and_target()
    variables = jax.device_get(checkpoints.load_variables(FIXTURE, target))
    logits = model.apply(variables, probe_images(), train=False)
    np.testing.assert_allclose(logits, expected["logits"], rtol=1e-5, atol=1e-5)


def test_old_checkpoint_restores_as_a_train_state():
    """The full TrainState (params, BatchNorm statistics, momentum, step) as on resume."""
    model, target = _model_and_target()
    tx = optax.chain(optax.add_decayed_weights(1e-4),
                     optax.sgd(optax.constant_schedule(0.05), momentum=0.9, nesterov=True))
    mesh = sharding.make_mesh(1)
    abstract = jax.eval_shape(lambda: state_lib.create_train_state(
        model, state_lib.init_variables(model, jax.random.key(0), (32, 32, 3)), tx))
    repl = sharding.replicated(mesh)
    abstract = jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), abstract)
    ckpts = checkpoints.PhaseCheckpoints(FIXTURE)
    try:
        state, meta = ckpts.restore_final(abstract)
    finally:
        ckpts.close()
    assert int(jax.device_get(state.step)) == 2 and meta["record"]["name"] == "baseline"
    momentum = jax.tree_util.tree_leaves(jax.device_get(state.opt_state))
    assert any(np.abs(np.asarray(m)).max() > 0 for m in momentum if np.ndim(m) > 1)
    teacher = checkpoints.load_variables(FIXTURE, target)
    jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(state.params),
                           jax.device_get(teacher["params"]))


# -- new: digest manifests -------------------------------------------------------------------

def _step(tmp_path):
    step = tmp_path / "7"
    (step / "state").mkdir(parents=True)
    (step / "state" / "array").write_bytes(b"0123456789")
    (step / "meta.json").write_text('{"step": 7}')
    return step


def test_manifest_records_every_file_and_verifies(tmp_path):
    step = _step(tmp_path)
    checkpoints.write_manifest(step)
    manifest = json.loads((step / checkpoints.MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["meta.json", "state/array"]
    assert manifest["files"]["state/array"]["size"] == 10
    assert manifest["algorithm"] == "sha256" and not list(step.glob(".digests.json.tmp*"))
    assert checkpoints.verify_manifest(step) is True


@pytest.mark.parametrize("damage, problem", [
    (lambda s: (s / "state" / "array").write_bytes(b"0123456780"),
     "its file state/array does not match its SHA-256"),
    (lambda s: (s / "state" / "array").write_bytes(b"012"),
     "its file state/array has 3 bytes instead of 10"),
    (lambda s: (s / "meta.json").unlink(), "its file meta.json is missing"),
    (lambda s: (s / "extra").write_text("x"), "its file extra is not in the manifest"),
    (lambda s: (s / checkpoints.MANIFEST).write_text("{not json"),
     "its digest manifest digests.json is damaged \\(JSONDecodeError\\)"),
    (lambda s: (s / checkpoints.MANIFEST).write_text('{"format": "x", "version": 1, '
                                                     '"algorithm": "sha256", "files": {}}'),
     "its digest manifest digests.json is damaged \\(unexpected fields or values\\)"),
], ids=["flipped", "truncated", "missing", "extra", "manifest_not_json", "manifest_fields"])
def test_a_damaged_step_is_named_with_its_first_bad_file(tmp_path, damage, problem):
    step = _step(tmp_path)
    checkpoints.write_manifest(step)
    damage(step)
    with pytest.raises(checkpoints.CheckpointError, match=rf"checkpoint .*7 is unreadable: "
                                                          rf"{problem}"):
        checkpoints.verify_manifest(step)


def test_a_step_without_manifest_restores_unverified_with_one_warning(tmp_path, caplog):
    step = _step(tmp_path)
    with caplog.at_level(logging.WARNING, logger="jaxkd.checkpoints"):
        assert checkpoints.verify_manifest(step) is False
        assert checkpoints.verify_manifest(step) is False
    assert caplog.text.count("restoring it unverified") == 1


# -- new: room for a save --------------------------------------------------------------------

def test_check_room_refuses_a_save_that_cannot_fit(tmp_path, monkeypatch):
    state = {"w": np.zeros((1024, 1024), np.float32)}              # 4 MiB
    free = {"free": 100 << 20}
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: type("U", (), {"free": free["free"]})())
    checkpoints.check_room(tmp_path / "not" / "yet", state)         # probes the parent
    free["free"] = 6 << 20                                          # < 1.5 * 4 MiB + 1 MiB
    with pytest.raises(OSError) as err:
        checkpoints.check_room(tmp_path / "phase", state)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "phase")
    assert "a checkpoint of about 7.0 MB (6.0 MB free)" in str(err.value)


# -- new: a phase's final checkpoint ---------------------------------------------------------

def test_final_checkpoint_is_written_once_verified_and_restored(tmp_path):
    state = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.asarray(3)}
    ckpts = checkpoints.PhaseCheckpoints(tmp_path / "phases" / "gen0", async_save=False)
    try:
        assert not ckpts.has_final()
        ckpts.save_final(state, {"step": 3, "record": {"name": "gen0"}})
        assert ckpts.has_final()
        assert (tmp_path / "phases/gen0/final/3" / checkpoints.MANIFEST).is_file()
        restored, meta = ckpts.restore_final(checkpoints.abstract_like(state))
        np.testing.assert_array_equal(restored["w"], state["w"])
        assert meta["record"] == {"name": "gen0"} and ckpts.final_meta()["step"] == 3
        with pytest.raises(checkpoints.CheckpointError, match="final checkpoint of .*gen0 "
                                                              "exists already"):
            ckpts.save_final(state, {"step": 4})
    finally:
        ckpts.close()


def test_loading_variables_from_nowhere_is_named(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="teacher checkpoint .* does not exist"):
        checkpoints.load_variables(tmp_path / "missing", {"params": {}})
    (tmp_path / "phase" / "final").mkdir(parents=True)
    with pytest.raises(checkpoints.CheckpointError, match="no checkpoint step folder under"):
        checkpoints.load_saved_variables(tmp_path / "phase")
