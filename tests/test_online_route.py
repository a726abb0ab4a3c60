"""[RCO] Table 6's RL row: teacher and student trained together (`route_pair`)."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxkd import losses, models, plans, run as run_lib
from jaxkd.engine import state as state_lib
from tests.helpers import tiny_config, write_tiny_npz
from tests.test_run import _final_params


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def test_online_route_gradients_by_hand():
    """d/dt = softmax(t) - y (the KL term never reaches the teacher);
    d/dz = softmax(z) - y + lambda * tau * (softmax(z/tau) - softmax(t/tau))."""
    z = jnp.array([[1.0, -0.5, 0.3]])
    t = jnp.array([[0.2, 1.5, -1.0]])
    y = jnp.array([1])
    lam, tau = 0.7, 3.0
    loss = lambda z_, t_: losses.online_route_loss(z_, t_, y, kl_weight=lam,  # noqa: E731
                                                   temperature=tau)[0]
    gz, gt = jax.grad(loss, argnums=(0, 1))(z, t)
    onehot = jax.nn.one_hot(y, 3)
    np.testing.assert_allclose(gt, jax.nn.softmax(t) - onehot, atol=1e-6)
    want_z = (jax.nn.softmax(z) - onehot
              + lam * tau * (jax.nn.softmax(z / tau) - jax.nn.softmax(t / tau)))
    np.testing.assert_allclose(gz, want_z, atol=1e-6)


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


def test_route_pair_inference_is_the_student():
    pair = models.get_model("route_pair", num_classes=4, teacher_model="resnet14",
                            student_model="resnet8")
    x = jnp.ones((2, 32, 32, 3))
    v = pair.init(jax.random.key(0), x, train=False)
    student = models.get_model("resnet8", num_classes=4)
    sv = {c: v[c]["student"] for c in ("params", "batch_stats")}
    np.testing.assert_array_equal(pair.apply(v, x), student.apply(sv, x))


def test_online_rco_trains_teacher_and_student_together(npz, tmp_path):
    config = tiny_config(npz, "rco", **{"rco.mode": "online", "teacher.model": "resnet14",
                                        "rco.teacher_epochs": 0})
    config.optimizer.lr_scales = ml_collections.ConfigDict({"teacher": 2.0})
    (phase,) = plans.build(config)
    assert (phase.name, phase.model, phase.loss) == ("route", "route_pair", "online_route")
    results = run_lib.run(config, tmp_path)
    assert [p["name"] for p in results["phases"]] == ["route"]
    params = _final_params(tmp_path, "route")
    assert set(params) == {"teacher", "student"}
    init = models.get_model("route_pair", num_classes=4, teacher_model="resnet14",
                            student_model="resnet8").init(
        jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 1), 0),
        jnp.zeros((1, 32, 32, 3)), train=False)["params"]
    for role in ("teacher", "student"):               # both networks learned
        moved = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                                       params[role], init[role])
        assert max(jax.tree_util.tree_leaves(moved)) > 1e-4
    bad = tiny_config(npz, "rco", **{"rco.mode": "online", "rco.teacher_epochs": 3})
    with pytest.raises(ValueError, match="config.rco.teacher_epochs=3"):
        plans.build(bad)
    alone = tiny_config(npz, **{"loss.name": "online_route"})     # no pair to train
    with pytest.raises(ValueError, match="needs the model 'route_pair'"):
        plans.validate_losses(plans.build(alone), 4)
