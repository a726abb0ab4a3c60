"""The jitted, sharded train/eval/predict steps."""

import jax
import jax.numpy as jnp
import numpy as np
import ml_collections
import optax
import pytest

from jaxkd import data, losses, models
from jaxkd.config import default_config
from jaxkd.engine import sharding, state as state_lib, step as step_lib

B, C = 8, 10


def _state(mesh, seed=0, model=None, opt=None):
    model = model or models.get_model("resnet8", num_classes=C)
    variables = state_lib.init_variables(model, jax.random.key(seed), (32, 32, 3))
    opt = opt or default_config().optimizer
    tx = state_lib.make_optimizer(opt, optax.constant_schedule(0.1))
    return model, sharding.replicate(state_lib.create_train_state(model, variables, tx), mesh)


def _batch(mesh, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(B, 32, 32, 3)).astype(np.float32)
    if nan:
        image[0, 0, 0, 0] = np.nan
    label = rng.integers(0, C, size=B).astype(np.int32)
    return jax.device_put({"image": image, "label": label}, sharding.batch_sharding(mesh))


def _kd_step(mesh, model, teacher_model):
    spec = losses.get("kd")
    return step_lib.make_train_step(model, spec, dict(spec.defaults), mesh=mesh,
                                    teacher_model=teacher_model)


def _teacher_vars(mesh, seed):
    _, t = _state(mesh, seed)
    return state_lib.variables_of(t)


def test_one_device_equals_four_devices():
    assert jax.device_count() >= 4, "conftest sets 4 fake CPU devices"
    results = []
    for n in (1, 4):
        mesh = sharding.make_mesh(n)
        model, state = _state(mesh)
        step = _kd_step(mesh, model, model)
        teacher = _teacher_vars(mesh, 1)
        for i in range(3):
            state, metrics = step(state, teacher, _batch(mesh, i), jax.random.key(0))
        results.append((jax.device_get(state.params), float(metrics["loss"])))
    (p1, l1), (p4, l4) = results
    assert l1 == pytest.approx(l4, rel=1e-5)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4,
                                                                   atol=2e-6), p1, p4)


def test_state_sharding_is_replicated_and_batch_split():
    mesh = sharding.make_mesh(4)
    model, state = _state(mesh)
    step = _kd_step(mesh, model, model)
    state, _ = step(state, _teacher_vars(mesh, 1), _batch(mesh), jax.random.key(0))
    leaf = jax.tree_util.tree_leaves(state.params)[0]
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4
    assert _batch(mesh)["image"].sharding.spec == jax.sharding.PartitionSpec("data")


def test_new_teacher_variables_do_not_recompile():
    mesh = sharding.make_mesh(1)
    model, state = _state(mesh)
    step = _kd_step(mesh, model, model)
    state, m1 = step(state, _teacher_vars(mesh, 1), _batch(mesh), jax.random.key(0))
    state, m2 = step(state, _teacher_vars(mesh, 2), _batch(mesh), jax.random.key(0))
    assert step._cache_size() == 1
    assert float(m1["loss"]) != float(m2["loss"])


def test_teacher_changes_the_loss_compared_with_ce():
    mesh = sharding.make_mesh(1)
    model, state = _state(mesh)
    ce = step_lib.make_train_step(model, losses.get("cross_entropy"), {}, mesh=mesh)
    kd = _kd_step(mesh, model, model)
    _, m_ce = ce(state, None, _batch(mesh), jax.random.key(0))
    _, state = _state(mesh)
    _, m_kd = kd(state, _teacher_vars(mesh, 1), _batch(mesh), jax.random.key(0))
    assert float(m_kd["loss"]) > float(m_ce["loss"])   # kd = CE + T^2 KL with KL > 0


