"""[RCO] Table 6's RL row: teacher and student trained together (`route_pair`)."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxkd import models, plans, run as run_lib
from tests.helpers import tiny_config, write_tiny_npz
from tests.test_run import _final_params


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


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


# -- new -------------------------------------------------------------------------------------

def test_route_pair_holds_both_networks_and_returns_both_logits():
    pair = models.get_model("route_pair", num_classes=3, teacher_model="resnet14",
                            student_model="resnet8",
                            student_overrides=(("zero_init_residual", True),))
    x = jnp.ones((2, 8, 8, 3))
    shapes = jax.eval_shape(lambda: pair.init(jax.random.key(0), x, train=False))
    assert set(shapes["params"]) == {"teacher", "student"}
    assert len([k for k in shapes["params"]["teacher"] if k.startswith("BasicBlock")]) == 6
    assert len([k for k in shapes["params"]["student"] if k.startswith("BasicBlock")]) == 3
    student, teacher = jax.eval_shape(
        lambda v: pair.apply(v, x, return_features=True), shapes)
    assert student.shape == teacher.shape == (2, 3)
    assert models.model_overrides("route_pair") == {
        "teacher_model": "resnet20", "student_model": "resnet8", "teacher_overrides": (),
        "student_overrides": ()}


@pytest.mark.parametrize("overrides, match", [
    ({"teacher_model": ""}, "route_pair: teacher_model"),
    ({"student_model": 3}, "route_pair: student_model"),
    ({"student_overrides": ("width",)}, "route_pair: student_overrides"),
])
def test_route_pair_overrides_are_checked(overrides, match):
    with pytest.raises(ValueError, match=match):
        models.get_model("route_pair", num_classes=3, **overrides)


def test_an_unknown_member_is_named_when_the_pair_is_built():
    pair = models.get_model("route_pair", num_classes=3, teacher_model="resnet21")
    with pytest.raises(ValueError, match="unknown model 'resnet21'"):
        jax.eval_shape(lambda: pair.init(jax.random.key(0), jnp.ones((1, 8, 8, 3))))
