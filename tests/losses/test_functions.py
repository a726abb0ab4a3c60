"""The pure loss functions (`jaxkd.losses.functions`): hand-computed values, the papers'
derived facts, gradients, dtypes and hyper-parameter checks."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from jaxkd import losses
from tests.losses.reference import (LABELS, LOGITS, TEACHER, jitted, np_ce, np_kl,
                                    np_log_softmax, np_softmax)


# ------------------------------------------------------------------------------------------
# Hand-computed values.
# ------------------------------------------------------------------------------------------


def test_cross_entropy_matches_numpy():
    out = jitted(losses.cross_entropy)(LOGITS, LABELS)
    assert out.shape == (3,) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, np_ce(LOGITS, LABELS), rtol=1e-6)
    # One value by hand: logits (0.3, 0.2, 0.1, 0.0), label 0.
    expected = np.log(np.exp([0.3, 0.2, 0.1, 0.0]).sum()) - 0.3
    np.testing.assert_allclose(out[2], expected, rtol=1e-6)


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_label_smoothing_matches_formula(eps):
    out = jitted(losses.cross_entropy, label_smoothing=eps)(LOGITS, LABELS)
    targets = (1 - eps) * np.eye(4)[LABELS] + eps / 4
    expected = -(targets * np_log_softmax(LOGITS)).sum(-1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_soft_cross_entropy_matches_numpy():
    q = np_softmax(TEACHER)
    out = jitted(losses.soft_cross_entropy)(LOGITS, q.astype(np.float32))
    np.testing.assert_allclose(out, -(q * np_log_softmax(LOGITS)).sum(-1), rtol=1e-6)
    one_hot = np.eye(4, dtype=np.float32)[LABELS]
    np.testing.assert_allclose(jitted(losses.soft_cross_entropy)(LOGITS, one_hot),
                               np_ce(LOGITS, LABELS), rtol=1e-6)


@pytest.mark.parametrize("tt,ts", [(1.0, 1.0), (2.0, 1.0), (3.0, 3.0), (0.5, 2.0)])
def test_distillation_kl_matches_numpy(tt, ts):
    fn = jitted(losses.distillation_kl, teacher_temperature=tt, student_temperature=ts)
    out = fn(LOGITS, TEACHER)
    np.testing.assert_allclose(out, np_kl(TEACHER, LOGITS, tt, ts), rtol=1e-5, atol=1e-7)
    assert np.all(np.asarray(out) > 0)
    np.testing.assert_allclose(fn(TEACHER * ts / tt, TEACHER), 0.0, atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 4.0])
def test_kl_divergence_matches_numpy_in_its_argument_order(temperature):
    fn = jitted(losses.kl_divergence, temperature=temperature)
    out = fn(TEACHER, LOGITS)
    assert out.shape == (3,) and out.dtype == jnp.float32
    # KL(P || Q) with P from the first argument: the expectation is under the teacher here.
    np.testing.assert_allclose(out, np_kl(TEACHER, LOGITS, temperature, temperature),
                               rtol=1e-5, atol=1e-7)
    swapped = np.asarray(fn(LOGITS, TEACHER))
    np.testing.assert_allclose(swapped, np_kl(LOGITS, TEACHER, temperature, temperature),
                               rtol=1e-5, atol=1e-7)
    assert not np.allclose(swapped, out)                # KL is not symmetric
    np.testing.assert_allclose(fn(TEACHER, TEACHER), 0.0, atol=1e-6)


def test_kl_divergence_one_value_by_hand():
    p, q = np.array([[0.0, np.log(3.0)]], np.float32), np.zeros((1, 2), np.float32)
    # P = (1/4, 3/4), Q = (1/2, 1/2): KL = 1/4 log(1/2) + 3/4 log(3/2).
    expected = 0.25 * np.log(0.5) + 0.75 * np.log(1.5)
    np.testing.assert_allclose(losses.kl_divergence(p, q), [expected], rtol=1e-6)


def test_kl_divergence_gradient_reaches_both_arguments():
    grad_p, grad_q = jax.grad(lambda p, q: jnp.sum(losses.kl_divergence(p, q, 2.0)),
                              argnums=(0, 1))(TEACHER, LOGITS)
    assert np.abs(np.asarray(grad_p)).max() > 0 and np.abs(np.asarray(grad_q)).max() > 0
    # Against Q it is the soft cross-entropy's: (softmax(q / T) - softmax(p / T)) / T.
    np.testing.assert_allclose(grad_q, (np_softmax(LOGITS / 2) - np_softmax(TEACHER / 2)) / 2,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tt,ts", [(1.0, 1.0), (4.0, 4.0), (2.0, 1.0), (0.5, 3.0)])
def test_distillation_kl_is_kl_divergence_of_the_softened_logits(tt, ts):
    """Bit for bit: the teacher first, each side divided by its own temperature."""
    dkl = jitted(losses.distillation_kl, teacher_temperature=tt, student_temperature=ts)
    via_kl = jax.jit(lambda z, t: losses.kl_divergence(t / tt, z / ts))
    for dtype in (jnp.float32, jnp.bfloat16):
        z, t = jnp.asarray(LOGITS, dtype), jnp.asarray(TEACHER, dtype)
        np.testing.assert_array_equal(dkl(z, t), via_kl(z.astype(jnp.float32),
                                                        t.astype(jnp.float32)))
    if tt == ts:
        np.testing.assert_array_equal(dkl(LOGITS, TEACHER),
                                      jitted(losses.kl_divergence, temperature=tt)(TEACHER,
                                                                                   LOGITS))
    # The teacher side is a constant of distillation_kl, not of kl_divergence.
    grad_t = jax.grad(lambda t: jnp.sum(losses.distillation_kl(
        LOGITS, t, teacher_temperature=tt, student_temperature=ts)))(TEACHER)
    assert np.all(np.asarray(grad_t) == 0)


def test_top_k_score_difference_matches_numpy():
    for k in (2, 3, 4):
        out = jitted(losses.top_k_score_difference, k=k)(LOGITS)
        scores = -np.sort(-np_softmax(LOGITS), axis=-1)
        expected = scores[:, 0] - scores[:, 1:k].mean(-1)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)


def test_tolerant_teacher_loss_matches_numpy():
    eta, k = 3 / 7, 3
    out = jitted(losses.tolerant_teacher_loss, eta=eta, k=k)(LOGITS, LABELS)
    scores = -np.sort(-np_softmax(LOGITS), axis=-1)
    tsd = scores[:, 0] - scores[:, 1:k].mean(-1)
    np.testing.assert_allclose(out, eta * np_ce(LOGITS, LABELS) + (1 - eta) * tsd, rtol=1e-5)
    pure_ce = jitted(losses.tolerant_teacher_loss, eta=1.0, k=4)(LOGITS, LABELS)
    np.testing.assert_allclose(pure_ce, np_ce(LOGITS, LABELS), rtol=1e-6)


@pytest.mark.parametrize("lam", [0.0, 0.6, 1.0])
def test_born_again_loss_matches_numpy(lam):
    out = jitted(losses.born_again_loss, label_weight=lam)(LOGITS, TEACHER, LABELS)
    expected = lam * np_ce(LOGITS, LABELS) + (1 - lam) * np_kl(TEACHER, LOGITS)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize("temperature", [2.0, 3.0])
def test_snapshot_distillation_loss_matches_numpy(temperature):
    out = jitted(losses.snapshot_distillation_loss, temperature=temperature)(
        LOGITS, TEACHER, LABELS)
    expected = ((1 + 1 / temperature) * np_ce(LOGITS, LABELS)
                + np_kl(TEACHER, LOGITS, tt=temperature, ts=1.0))
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_confidence_penalty_is_negative_entropy():
    out = jitted(losses.confidence_penalty)(LOGITS)
    p = np_softmax(LOGITS)
    np.testing.assert_allclose(out, (p * np.log(p)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(jitted(losses.confidence_penalty)(np.zeros((2, 8))),
                               -np.log(8.0), rtol=1e-6)


def test_cwtm_weights_and_loss():
    w = jitted(losses.cwtm_weights)(TEACHER)
    top = np_softmax(TEACHER).max(-1)
    np.testing.assert_allclose(w, top / top.sum(), rtol=1e-6)
    np.testing.assert_allclose(np.sum(w), 1.0, rtol=1e-6)
    out = jitted(losses.cwtm_loss)(LOGITS, TEACHER, LABELS)
    assert out.shape == (3,)
    np.testing.assert_allclose(np.mean(out), np.sum(top / top.sum() * np_ce(LOGITS, LABELS)),
                               rtol=1e-5)


def test_hint_loss_is_mean_squared_difference():
    s = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = np.array([[0.0, 0.0, 0.0], [3.0, 5.0, 2.0]], np.float32)
    out = jitted(losses.hint_loss)(s, t)
    np.testing.assert_allclose(out, [(0 + 1 + 4) / 3, (0 + 1 + 9) / 3], rtol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        jitted(losses.hint_loss)(s, np.zeros((2, 4), np.float32))


def test_ensemble_logits():
    fn = jax.jit(losses.ensemble_logits)
    np.testing.assert_allclose(fn([LOGITS, LOGITS, LOGITS]), np_log_softmax(LOGITS),
                               rtol=1e-5, atol=1e-6)
    expected = np.log((np_softmax(LOGITS) + np_softmax(TEACHER)) / 2)
    np.testing.assert_allclose(fn([LOGITS, TEACHER]), expected, rtol=1e-5, atol=1e-6)
    scaled = jax.jit(functools.partial(losses.ensemble_logits, scales=[1.0, 2.0]))
    expected = np.log((np_softmax(LOGITS) + np_softmax(2 * TEACHER)) / 2)
    np.testing.assert_allclose(scaled([LOGITS, TEACHER]), expected, rtol=1e-5, atol=1e-6)
    big = fn([LOGITS * 1e4, TEACHER * 1e4])
    assert np.all(np.isfinite(np.exp(big))) and np.allclose(np.exp(big).sum(-1), 1.0)
    with pytest.raises(ValueError, match="scales"):
        losses.ensemble_logits([LOGITS, TEACHER], scales=[1.0])


# ------------------------------------------------------------------------------------------
# Derived facts from the papers.
# ------------------------------------------------------------------------------------------


def test_kd_gradient_is_probability_difference():
    """BAN Eqn 5: d CE(z, softmax(t)) / dz = softmax(z) - softmax(t), at T = 1."""
    expected = np_softmax(LOGITS) - np_softmax(TEACHER)
    soft_ce = lambda s, t: jnp.sum(losses.soft_cross_entropy(s, jax.nn.softmax(t)))
    kl = lambda s, t: jnp.sum(losses.distillation_kl(s, t))
    for fn in (soft_ce, kl):
        grad = jax.jit(jax.grad(fn))(LOGITS, TEACHER)
        np.testing.assert_allclose(grad, expected, atol=1e-6)
    teacher_grad = jax.jit(jax.grad(kl, argnums=1))(LOGITS, TEACHER)
    np.testing.assert_array_equal(teacher_grad, 0.0)


def _minimise_tolerant_teacher(eta, k, num_classes=10, label=3, steps=3000):
    labels = jnp.array([label])
    z0 = jnp.asarray(0.1 * np.random.default_rng(0).normal(size=(1, num_classes)), jnp.float32)
    opt = optax.adam(0.05)
    loss = lambda z: jnp.sum(losses.tolerant_teacher_loss(z, labels, eta=eta, k=k))

    def step(carry, _):
        z, opt_state = carry
        updates, opt_state = opt.update(jax.grad(loss)(z), opt_state)
        return (optax.apply_updates(z, updates), opt_state), None

    (z, _), _ = jax.lax.scan(step, (z0, opt.init(z0)), None, length=steps)
    return jax.nn.softmax(z)[0]


@pytest.mark.parametrize("u,k", [(0.6, 5), (0.7, 3)])
def test_tolerant_teacher_optimum(u, k):
    """TT Sec. 3.2: the optimum of Eqn 3 has f_a1 = u(eta), K-1 runners-up sharing 1-u."""
    eta = losses.eta_from_primary_score(u, k=k)
    probs = np.asarray(jax.jit(_minimise_tolerant_teacher, static_argnums=(0, 1))(eta, k))
    order = np.argsort(-probs)
    assert order[0] == 3
    np.testing.assert_allclose(probs[3], losses.primary_score_from_eta(eta, k=k), atol=1e-2)
    np.testing.assert_allclose(probs[3], u, atol=1e-2)
    np.testing.assert_allclose(probs[order[1:k]].sum(), 1 - u, atol=1e-2)
    assert probs[order[k:]].sum() < 1e-2


def test_eta_primary_score_round_trip():
    assert losses.eta_from_primary_score(0.6, k=5) == pytest.approx(3 / 7, abs=1e-12)
    assert losses.primary_score_from_eta(3 / 7, k=5) == pytest.approx(0.6, abs=1e-12)
    for k in (2, 5, 10):
        for u in (0.35, 0.6, 0.7, 0.99, 1.0):
            eta = losses.eta_from_primary_score(u, k=k)
            assert 0 < eta < 1
            assert losses.primary_score_from_eta(eta, k=k) == pytest.approx(u, abs=1e-12)
    assert losses.primary_score_from_eta(1.0, k=5) == 1.0
    assert losses.primary_score_from_eta(0.9, k=5) == 1.0  # 0.9/0.1 * 4/5 > 1: capped.
    assert isinstance(losses.eta_from_primary_score(0.6), float)


def test_distillation_kl_temperature_limits():
    large = jitted(losses.distillation_kl, teacher_temperature=1e4, student_temperature=1e4)
    assert np.max(large(LOGITS, TEACHER)) < 1e-6
    # A sharp teacher (T -> 0) is its one-hot argmax: the KL becomes CE to that label.
    sharp = jitted(losses.distillation_kl, teacher_temperature=1e-3)(LOGITS, TEACHER)
    np.testing.assert_allclose(sharp, np_ce(LOGITS, TEACHER.argmax(-1)), rtol=1e-5)
    # Large T on the snapshot-distillation loss leaves (1 + 1/T) CE + KL to a uniform target.
    sd = jitted(losses.snapshot_distillation_loss, temperature=1e4)(LOGITS, TEACHER, LABELS)
    uniform = np.full_like(LOGITS, 0.0)
    np.testing.assert_allclose(sd, np_ce(LOGITS, LABELS) + np_kl(uniform, LOGITS), rtol=1e-3)


def test_dkpp_keeps_argmax_and_values_and_permutes():
    teacher = np.random.default_rng(1).normal(size=(64, 10)).astype(np.float32) * 3
    fn = jax.jit(losses.dkpp_targets)
    targets = np.asarray(fn(teacher, jax.random.key(2)))
    probs = np_softmax(teacher)
    rows = np.arange(64)
    top = probs.argmax(-1)
    np.testing.assert_array_equal(targets.argmax(-1), top)
    np.testing.assert_allclose(targets[rows, top], probs[rows, top], rtol=1e-5)
    np.testing.assert_allclose(np.sort(targets, -1), np.sort(probs, -1), rtol=1e-5, atol=1e-9)
    moved = ~np.isclose(targets, probs, rtol=1e-5, atol=1e-9)
    assert moved.any(axis=-1).mean() > 0.9
    # Identical examples get independent permutations; a new key gives a new draw.
    same = fn(np.tile(teacher[:1], (64, 1)), jax.random.key(3))
    assert len({tuple(np.round(np.asarray(r), 6)) for r in same}) > 1
    assert not np.allclose(fn(teacher, jax.random.key(4)), targets)
    np.testing.assert_array_equal(fn(teacher, jax.random.key(2)), targets)


# ------------------------------------------------------------------------------------------
# Gradients, dtypes, validation.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [
    functools.partial(losses.cross_entropy, labels=LABELS, label_smoothing=0.1),
    functools.partial(losses.distillation_kl, teacher_logits=TEACHER, teacher_temperature=2.0),
    functools.partial(losses.tolerant_teacher_loss, labels=LABELS, eta=3 / 7, k=3),
    functools.partial(losses.snapshot_distillation_loss, teacher_logits=TEACHER,
                      labels=LABELS, temperature=3.0),
    losses.confidence_penalty,
    functools.partial(losses.hint_loss, teacher_features=TEACHER),
], ids=["ce_lsr", "kl", "tolerant", "sd", "cp", "hint"])
def test_check_grads(fn):
    check_grads(jax.jit(lambda z: jnp.sum(fn(z))), (LOGITS,), order=1, modes=["rev"],
                atol=1e-2, rtol=1e-2)


def test_bf16_inputs_give_float32():
    @jax.jit
    def all_losses(s, t):
        return [
            losses.cross_entropy(s, LABELS, label_smoothing=0.1),
            losses.soft_cross_entropy(s, jax.nn.softmax(t)),
            losses.distillation_kl(s, t, teacher_temperature=4.0),
            losses.top_k_score_difference(s, k=3),
            losses.tolerant_teacher_loss(s, LABELS, eta=0.5, k=3),
            losses.born_again_loss(s, t, LABELS, label_weight=0.5),
            losses.snapshot_distillation_loss(s, t, LABELS, temperature=2.0),
            losses.confidence_penalty(s),
            losses.cwtm_loss(s, t, LABELS),
            losses.hint_loss(s, t),
            losses.dkpp_targets(t, jax.random.key(0)),
            losses.ensemble_logits([s, t]),
        ]

    s, t = jnp.asarray(LOGITS, jnp.bfloat16), jnp.asarray(TEACHER, jnp.bfloat16)
    outs = all_losses(s, t)
    for out in outs:
        assert out.dtype == jnp.float32 and np.all(np.isfinite(out))
    np.testing.assert_allclose(outs[0], np_ce(np.asarray(s, np.float32), LABELS) * 0.9
                               - 0.1 * np_log_softmax(np.asarray(s, np.float32)).mean(-1),
                               rtol=1e-5)


@pytest.mark.parametrize("call,match", [
    (lambda: losses.tolerant_teacher_loss(LOGITS, LABELS, eta=0.0), "eta .* got 0.0"),
    (lambda: losses.tolerant_teacher_loss(LOGITS, LABELS, eta=1.5), "eta .* got 1.5"),
    (lambda: losses.top_k_score_difference(LOGITS, k=5), "k must be <= .*4.*got 5"),
    (lambda: losses.top_k_score_difference(LOGITS, k=1), "k must be >= 2, got 1"),
    (lambda: losses.distillation_kl(LOGITS, TEACHER, teacher_temperature=0.0),
     "teacher_temperature must be > 0, got 0.0"),
    (lambda: losses.distillation_kl(LOGITS, TEACHER, student_temperature=-1.0),
     "student_temperature must be > 0, got -1.0"),
    (lambda: losses.snapshot_distillation_loss(LOGITS, TEACHER, LABELS, temperature=-2.0),
     "temperature must be > 0, got -2.0"),
    (lambda: losses.born_again_loss(LOGITS, TEACHER, LABELS, label_weight=1.2),
     r"label_weight must be in \[0, 1\], got 1.2"),
    (lambda: losses.cross_entropy(LOGITS, LABELS, label_smoothing=1.0),
     r"label_smoothing must be in \[0, 1\), got 1.0"),
    (lambda: losses.eta_from_primary_score(0.0), "u must be .* got 0.0"),
    (lambda: losses.kl_divergence(LOGITS, TEACHER, 0.0), "temperature must be > 0, got 0.0"),
    (lambda: losses.kl_divergence(LOGITS, TEACHER, "x"), "temperature must be a real number"),
    (lambda: losses.primary_score_from_eta(0.5, k=1), "k must be >= 2, got 1"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_hyperparameter_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_traced_hyperparameters_are_not_checked_in_python():
    fn = jax.jit(lambda z, t, temp: losses.snapshot_distillation_loss(z, t, LABELS,
                                                                       temperature=temp))
    np.testing.assert_allclose(fn(LOGITS, TEACHER, 2.0), jitted(
        losses.snapshot_distillation_loss, temperature=2.0)(LOGITS, TEACHER, LABELS),
        rtol=1e-6)


# ------------------------------------------------------------------------------------------
# The public two-term losses' gradients by hand.
# ------------------------------------------------------------------------------------------


def test_public_kd_loss_gradient_by_hand():
    """Hinton KD: d/dz = a (softmax(z) - y) + b T (softmax(z/T) - softmax(t/T)), b = lambda;
    the array-level `kd_loss` is the registry's 'kd' and the sum of its terms."""
    z = jnp.array([[0.5, -1.0, 2.0, 0.1]])
    t = jnp.array([[1.5, 0.2, -0.3, 0.0]])
    y = jnp.array([2])
    a, lam, temp = 0.3, 0.7, 3.0
    loss = lambda z_: losses.kd_loss(z_, t, y, ce_weight=a, kl_weight=lam,  # noqa: E731
                                     temperature=temp)[0]
    want = a * (jax.nn.softmax(z) - jax.nn.one_hot(y, 4)) + lam * temp * (
        jax.nn.softmax(z / temp) - jax.nn.softmax(t / temp))
    np.testing.assert_allclose(jax.grad(loss)(z), want, atol=1e-6)
    terms = losses.kd_loss_terms(z, t, y, ce_weight=a, kl_weight=lam, temperature=temp)
    np.testing.assert_allclose(terms["ce"] + terms["kd"], jax.jit(losses.kd_loss)(z, t, y,
                               ce_weight=a, kl_weight=lam, temperature=temp))
    spec = losses.get("kd")
    out = spec.fn(losses.Outputs(z), losses.Outputs(t), y, None, ce_weight=a, kl_weight=lam,
                  temperature=temp, scale_by_t2=True)
    np.testing.assert_array_equal(out, losses.kd_loss(z, t, y, ce_weight=a, kl_weight=lam,
                                                      temperature=temp))


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


# ------------------------------------------------------------------------------------------
# New: the terms of the public two-term losses add up to them.
# ------------------------------------------------------------------------------------------


def test_sum_terms_and_online_route_terms_add_up():
    parts = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([0.5, -1.0])}
    np.testing.assert_allclose(losses.sum_terms(parts), [1.5, 1.0])
    z, t = jnp.asarray(LOGITS), jnp.asarray(TEACHER)
    terms = losses.online_route_loss_terms(z, t, LABELS, kl_weight=0.5, temperature=2.0)
    assert set(terms) == {"ce_teacher", "ce", "kd"}
    np.testing.assert_allclose(terms["ce_teacher"], np_ce(TEACHER, LABELS), rtol=1e-5)
    np.testing.assert_allclose(terms["kd"], 0.5 * 4 * np_kl(TEACHER, LOGITS, 2.0, 2.0),
                               rtol=1e-5)
    total = losses.online_route_loss(z, t, LABELS, kl_weight=0.5, temperature=2.0)
    np.testing.assert_allclose(losses.sum_terms(terms), total, rtol=1e-6)


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
