"""A checkpoint written by the oldest supported set restores under the installed one.

`tests/fixtures/ckpt_v1` was written by jax 0.10.2 / orbax 0.12.8
(`python -m tests.fixtures.make_checkpoint_fixture`); CI runs this file under that set and
under the newest one (constraints/newest-py312.txt), so a format change in either
direction shows here.
"""
import json

import jax
import numpy as np
import optax

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