def test_kd_step_metrics_carry_loss_terms_that_add_up():
    mesh = sharding.make_mesh(1)
    model, state = _state(mesh)
    _, m = _kd_step(mesh, model, model)(state, _teacher_vars(mesh, 1), _batch(mesh),
                                        jax.random.key(0))
    assert {"loss_ce", "loss_kd"} <= set(m)
    assert float(m["loss_kd"]) > 0
    np.testing.assert_allclose(float(m["loss_ce"]) + float(m["loss_kd"]), float(m["loss"]),
                               rtol=1e-5)
    ce = step_lib.make_train_step(model, losses.get("cross_entropy"), {}, mesh=mesh)
    _, state = _state(mesh)
    _, m_ce = ce(state, None, _batch(mesh), jax.random.key(0))
    assert not any(k.startswith("loss_") for k in m_ce)     # one term: `loss` alone
    # The CE part of kd is the plain CE step's loss (ce_weight 1, same params and batch).
    np.testing.assert_allclose(float(m["loss_ce"]), float(m_ce["loss"]), rtol=1e-5)


def test_nonfinite_step_is_not_applied():
    mesh = sharding.make_mesh(1)
    model, state = _state(mesh)
    before = jax.device_get(state.params)
    ce = step_lib.make_train_step(model, losses.get("cross_entropy"), {}, mesh=mesh)
    state, metrics = ce(state, None, _batch(mesh, nan=True), jax.random.key(0))
    assert not bool(metrics["finite"])
    assert int(state.step) == 1
    jax.tree_util.tree_map(np.testing.assert_array_equal, before, jax.device_get(state.params))


@pytest.mark.parametrize("lr, weight_decay", [(float("inf"), 0.0), (0.1, float("inf"))])
def test_nonfinite_update_is_not_applied(lr, weight_decay):
    """Finite loss and gradients, but an update that overflows (an infinite or huge
    learning rate or weight decay): the new parameters and momentum are non-finite, and
    the step must not land (before, only the loss and gradients were checked)."""
    mesh = sharding.make_mesh(1)
    opt = ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, nesterov=True,
                                         weight_decay=weight_decay, decay_mask="all"))
    model = models.get_model("resnet8", num_classes=C)
    variables = state_lib.init_variables(model, jax.random.key(0), (32, 32, 3))
    tx = state_lib.make_optimizer(opt, optax.constant_schedule(lr))
    state = sharding.replicate(state_lib.create_train_state(model, variables, tx), mesh)
    before = jax.device_get((state.params, state.opt_state))
    ce = step_lib.make_train_step(model, losses.get("cross_entropy"), {}, mesh=mesh)
    state, metrics = ce(state, None, _batch(mesh), jax.random.key(0))
    assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["grad_norm"]))
    assert not bool(metrics["finite"]) and int(state.step) == 1
    jax.tree_util.tree_map(np.testing.assert_array_equal, before,
                           jax.device_get((state.params, state.opt_state)))


def test_bf16_compute_keeps_float32_master_weights():
    mesh = sharding.make_mesh(1)
    model = models.get_model("resnet8", num_classes=C, dtype=jnp.bfloat16)
    model, state = _state(mesh, model=model)
    step = step_lib.make_train_step(model, losses.get("cross_entropy"), {}, mesh=mesh,
                                    dtype=jnp.bfloat16)
    state, metrics = step(state, None, _batch(mesh), jax.random.key(0))
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(state.params))
    assert np.isfinite(float(metrics["loss"]))


def test_eval_sums_count_only_unmasked():
    logits = jnp.array([[3.0, 1, 0], [0, 3, 1], [0, 1, 3], [9, 0, 0]])
    labels = jnp.array([0, 2, 2, 1])
    sums = step_lib.eval_sums(logits, labels, jnp.array([1, 1, 1, 0]))
    assert float(sums["count"]) == 3
    assert float(sums["correct1"]) == 2        # examples 0 and 2
    assert float(sums["correct5"]) == 3        # k = min(5, 3) covers every class


# -- new -------------------------------------------------------------------------------------

def test_eval_sums_by_hand_with_top5_over_more_classes():
    logits = jnp.array([[6.0, 5, 4, 3, 2, 1, 0], [0.0, 1, 2, 3, 4, 5, 6]])
    labels = jnp.array([4, 0])                  # rank 5 of row 0, rank 7 of row 1
    sums = step_lib.eval_sums(logits, labels, jnp.array([True, True]))
    assert (float(sums["count"]), float(sums["correct1"]), float(sums["correct5"])) == \
        (2.0, 0.0, 1.0)
    ce = losses.cross_entropy(logits, labels)
    np.testing.assert_allclose(float(sums["loss"]), float(ce.sum()), rtol=1e-6)
    masked = step_lib.eval_sums(logits, labels, jnp.array([False, True]))
    np.testing.assert_allclose(float(masked["loss"]), float(ce[1]), rtol=1e-6)
    assert float(masked["correct5"]) == 0


