"""The registry of losses by name (`jaxkd.losses.registry`): names, defaults under jit,
values against the formulas, config-field errors and the logged loss terms."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import losses
from tests.losses.reference import (LABELS, LOGITS, TEACHER, np_ce, np_kl, np_log_softmax,
                                    np_softmax)


# ------------------------------------------------------------------------------------------
# Registry.
# ------------------------------------------------------------------------------------------

REQUIRED = {"tolerant_teacher": {"u": 0.6}}


def _outputs(seed, batch=6, num_classes=10, dim=5):
    rng = np.random.default_rng(seed)
    return losses.Outputs(rng.normal(size=(batch, num_classes)).astype(np.float32),
                          rng.normal(size=(batch, dim)).astype(np.float32))


def test_package_reexports_the_functions_and_the_registry():
    from jaxkd.losses import functions, registry
    for name in losses.__all__:
        value = getattr(losses, name)
        assert value is getattr(functions, name, None) or value is getattr(registry, name, None)
    assert set(losses.__all__) >= {"kl_divergence", "distillation_kl", "kd_loss", "get",
                                   "names", "Outputs", "LossSpec", "LOSSES"}


def test_registry_names():
    assert set(losses.names()) == {
        "cross_entropy", "confidence_penalty", "tolerant_teacher", "born_again", "ban_l",
        "cwtm", "dkpp", "snapshot_distillation", "kd", "hint", "online_route"}
    with pytest.raises(ValueError, match="kd.*got 'nope'"):
        losses.get("nope")


# 'online_route' trains its teacher too (the route_pair's second output): its gradients
# are checked by hand in tests/losses/test_functions.py.
@pytest.mark.parametrize("name", [n for n in losses.names() if n != "online_route"])
def test_registry_runs_under_jit_with_defaults(name):
    spec = losses.get(name)
    spec.validate(REQUIRED.get(name, {}), num_classes=10)
    params = spec.resolve(REQUIRED.get(name, {}))
    student, teacher = _outputs(0), _outputs(1)
    labels = np.arange(6, dtype=np.int32)

    def total(z_student, z_teacher):
        t = teacher._replace(logits=z_teacher) if spec.needs_teacher else None
        out = spec.fn(student._replace(logits=z_student), t, labels, jax.random.key(0),
                      **params)
        return jnp.sum(out), out

    grad_fn = jax.jit(jax.grad(total, argnums=(0, 1), has_aux=True))
    (grad_student, grad_teacher), out = grad_fn(student.logits, teacher.logits)
    assert out.shape == (6,) and out.dtype == jnp.float32 and np.all(np.isfinite(out))
    assert np.all(np.isfinite(grad_student)) and np.any(grad_student != 0)
    np.testing.assert_array_equal(grad_teacher, 0.0)


def test_registry_values_match_formulas():
    s, t = losses.Outputs(LOGITS, LOGITS[:, :3]), losses.Outputs(TEACHER, TEACHER[:, :3])
    rng = jax.random.key(0)

    def run(name, **params):
        spec = losses.get(name)
        return jax.jit(lambda a, b: spec.fn(a, b, LABELS, rng, **spec.resolve(params)))(s, t)

    ce, kl = np_ce(LOGITS, LABELS), np_kl(TEACHER, LOGITS)
    np.testing.assert_allclose(run("ban_l"), ce + kl, rtol=1e-5)
    np.testing.assert_allclose(run("born_again"), kl, rtol=1e-5)
    np.testing.assert_allclose(run("kd"), ce + 16 * np_kl(TEACHER, LOGITS, 4, 4), rtol=1e-5)
    np.testing.assert_allclose(run("kd", scale_by_t2=False, ce_weight=0.5, temperature=2.0),
                               0.5 * ce + np_kl(TEACHER, LOGITS, 2, 2), rtol=1e-5)
    p = np_softmax(LOGITS)
    np.testing.assert_allclose(run("confidence_penalty", beta=0.3),
                               ce + 0.3 * (p * np.log(p)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(run("tolerant_teacher", u=0.6, k=3),
                               run("tolerant_teacher", eta=0.6 * 3 / (2 + 0.6 * 3), k=3),
                               rtol=1e-6)
    hint = ((LOGITS[:, :3] - TEACHER[:, :3]) ** 2).mean(-1)
    np.testing.assert_allclose(run("hint", hint_weight=2.0), ce + 2 * hint, rtol=1e-5)
    dkpp = jax.jit(lambda a, b: (losses.get("dkpp").fn(a, b, LABELS, rng),
                                 losses.dkpp_targets(b.logits, rng)))
    out, targets = dkpp(s, t)
    targets = np.asarray(targets, np.float64)
    expected = (targets * (np.log(targets) - np_log_softmax(LOGITS))).sum(-1)
    np.testing.assert_allclose(out, expected, rtol=1e-4)


@pytest.mark.parametrize("name,params,match", [
    ("snapshot_distillation", {"temperature": -1}, r"config\.loss\.temperature .* got -1"),
    ("kd", {"temperature": 0.0}, r"config\.loss\.temperature must be > 0, got 0.0"),
    ("kd", {"scale_by_t2": 1}, r"config\.loss\.scale_by_t2 must be a bool"),
    ("kd", {"kl_weight": -0.5}, r"config\.loss\.kl_weight .* got -0.5"),
    ("kd", {"tau": 5.0}, r"config\.loss\.tau .*allowed: \['ce_weight', 'kl_weight', "
                         r"'scale_by_t2', 'temperature'\]"),
    ("born_again", {"label_weight": 1.5}, r"config\.loss\.label_weight .* got 1.5"),
    ("born_again", {"temperature": "2"}, r"config\.loss\.temperature must be a real number"),
    ("cross_entropy", {"label_smoothing": 1.0}, r"config\.loss\.label_smoothing .* got 1.0"),
    ("confidence_penalty", {"beta": -0.1}, r"config\.loss\.beta .* got -0.1"),
    ("tolerant_teacher", {"u": 0.6, "k": 11}, r"config\.loss\.k must be <= .*10.*got 11"),
    ("tolerant_teacher", {"u": 0.6, "k": 1}, r"config\.loss\.k must be >= 2, got 1"),
    ("tolerant_teacher", {"u": 0.6, "k": 2.5}, r"config\.loss\.k must be an integer"),
    ("tolerant_teacher", {"eta": 0.0}, r"config\.loss\.eta .* got 0.0"),
    ("tolerant_teacher", {"u": 1.2}, r"config\.loss\.u .* got 1.2"),
    ("tolerant_teacher", {}, r"exactly one of config\.loss\.eta and config\.loss\.u"),
    ("tolerant_teacher", {"u": 0.6, "eta": 0.4}, r"exactly one of config\.loss\.eta"),
    ("cwtm", {"temperature": 2.0}, r"config\.loss\.temperature .*allowed: \[\]"),
    ("hint", {"hint_weight": -1.0}, r"config\.loss\.hint_weight .* got -1.0"),
])
def test_registry_validate_errors(name, params, match):
    with pytest.raises(ValueError, match=match):
        losses.get(name).validate(params, num_classes=10)


def test_registry_validate_accepts_good_params():
    losses.get("tolerant_teacher").validate({"u": 0.7, "k": 10}, num_classes=10)
    losses.get("kd").validate({"temperature": 5, "kl_weight": 0.5}, num_classes=100)
    losses.get("born_again").validate({"label_weight": 0.6}, num_classes=100)


def test_hint_needs_features():
    spec = losses.get("hint")
    with pytest.raises(ValueError, match="features"):
        spec.fn(losses.Outputs(LOGITS), losses.Outputs(TEACHER), LABELS, jax.random.key(0))
    with pytest.raises(ValueError, match="teacher"):
        losses.get("kd").fn(losses.Outputs(LOGITS), None, LABELS, jax.random.key(0))


# ------------------------------------------------------------------------------------------
# The weighted parts of two-term losses (logged as loss_<term>; issue 20).
# ------------------------------------------------------------------------------------------

FEATURES = np.array([[0.5, 1.0, -1.0, 2.0], [1.0, 0.0, 0.0, 3.0], [0.0, 2.0, 1.0, -1.0]],
                    np.float32)


def _np_tsd(x, k):
    top = -np.sort(-np_softmax(x), axis=-1)[:, :k]
    return top[:, 0] - top[:, 1:].mean(-1)


@pytest.mark.parametrize("name,params,expected", [
    ("kd", dict(ce_weight=0.3, kl_weight=0.7, temperature=4.0, scale_by_t2=True),
     lambda: {"ce": 0.3 * np_ce(LOGITS, LABELS),
              "kd": 0.7 * 16 * np_kl(TEACHER, LOGITS, 4.0, 4.0)}),
    ("kd", dict(temperature=2.0, scale_by_t2=False),
     lambda: {"ce": np_ce(LOGITS, LABELS), "kd": np_kl(TEACHER, LOGITS, 2.0, 2.0)}),
    ("born_again", dict(label_weight=0.4, temperature=2.0),
     lambda: {"ce": 0.4 * np_ce(LOGITS, LABELS), "kd": 0.6 * np_kl(TEACHER, LOGITS, 2, 2)}),
    ("snapshot_distillation", dict(temperature=3.0),
     lambda: {"ce": (1 + 1 / 3) * np_ce(LOGITS, LABELS), "kd": np_kl(TEACHER, LOGITS, 3.0)}),
    ("tolerant_teacher", dict(eta=0.6, k=3),
     lambda: {"ce": 0.6 * np_ce(LOGITS, LABELS), "tsd": 0.4 * _np_tsd(LOGITS, 3)}),
    ("ban_l", {}, lambda: {"ce": np_ce(LOGITS, LABELS), "kd": np_kl(TEACHER, LOGITS)}),
    ("confidence_penalty", dict(beta=0.2),
     lambda: {"ce": np_ce(LOGITS, LABELS),
              "cp": 0.2 * (np_softmax(LOGITS) * np_log_softmax(LOGITS)).sum(-1)}),
    ("online_route", dict(kl_weight=0.5, temperature=2.0, teacher_weight=0.8),
     lambda: {"ce_teacher": 0.8 * np_ce(FEATURES, LABELS), "ce": np_ce(LOGITS, LABELS),
              "kd": 0.5 * 4 * np_kl(FEATURES, LOGITS, 2.0, 2.0)}),
])
def test_loss_terms_match_their_formulas_and_add_up(name, params, expected):
    spec = losses.get(name)
    params = spec.resolve(params)
    student = losses.Outputs(jnp.asarray(LOGITS),
                             jnp.asarray(FEATURES) if name == "online_route" else None)
    teacher = losses.Outputs(jnp.asarray(TEACHER)) if spec.needs_teacher else None
    args = (student, teacher, jnp.asarray(LABELS), jax.random.key(0))
    terms = {k: np.asarray(v) for k, v in spec.terms(*args, **params).items()}
    want = expected()
    assert set(terms) == set(want)
    for key in want:
        np.testing.assert_allclose(terms[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # The total is the loss's own value, unchanged: the sum of its terms by the formula.
    total = np.asarray(spec.fn(*args, **params))
    np.testing.assert_allclose(sum(terms.values()), total, rtol=1e-5, atol=1e-6)


def test_two_term_losses_all_report_terms():
    single = {"cross_entropy", "cwtm", "dkpp"}     # one term each (cwtm: a weighted CE)
    assert {n for n in losses.names() if losses.get(n).terms is None} == single


# ------------------------------------------------------------------------------------------
# New: resolving parameters and computing the loss once with its terms.
# ------------------------------------------------------------------------------------------


def test_resolve_merges_defaults_and_names_an_unknown_parameter():
    spec = losses.get("kd")
    assert spec.resolve() == dict(spec.defaults)
    assert spec.resolve({"temperature": 2.0})["temperature"] == 2.0
    assert spec.resolve({"temperature": 2.0})["ce_weight"] == spec.defaults["ce_weight"]
    with pytest.raises(ValueError, match=r"config.loss.tau is not a parameter of loss 'kd'"):
        spec.resolve({"tau": 1.0})


@pytest.mark.parametrize("name", ["kd", "cross_entropy", "snapshot_distillation"])
def test_per_example_and_terms_is_the_loss_and_its_parts(name):
    spec = losses.get(name)
    params = spec.resolve({})
    student = losses.Outputs(jnp.asarray(LOGITS))
    teacher = losses.Outputs(jnp.asarray(TEACHER)) if spec.needs_teacher else None
    args = (student, teacher, jnp.asarray(LABELS), jax.random.key(0))
    total, parts = spec.per_example_and_terms(*args, **params)
    np.testing.assert_allclose(total, spec.fn(*args, **params), rtol=1e-6, atol=1e-6)
    if spec.terms is None:
        assert parts == {}
    else:
        np.testing.assert_allclose(sum(parts.values()), total, rtol=1e-6, atol=1e-6)


def test_what_each_loss_needs():
    assert losses.get("online_route").needs_model == "route_pair"
    assert losses.get("hint").needs_features and losses.get("hint").needs_teacher
    assert not losses.get("cross_entropy").needs_teacher
    assert {n for n in losses.names() if losses.get(n).needs_teacher} == {
        "born_again", "ban_l", "cwtm", "dkpp", "snapshot_distillation", "kd", "hint"}
    assert losses.LOSSES["kd"] is losses.get("kd")
