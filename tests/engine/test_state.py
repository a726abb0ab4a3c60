"""Training state and the optimiser: weight-decay masks, learning-rate scales, frozen
subtrees, grafted checkpoint subtrees and offset schedules."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxkd.config import default_config
from jaxkd.engine import state as state_lib
from flax import traverse_util


def test_weight_decay_mask_skips_batchnorm_and_bias():
    params = {"conv": {"kernel": jnp.ones((3, 3, 1, 2))}, "bn": {"scale": jnp.ones(2)},
              "dense": {"bias": jnp.ones(2)}}
    opt = default_config().optimizer
    opt.decay_mask = "no_bn_bias"
    opt.momentum = 0.0
    tx = state_lib.make_optimizer(opt, optax.constant_schedule(1.0))
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    assert float(jnp.abs(updates["conv"]["kernel"]).sum()) > 0
    assert float(jnp.abs(updates["bn"]["scale"]).sum()) == 0
    assert float(jnp.abs(updates["dense"]["bias"]).sum()) == 0


def test_lr_scales_multiply_one_subtree_learning_rate():
    params = {"teacher": {"w": jnp.ones(3)}, "student": {"w": jnp.ones(3)}}
    grads = {"teacher": {"w": jnp.ones(3)}, "student": {"w": jnp.ones(3)}}
    cfg = ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, nesterov=False,
                                         weight_decay=0.0, decay_mask="all", frozen=(),
                                         lr_scales={"teacher": 5.0}))
    tx = state_lib.make_optimizer(cfg, optax.constant_schedule(0.01))
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["student"]["w"], -0.01)
    np.testing.assert_allclose(updates["teacher"]["w"], -0.05)
    bad = cfg.copy_and_resolve_references()
    bad.lr_scales = {"techer": 5.0}
    with pytest.raises(ValueError, match="config.optimizer.lr_scales: 'techer'"):
        state_lib.make_optimizer(bad, optax.constant_schedule(0.01)).init(params)


# -- new -------------------------------------------------------------------------------------

PARAMS = {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 2))},
          "BasicBlock_0": {"Conv_1": {"kernel": jnp.ones((3, 3, 2, 2))},
                           "BatchNorm_0": {"scale": jnp.ones(2)}},
          "head": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}}


def _sgd(**changes):
    cfg = dict(name="sgd", momentum=0.9, nesterov=False, weight_decay=0.0, decay_mask="all",
               frozen=(), lr_scales={})
    return ml_collections.ConfigDict({**cfg, **changes})


def test_under_prefix_and_prefix_mask_name_subtrees():
    assert state_lib.under_prefix("BasicBlock_0/Conv_1/kernel", "BasicBlock_0")
    assert state_lib.under_prefix("BasicBlock_0/Conv_1/kernel", "/BasicBlock_0/Conv_1/")
    assert not state_lib.under_prefix("BasicBlock_01/Conv_1/kernel", "BasicBlock_0")
    assert state_lib.under_prefix("head/bias", "")
    mask = state_lib.prefix_mask(PARAMS, ("head", "BasicBlock_0/Conv_1"), "field")
    assert mask["head"] == {"kernel": True, "bias": True}
    assert mask["BasicBlock_0"] == {"Conv_1": {"kernel": True},
                                    "BatchNorm_0": {"scale": False}}
    assert mask["Conv_0"]["kernel"] is False
    with pytest.raises(ValueError, match=r"config.optimizer.frozen: 'haed' names no parameter"
                                         r".*\['BasicBlock_0', 'Conv_0', 'head'\]"):
        state_lib.prefix_mask(PARAMS, ("haed",), "config.optimizer.frozen")


def test_frozen_subtrees_get_no_update_no_decay_no_momentum():
    tx = state_lib.make_optimizer(_sgd(frozen=("head",), weight_decay=0.5),
                                  optax.constant_schedule(0.1))
    opt_state = tx.init(PARAMS)
    grads = jax.tree_util.tree_map(jnp.ones_like, PARAMS)
    for _ in range(2):
        updates, opt_state = tx.update(grads, opt_state, PARAMS)
    assert float(jnp.abs(updates["head"]["kernel"]).max()) == 0
    assert float(jnp.abs(updates["head"]["bias"]).max()) == 0
    assert float(jnp.abs(updates["Conv_0"]["kernel"]).min()) > 0
    with pytest.raises(ValueError, match="config.optimizer.frozen: 'nothere'"):
        state_lib.make_optimizer(_sgd(frozen=("nothere",)),
                                 optax.constant_schedule(0.1)).init(PARAMS)


def test_sgd_with_weight_decay_is_l2_in_the_gradient_by_hand():
    tx = state_lib.make_optimizer(_sgd(momentum=0.0, weight_decay=0.1),
                                  optax.constant_schedule(0.5))
    params = {"w": jnp.array([[2.0, -4.0]])}
    updates, _ = tx.update({"w": jnp.array([[1.0, 1.0]])}, tx.init(params), params)
    # -lr * (g + wd * w) = -0.5 * (1 + 0.1 * w)
    np.testing.assert_allclose(updates["w"], [[-0.6, -0.3]], rtol=1e-6)
    adamw = state_lib.make_optimizer(_sgd(name="adamw", weight_decay=0.0),
                                     optax.constant_schedule(0.5))
    step, _ = adamw.update({"w": jnp.array([[3.0, -0.2]])}, adamw.init(params), params)
    np.testing.assert_allclose(step["w"], [[-0.5, 0.5]], rtol=1e-4)   # first Adam step: sign


def test_graft_subtrees_copies_named_subtrees_and_names_mismatches():
    mine = {"params": {"a": {"kernel": jnp.zeros((2, 2))}, "head": {"bias": jnp.zeros(3)}},
            "batch_stats": {"a": {"mean": jnp.zeros(2)}}}
    source = {"params": {"a": {"kernel": jnp.ones((2, 2))}, "head": {"bias": jnp.full(3, 5.)}},
              "batch_stats": {"a": {"mean": jnp.full(2, 7.)}}}
    out = state_lib.graft_subtrees(mine, source, ("head",), where="ck")
    np.testing.assert_array_equal(out["params"]["head"]["bias"], 5.0)
    np.testing.assert_array_equal(out["params"]["a"]["kernel"], 0.0)     # not named: kept
    whole = state_lib.graft_subtrees(mine, source, (), where="ck")
    np.testing.assert_array_equal(whole["batch_stats"]["a"]["mean"], 7.0)
    with pytest.raises(ValueError, match="config.init.subtrees: 'tail' names no parameter"):
        state_lib.graft_subtrees(mine, source, ("tail",), where="ck")
    wide = {**source, "params": {**source["params"], "head": {"bias": jnp.ones(4)}}}
    with pytest.raises(ValueError, match=r"config.init.checkpoint ck: params 'head/bias' has "
                                         r"shape \(4,\), the model's is \(3,\)"):
        state_lib.graft_subtrees(mine, wide, ("head",), where="ck")
    extra = {**source, "params": {**source["params"], "head": {"bias": jnp.ones(3),
                                                               "kernel": jnp.ones((2, 3))}}}
    with pytest.raises(ValueError, match=r"params 'head/kernel' is only in the checkpoint"):
        state_lib.graft_subtrees(mine, extra, ("head",), where="ck")


def test_offset_schedule_starts_the_schedule_at_the_phase_start():
    schedule = lambda count: 1.0 + count                  # noqa: E731
    assert state_lib.offset_schedule(schedule, 0) is schedule
    shifted = state_lib.offset_schedule(schedule, 10)
    assert float(shifted(10)) == 1.0 and float(shifted(13)) == 4.0
    assert float(shifted(3)) == 1.0                       # clamped: never before the start


def test_create_train_state_and_variables_of():
    variables = {"params": {"w": jnp.ones(2)}, "batch_stats": {"m": jnp.zeros(2)}}
    tx = state_lib.make_optimizer(default_config().optimizer, optax.constant_schedule(0.1))
    state = state_lib.create_train_state(type("M", (), {"apply": None})(), variables, tx)
    assert int(state.step) == 0
    assert state_lib.variables_of(state) == {"params": variables["params"],
                                             "batch_stats": variables["batch_stats"]}


SHARED = ("Conv_0", "head")   # resnet8's first convolution and classifier


def _flat(tree):
    return traverse_util.flatten_dict(jax.device_get(tree), sep="/")


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_frozen_parameters_get_no_update_and_no_weight_decay(name):
    params = {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 2))},
              "block": {"Conv_0": {"kernel": jnp.ones((3, 3, 2, 2))}},
              "head": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}}
    opt = default_config().optimizer
    opt.name, opt.weight_decay, opt.frozen = name, 0.1, SHARED
    tx = state_lib.make_optimizer(opt, optax.constant_schedule(0.1))
    state, new = tx.init(params), params
    for i in range(3):
        grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, i + 1.0), new)
        updates, state = tx.update(grads, state, new)
        new = optax.apply_updates(new, updates)
    for k, (a, b) in {k: (v, _flat(new)[k]) for k, v in _flat(params).items()}.items():
        assert np.array_equal(a, b) == (k.split("/")[0] in SHARED), k