def test_eval_step_counts_the_real_examples_of_a_padded_batch():
    mesh = sharding.make_mesh(4)
    model, state = _state(mesh)
    batch = dict(_batch(mesh))
    batch["mask"] = jax.device_put(np.array([1, 1, 1, 1, 1, 0, 0, 0], bool),
                                   sharding.batch_sharding(mesh))
    sums = step_lib.make_eval_step(model, mesh=mesh)(state_lib.variables_of(state), batch)
    assert float(sums["count"]) == 5
    logits = model.apply(state_lib.variables_of(state), np.asarray(batch["image"]))
    want = np.sum(np.argmax(logits, -1)[:5] == np.asarray(batch["label"])[:5])
    assert float(sums["correct1"]) == want


def test_a_chunk_of_steps_trains_like_one_call_per_step():
    """make_train_chunk: k steps in one program on the batches `train_batches` yields;
    metrics stacked per step; the same training up to float reassociation."""
    cfg = default_config()
    splits = data.load_splits(cfg.data, seed=0)
    mesh = sharding.make_mesh(1)
    pipe = data.make_pipeline(splits, mesh=mesh, batch_size=16, eval_batch_size=16,
                              augment_cfg=cfg.data.augment, seed=0)
    net = models.get_model("resnet8", num_classes=splits.num_classes)
    tx = state_lib.make_optimizer(cfg.optimizer, optax.constant_schedule(0.05))

    def fresh():
        v = state_lib.init_variables(net, jax.random.key(0), splits.image_shape)
        return sharding.replicate(state_lib.create_train_state(net, v, tx), mesh)

    spec, key, k = losses.get("cross_entropy"), jax.random.key(3), 3
    one = step_lib.make_train_step(net, spec, {}, mesh=mesh)
    chunk = step_lib.make_train_chunk(net, spec, {}, mesh=mesh, batch_at=pipe.batch_at)
    state, losses_one = fresh(), []
    for batch in list(pipe.train_batches(2, start_step=1))[:k]:
        state, m = one(state, None, batch, key)
        losses_one.append(float(m["loss"]))
    chunked, metrics = chunk(fresh(), None, pipe.train_inputs(2), 2,
                             np.arange(1, 1 + k, dtype=np.int32), key)
    assert metrics["loss"].shape == (k,) and bool(np.all(metrics["finite"]))
    assert int(chunked.step) == int(state.step) == k
    np.testing.assert_allclose(np.asarray(metrics["loss"]), losses_one, rtol=1e-5)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4),
                           jax.device_get(chunked.params), jax.device_get(state.params))


def test_batch_at_is_the_batch_train_batches_yields():
    cfg = default_config()
    splits = data.load_splits(cfg.data, seed=0)
    pipe = data.make_pipeline(splits, mesh=sharding.make_mesh(0), batch_size=16,
                              eval_batch_size=16, augment_cfg=cfg.data.augment, seed=4)
    want = list(pipe.train_batches(1))[5]
    got = jax.jit(pipe.batch_at)(pipe.train_inputs(1), 1, 5)
    np.testing.assert_array_equal(np.asarray(got["label"]), np.asarray(want["label"]))
    np.testing.assert_allclose(np.asarray(got["image"]), np.asarray(want["image"]),
                               atol=1e-6)


# -- language models: tokens, per-token losses, the carried state -----------------------------
LM = dict(embed_dim=8, hidden_dim=8, num_layers=1, dropout=0.0, stream_batch=4)


def test_reset_carry_zeroes_the_carried_rows_only():
    stats = {"lstm": {"carry_0": {"c": jnp.ones((3, 2)), "h": jnp.ones((3, 2))}},
             "BatchNorm_0": {"mean": jnp.ones((3, 2))}}
    out = step_lib.reset_carry(stats, jnp.array([True, False, True]))
    np.testing.assert_array_equal(out["lstm"]["carry_0"]["h"], [[0, 0], [1, 1], [0, 0]])
    np.testing.assert_array_equal(out["BatchNorm_0"]["mean"], np.ones((3, 2)))
    assert step_lib.reset_carry(stats, None) is stats


