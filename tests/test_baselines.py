"""The baselines beside the papers' processes: TT's LSR / CP patriarchs, the LSR knob, BAN
Table 4's DenseNet variants. Pure: plans and module construction, no training."""

import pytest

from jaxkd import analysis, losses, models, plans
from jaxkd.config import default_config


def _tt(**changes):
    c = default_config()
    c.method, c.generations = "tolerant_teacher", 2
    for key, value in changes.items():
        c.tolerant_teacher[key] = value
    return c


def test_label_smoothing_patriarch_is_smoothed_cross_entropy():
    plan = plans.build(_tt(patriarch_loss="label_smoothing", label_smoothing=0.2))
    gen0 = plan[0]
    assert (gen0.name, gen0.role, gen0.teacher) == ("gen0", "patriarch", None)
    assert (gen0.loss, dict(gen0.loss_params)) == ("cross_entropy", {"label_smoothing": 0.2})
    assert [(p.loss, dict(p.loss_params)) for p in plan[1:]] == [
        ("born_again", {"label_weight": 0.6})] * 2          # LSR-0.6 of [TT] Figure 2
    plans.validate_losses(plan, 100)


def test_confidence_penalty_patriarch():
    plan = plans.build(_tt(patriarch_loss="confidence_penalty", beta=0.3))
    assert (plan[0].role, plan[0].loss, dict(plan[0].loss_params)) == (
        "patriarch", "confidence_penalty", {"beta": 0.3})
    assert plan[1].teacher.phases == ("gen0",)
    plans.validate_losses(plan, 100)


@pytest.mark.parametrize("kind", ["label_smoothing", "confidence_penalty"])
def test_baseline_patriarchs_get_the_tt_ensemble(kind):
    """results.json's tt_ensemble averages the patriarch and the generations."""
    plan = plans.build(_tt(patriarch_loss=kind))
    names = [p.name for p in plan]
    specs = {s["name"]: [names.index(m) for m in s["members"]]
             for s in analysis.ensemble_specs(plan)}
    assert specs["tt_ensemble"] == [0, 1, 2]


def test_cross_entropy_patriarch_and_u_one_agree():
    by_name = plans.build(_tt(patriarch_loss="cross_entropy"))[0]
    by_u = plans.build(_tt(u=1.0))[0]
    assert (by_name.loss, by_name.loss_params) == (by_u.loss, by_u.loss_params) == (
        "cross_entropy", ())


def test_patriarch_fields_are_validated_by_name():
    with pytest.raises(ValueError, match="config.tolerant_teacher.patriarch_loss"):
        plans.build(_tt(patriarch_loss="lsr"))
    plan = plans.build(_tt(patriarch_loss="label_smoothing", label_smoothing=1.5))
    with pytest.raises(ValueError, match="config.tolerant_teacher.label_smoothing"):
        plans.validate_losses(plan, 100)
    plan = plans.build(_tt(patriarch_loss="confidence_penalty", beta=-1.0))
    with pytest.raises(ValueError, match="config.tolerant_teacher.beta"):
        plans.validate_losses(plan, 100)


def test_the_patriarch_losses_are_the_papers():
    """LSR: (1 - eps) CE + eps CE(uniform); CP: CE - beta H (registry entries used)."""
    import jax.numpy as jnp
    logits, labels = jnp.array([[2.0, 0.0, -1.0]]), jnp.array([0])
    log_p = logits - jnp.log(jnp.sum(jnp.exp(logits)))
    spec = losses.get("cross_entropy")
    lsr = spec.fn(losses.Outputs(logits), None, labels, None, label_smoothing=0.1)
    assert float(lsr[0]) == pytest.approx(
        float(-0.9 * log_p[0, 0] - 0.1 * jnp.mean(log_p[0])), rel=1e-5)
    cp = losses.get("confidence_penalty").fn(losses.Outputs(logits), None, labels, None,
                                             beta=0.5)
    entropy = -jnp.sum(jnp.exp(log_p) * log_p)
    assert float(cp[0]) == pytest.approx(float(-log_p[0, 0] - 0.5 * entropy), rel=1e-5)


# -- BAN Table 4: DenseNet-90-60 variants by model overrides ----------------------------


def test_densenet_architecture_is_overridable():
    defaults = models.model_overrides("densenet_90_60")
    assert (defaults["layers_per_block"], defaults["growth_rate"]) == (14, 60)
    assert (defaults["compression"], defaults["bottleneck"]) == (0.5, True)
    model = models.get_model("densenet_90_60", num_classes=100, layers_per_block=7,
                             growth_rate=120, stem_features=120)
    assert (model.layers_per_block, model.growth_rate, model.stem_features) == (7, 120, 120)


@pytest.mark.parametrize("override, match", [
    ({"layers_per_block": 0}, "layers_per_block"),
    ({"growth_rate": 2.5}, "growth_rate"),
    ({"compression": 0.0}, "compression"),
    ({"compression": 1.5}, "compression"),
    ({"stem_features": -1}, "stem_features"),
    ({"bottleneck": 1}, "bottleneck"),
])
def test_densenet_overrides_are_validated(override, match):
    with pytest.raises(ValueError, match=match):
        models.get_model("densenet_90_60", num_classes=100, **override)


def test_stem_features_sets_the_first_convolution():
    import jax
    import jax.numpy as jnp
    model = models.get_model("densenet_bc_16_8", num_classes=10, stem_features=24)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
    assert shapes["params"]["Conv_0"]["kernel"].shape == (3, 3, 3, 24)