def test_one_lm_step_is_sgd_on_the_per_token_ban_l_gradient():
    """[BAN] BAN+L on sequences: every token is an example. The loss is the mean over the
    B*T tokens of CE(s, y) + KL(t || s), whose gradient in the student's logits is
    (2 softmax(s) - onehot(y) - softmax(t)) / (B T); the tied softmax's bias gets the sum of
    that over the tokens, so one SGD step (no momentum, no decay) moves it by -lr times it.
    The teacher's targets are its outputs for the window after reading the context."""
    mesh = sharding.make_mesh(1)
    vocab, lr = 12, 0.5
    model = models.get_model("lstm_lm", num_classes=vocab, **LM)
    opt = ml_collections.ConfigDict(dict(name="sgd", momentum=0.0, nesterov=False,
                                         weight_decay=0.0, decay_mask="all", frozen=()))
    tx = state_lib.make_optimizer(opt, optax.constant_schedule(lr))
    variables = state_lib.init_variables(model, jax.random.key(0), (6,))
    state = state_lib.create_train_state(model, variables, tx)
    teacher = state_lib.init_variables(model, jax.random.key(1), (6,))
    teacher["params"]["head_bias"] = jnp.linspace(-1, 1, vocab)   # a distinct teacher
    rng = np.random.default_rng(0)
    batch = {"image": rng.integers(0, vocab, (4, 6)).astype(np.int32),
             "label": rng.integers(0, vocab, (4, 6)).astype(np.int32),
             "reset": np.ones((4,), bool),
             "context": rng.integers(0, vocab, (4, 6)).astype(np.int32)}
    spec = losses.get("ban_l")
    step = step_lib.make_train_step(model, spec, {}, mesh=mesh, teacher_model=model)
    s = model.apply(variables, batch["image"]).reshape(-1, vocab)
    # the teacher reads the context, then the window: its targets are the window's part
    read = np.concatenate([batch["context"], batch["image"]], 1)
    t = model.apply(teacher, read)[:, 6:].reshape(-1, vocab)
    without = model.apply(teacher, batch["image"]).reshape(-1, vocab)
    assert float(np.max(np.abs(t - without))) > 1e-5       # the context matters
    y = jax.nn.one_hot(batch["label"].reshape(-1), vocab)
    grad_logits = (2 * jax.nn.softmax(s) - y - jax.nn.softmax(t)) / s.shape[0]
    want = np.asarray(variables["params"]["head_bias"]) - lr * grad_logits.sum(0)
    new, metrics = step(state, teacher, batch, jax.random.key(0))   # donates `state`
    np.testing.assert_allclose(new.params["head_bias"], want, rtol=1e-5, atol=1e-7)
    ce = -jnp.mean(jnp.sum(y * jax.nn.log_softmax(s), -1))
    kl = jnp.mean(jnp.sum(jax.nn.softmax(t) * (jax.nn.log_softmax(t) - jax.nn.log_softmax(s)),
                          -1))
    np.testing.assert_allclose(float(metrics["loss"]), float(ce + kl), rtol=1e-5)
    assert new.batch_stats["carry_0"]["h"].shape == (4, 8)
    assert float(jnp.abs(new.batch_stats["carry_0"]["h"]).max()) > 0   # state carried on


def test_lm_eval_sums_count_every_token():
    mesh = sharding.make_mesh(1)
    model = models.get_model("lstm_lm", num_classes=12, **LM)
    variables = state_lib.init_variables(model, jax.random.key(0), (6,))
    variables["params"] = jax.tree_util.tree_map(jnp.zeros_like, variables["params"])
    batch = {"image": np.ones((2, 5), np.int32), "label": np.zeros((2, 5), np.int32),
             "mask": np.ones((2, 5), bool)}
    sums = step_lib.make_eval_step(model, mesh=mesh)(variables, batch)
    # zero weights: uniform next-token distribution, CE = log 12 per token
    assert float(sums["count"]) == 10
    np.testing.assert_allclose(float(sums["loss"]) / 10, np.log(12), rtol=1e-6)
