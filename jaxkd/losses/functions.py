"""The pure per-example losses of the four papers: the math, without the registry.

Every function returns one value per example (shape ``[B]``) unless stated; the caller
reduces over the batch. Logits are cast to float32 before any arithmetic, so bfloat16
activations give float32 losses. Teacher quantities go through ``jax.lax.stop_gradient``.

Hyper-parameters given as concrete Python scalars are checked in Python (at trace time)
and a bad value raises ``ValueError`` naming the parameter and the value; traced values
and arrays are not checked. The papers cited ([TT], [BAN], [SD], [RCO], [KD]) are listed
in ``jaxkd.losses``.
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxkd import validation

Array = jax.Array

# ------------------------------------------------------------------------------------------
# Hyper-parameter ranges (the registry checks the config fields by the same ones).
# ------------------------------------------------------------------------------------------

_POSITIVE = dict(low=0.0, low_open=True)                 # temperatures
_NONNEGATIVE = dict(low=0.0)                             # loss weights
_WEIGHT = dict(low=0.0, high=1.0)                        # a mixing weight lambda
_ETA = dict(low=0.0, high=1.0, low_open=True)            # [TT]'s eta and u
_SMOOTHING = dict(low=0.0, high=1.0, high_open=True)     # label smoothing eps


def _check_hyper(field: str, value: Any, **bounds: Any) -> None:
    """Checks a concrete scalar hyper-parameter against ``bounds`` (infinities allowed).

    Traced values and non-scalar arrays are not checked (the registry checks configs);
    0-d arrays and other values ``float()`` accepts are checked as that float.
    """
    if isinstance(value, jax.core.Tracer) or np.ndim(value) != 0:
        return
    if not validation.is_number(value):
        try:
            value = float(value)
        except (TypeError, ValueError):
            validation.fail(field, "must be a real number", value)
    validation.require_number(value, field, finite=False, **bounds)


def _check_k(field: str, k: Any, num_classes: int | None = None) -> None:
    """``k`` must be a Python int in [2, num_classes] (static: it sets a top-k size)."""
    validation.require_int(k, field)
    if k < 2:
        validation.fail(field, "must be >= 2", k)
    if num_classes is not None and k > num_classes:
        validation.fail(field, f"must be <= the number of classes ({num_classes})", k)


# ------------------------------------------------------------------------------------------
# Building blocks and the losses every method uses.
# ------------------------------------------------------------------------------------------


def _f32(x: Any) -> Array:
    return jnp.asarray(x, jnp.float32)


def _log_softmax(logits: Any, temperature: Any = 1.0) -> Array:
    return jax.nn.log_softmax(_f32(logits) / temperature, axis=-1)


def _kl_from_log_probs(target_log_probs: Array, log_probs: Array) -> Array:
    """KL(q || p) per example from log q (constant, no gradient) and log p."""
    q = jnp.exp(target_log_probs)
    terms = jnp.where(q > 0, q * (target_log_probs - log_probs), 0.0)
    return jnp.sum(terms, axis=-1)


def cross_entropy(logits: Array, labels: Array, *, label_smoothing: float = 0.0) -> Array:
    """Cross-entropy with integer labels, optionally with label smoothing (LSR).

    The smoothed target is ``(1 - eps) * one_hot(y) + eps / C`` (``eps`` spread evenly over
    all ``C`` classes, the label included), as in Szegedy et al. 2016 and optax.

    Args:
      logits: ``[B, C]`` logits (any float dtype; computed in float32).
      labels: ``[B]`` integer labels in ``[0, C)``.
      label_smoothing: ``eps`` in ``[0, 1)``.

    Returns:
      ``float32[B]`` per-example loss.

    References:
      [TT] Sec. 4 (LSR baseline for the patriarch); Szegedy et al. 2016, Sec. 7.
    """
    _check_hyper("label_smoothing", label_smoothing, **_SMOOTHING)
    log_p = _log_softmax(logits)
    num_classes = log_p.shape[-1]
    labels = jnp.asarray(labels, jnp.int32)[..., None]
    nll = -jnp.take_along_axis(log_p, labels, axis=-1)[..., 0]
    if isinstance(label_smoothing, (int, float)) and label_smoothing == 0:
        return nll
    uniform = -jnp.mean(log_p, axis=-1)
    return (1.0 - label_smoothing) * nll + label_smoothing * uniform


def soft_cross_entropy(logits: Array, target_probs: Array) -> Array:
    """Cross-entropy ``-sum_c q_c log softmax(z)_c`` against a target distribution ``q``.

    Its gradient with respect to the logits is ``softmax(z) - q``.

    Args:
      logits: ``[B, C]`` student logits.
      target_probs: ``[B, C]`` target probabilities (rows sum to 1). No stop-gradient is
        applied here; callers pass constants.

    Returns:
      ``float32[B]`` per-example loss.

    References:
      [BAN] Eqn 5 (the gradient of the cross-entropy to the teacher's distribution).
    """
    return -jnp.sum(_f32(target_probs) * _log_softmax(logits), axis=-1)


def kl_divergence(p_logits: Array, q_logits: Array, temperature: float = 1.0) -> Array:
    """``KL(P || Q) = sum_c P_c (log P_c - log Q_c)`` per example, where
    ``P = softmax(p_logits / T)`` and ``Q = softmax(q_logits / T)``.

    The argument order is that of the formula: the first argument is the distribution the
    expectation is taken under (the target: a teacher, an anchor), the second the one
    measured against it (a student). Classes with ``P_c = 0`` add 0. The gradient reaches
    both arguments; wrap a constant target in ``jax.lax.stop_gradient`` (as
    ``distillation_kl`` does). No ``T^2`` factor is applied.

    Args:
      p_logits: ``[B, C]`` logits of ``P`` (any float dtype; computed in float32).
      q_logits: ``[B, C]`` logits of ``Q``.
      temperature: ``T > 0``, dividing both sets of logits.

    Returns:
      ``float32[B]`` per-example KL divergence in nats (>= 0).

    Example::

        # KL(softmax(t / 4) || softmax(z / 4)), averaged over the batch.
        kl = jnp.mean(kl_divergence(teacher_logits, student_logits, temperature=4.0))
    """
    _check_hyper("temperature", temperature, **_POSITIVE)
    return _kl_from_log_probs(_log_softmax(p_logits, temperature),
                              _log_softmax(q_logits, temperature))


def distillation_kl(student_logits: Array, teacher_logits: Array, *,
                    teacher_temperature: float = 1.0,
                    student_temperature: float = 1.0) -> Array:
    """``KL(softmax(t / Tt) || softmax(z / Ts))`` per example; the teacher side is constant.

    ``kl_divergence`` with the teacher first (note: the student comes first here), each
    side softened by its own temperature and the teacher's wrapped in ``stop_gradient``.
    Hinton's KD uses ``Tt = Ts = T`` (the caller multiplies by ``T^2`` where the method
    does); snapshot distillation's asymmetric form uses ``Tt = T, Ts = 1``. No ``T^2``
    factor is applied here.

    Args:
      student_logits: ``[B, C]`` student logits ``z``.
      teacher_logits: ``[B, C]`` teacher logits ``t`` (wrapped in ``stop_gradient``).
      teacher_temperature: ``Tt > 0``.
      student_temperature: ``Ts > 0``.

    Returns:
      ``float32[B]`` per-example KL divergence (>= 0).

    References:
      [KD] Sec. 2; [SD] Eqn 3 (asymmetric); [RCO] Sec. 3 (tau); [TT] Eqn 2.
    """
    _check_hyper("teacher_temperature", teacher_temperature, **_POSITIVE)
    _check_hyper("student_temperature", student_temperature, **_POSITIVE)
    teacher = jax.lax.stop_gradient(_f32(teacher_logits) / teacher_temperature)
    return kl_divergence(teacher, _f32(student_logits) / student_temperature)


def sum_terms(terms: Mapping[str, Array]) -> Array:
    """A loss from its weighted parts, added in order (each loss's formula lives once: in
    its parts, which the engine also logs as `loss_<name>`)."""
    return functools.reduce(operator.add, terms.values())


def confidence_penalty(logits: Array) -> Array:
    """Negative entropy ``-H(softmax(z)) = sum_c p_c log p_c`` (<= 0).

    The CP loss is ``CE + beta * confidence_penalty = CE - beta * H``.

    Args:
      logits: ``[B, C]`` logits.

    Returns:
      ``float32[B]``.

    References:
      [TT] Sec. 4 (CP baseline); Pereyra et al. 2017, Eqn 2.
    """
    log_p = _log_softmax(logits)
    return jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def hint_loss(student_features: Array, teacher_features: Array) -> Array:
    """L2 feature mimicking: mean squared difference per example (teacher constant).

    Args:
      student_features: ``[B, ...]`` student features.
      teacher_features: teacher features of the same shape (no gradient).

    Returns:
      ``float32[B]``.

    Raises:
      ValueError: at trace time when the shapes differ (no regressor is learned here).

    References:
      [RCO] Sec. 4 (hint variant); Romero et al., FitNets, 2015, Eqn 3.
    """
    if student_features.shape != teacher_features.shape:
        raise ValueError("hint_loss needs features of the same shape, got student "
                         f"{student_features.shape} and teacher {teacher_features.shape}")
    diff = _f32(student_features) - jax.lax.stop_gradient(_f32(teacher_features))
    return jnp.mean(jnp.square(diff).reshape(diff.shape[0], -1), axis=-1)


def ensemble_logits(logits_list: Sequence[Array], *,
                    scales: Sequence[float] | None = None) -> Array:
    """Log of the mean softmax of the members (BANE; snapshot ensembles with scales).

    Args:
      logits_list: M arrays of logits ``[B, C]``.
      scales: optional M factors multiplying each member's logits first (SD uses
        ``T^(k-1)`` for the k-th snapshot).

    Returns:
      ``float32[B, C]`` log-probabilities of the ensemble.

    References:
      [BAN] Sec. 3.1 (BANE); [TT] Sec. 4 (ensembles); [SD] Sec. 4 (scaled ensemble).
    """
    if not logits_list:
        raise ValueError("ensemble_logits needs at least one member, got 0")
    stacked = jnp.stack([_f32(x) for x in logits_list])
    if scales is not None:
        if len(scales) != len(logits_list):
            raise ValueError(f"scales must have one entry per member ({len(logits_list)}),"
                             f" got {len(scales)}")
        stacked = stacked * _f32(scales).reshape((-1,) + (1,) * (stacked.ndim - 1))
    log_p = jax.nn.log_softmax(stacked, axis=-1)
    return jax.nn.logsumexp(log_p, axis=0) - jnp.log(float(len(logits_list)))


# ------------------------------------------------------------------------------------------
# [TT]: the tolerant teacher.
# ------------------------------------------------------------------------------------------


def top_k_score_difference(logits: Array, *, k: int = 5) -> Array:
    """Top score difference ``TSD = f_a1 - 1/(K-1) * sum_{k=2..K} f_ak`` on softmax scores.

    ``f_a1 >= f_a2 >= ...`` are the sorted softmax scores; ``a1`` is the top class, which
    need not be the label.

    Args:
      logits: ``[B, C]`` logits.
      k: ``K`` in ``[2, C]``, a Python int.

    Returns:
      ``float32[B]``, in ``[0, 1]``.

    References:
      [TT] Eqn 3 (the second term of the patriarch's loss).
    """
    probs = jax.nn.softmax(_f32(logits), axis=-1)
    _check_k("k", k, probs.shape[-1])
    top, _ = jax.lax.top_k(probs, k)
    return top[..., 0] - jnp.mean(top[..., 1:], axis=-1)


def _tolerant_parts(logits: Array, labels: Array, eta: float, k: int) -> dict[str, Array]:
    return {"ce": eta * cross_entropy(logits, labels),
            "tsd": (1.0 - eta) * top_k_score_difference(logits, k=k)}


def tolerant_teacher_loss(logits: Array, labels: Array, *, eta: float,
                          k: int = 5) -> Array:
    """The tolerant patriarch's loss ``eta * CE(z, y) + (1 - eta) * TSD(z; K)``.

    Its minimiser puts ``u(eta)`` (see ``primary_score_from_eta``) on the labelled class and
    lets the ``K - 1`` runners-up share ``1 - u`` (the other classes get 0). The claim needs
    the label to stay on top, ``u >= (1 - u) / (K - 1)``, i.e. ``u >= 1/K``; the papers use
    ``u in {0.6, 0.7}`` with ``K = 5``.

    Args:
      logits: ``[B, C]`` logits.
      labels: ``[B]`` integer labels.
      eta: weight of the cross-entropy, in ``(0, 1]``.
      k: ``K`` in ``[2, C]``.

    Returns:
      ``float32[B]`` per-example loss.

    References:
      [TT] Eqn 3.
    """
    _check_hyper("eta", eta, **_ETA)
    return sum_terms(_tolerant_parts(logits, labels, eta, k))


def primary_score_from_eta(eta: float, *, k: int = 5) -> float:
    """``u(eta) = min(eta / (1 - eta) * (K - 1) / K, 1)``: the optimal top score.

    Args:
      eta: cross-entropy weight in ``(0, 1]`` (``eta = 1`` gives ``u = 1``).
      k: ``K >= 2``.

    Returns:
      ``u`` as a Python float in ``(0, 1]``.

    References:
      [TT] Sec. 3.2, the optimum of Eqn 3.
    """
    _check_hyper("eta", eta, **_ETA)
    _check_k("k", k)
    eta = float(eta)
    if eta >= 1.0:
        return 1.0
    return min(eta / (1.0 - eta) * (k - 1) / k, 1.0)


def eta_from_primary_score(u: float, *, k: int = 5) -> float:
    """Inverse of ``primary_score_from_eta``: ``eta = u * K / (K - 1 + u * K)``.

    ``u = 0.6, K = 5`` gives ``eta = 3/7``; ``u = 1`` gives the smallest ``eta`` whose
    optimum is the one-hot label, ``K / (2K - 1)``.

    Args:
      u: target top score in ``(0, 1]``.
      k: ``K >= 2``.

    Returns:
      ``eta`` as a Python float in ``(0, 1)``.

    References:
      [TT] Sec. 3.2 (runs are named by ``u``).
    """
    _check_hyper("u", u, **_ETA)
    _check_k("k", k)
    u = float(u)
    return u * k / (k - 1 + u * k)


# ------------------------------------------------------------------------------------------
# [BAN] and [SD]: born-again networks (BAN, CWTM, DKPP) and snapshot distillation.
# ------------------------------------------------------------------------------------------


def _born_again_parts(student_logits, teacher_logits, labels, label_weight: float,
                      temperature: float) -> dict[str, Array]:
    kl = distillation_kl(student_logits, teacher_logits, teacher_temperature=temperature,
                         student_temperature=temperature)
    return {"ce": label_weight * cross_entropy(student_logits, labels),
            "kd": (1.0 - label_weight) * kl}


def born_again_loss(student_logits: Array, teacher_logits: Array, labels: Array, *,
                    label_weight: float, temperature: float = 1.0) -> Array:
    """``lambda * CE(z, y) + (1 - lambda) * KL(softmax(t/T) || softmax(z/T))``.

    ``lambda = 0`` is BAN (teacher only: the KL has the gradient of ``CE(z, softmax(t))``
    and is 0 for a perfect copy). No ``T^2`` factor: the papers use ``T = 1``, and without
    it ``lambda`` keeps its meaning as the mixing weight of [TT] Eqn 2 at every ``T``.

    Args:
      student_logits: ``[B, C]`` student logits.
      teacher_logits: ``[B, C]`` teacher logits (no gradient).
      labels: ``[B]`` integer labels.
      label_weight: ``lambda`` in ``[0, 1]``.
      temperature: ``T > 0``, applied to both sides of the KL.

    Returns:
      ``float32[B]`` per-example loss.

    References:
      [TT] Eqn 2; [BAN] Sec. 3 (BAN).
    """
    _check_hyper("label_weight", label_weight, **_WEIGHT)
    return sum_terms(_born_again_parts(student_logits, teacher_logits, labels,
                                       label_weight, temperature))


def cwtm_weights(teacher_logits: Array) -> Array:
    """``w_s = max_c p_t[s, c] / sum_u max_c p_t[u, c]`` over the batch (no gradient).

    Args:
      teacher_logits: ``[B, C]`` teacher logits.

    Returns:
      ``float32[B]`` weights summing to 1.

    References:
      [BAN] Sec. 3.2 (confidence-weighted by teacher max).
    """
    top = jnp.max(jax.nn.softmax(_f32(teacher_logits), axis=-1), axis=-1)
    return jax.lax.stop_gradient(top / jnp.sum(top))


def cwtm_loss(student_logits: Array, teacher_logits: Array, labels: Array) -> Array:
    """Per-example ``B * w_s * CE(z_s, y_s)``, so that its batch mean is ``sum_s w_s CE_s``.

    Args:
      student_logits: ``[B, C]`` student logits.
      teacher_logits: ``[B, C]`` teacher logits (only their max confidences are used).
      labels: ``[B]`` integer labels.

    Returns:
      ``float32[B]`` per-example loss (the weights depend on the whole batch).

    References:
      [BAN] Sec. 3.2 (CWTM).
    """
    batch = student_logits.shape[0]
    return batch * cwtm_weights(teacher_logits) * cross_entropy(student_logits, labels)


def _dkpp_log_targets(teacher_logits: Array, rng: Array) -> Array:
    """Teacher log-probabilities with the non-argmax entries permuted per example."""
    log_p = _log_softmax(teacher_logits)
    num_classes = log_p.shape[-1]
    is_top = jax.nn.one_hot(jnp.argmax(log_p, axis=-1), num_classes, dtype=jnp.bool_)
    keys = jax.random.uniform(rng, log_p.shape)
    source = jnp.argsort(jnp.where(is_top, -1.0, keys), axis=-1)
    dest = jnp.argsort(jnp.where(is_top, -1, jnp.arange(num_classes)), axis=-1)
    values = jnp.take_along_axis(log_p, source, axis=-1)
    permuted = jnp.take_along_axis(values, jnp.argsort(dest, axis=-1), axis=-1)
    return jax.lax.stop_gradient(permuted)


def dkpp_targets(teacher_logits: Array, rng: Array) -> Array:
    """Teacher probabilities with the argmax kept and the other entries permuted per example.

    Random uniform keys sort the non-argmax values into a random order; those values are
    then written, in that order, to the non-argmax positions taken in increasing index
    order. Each example draws its own keys, so the permutations are independent.

    Args:
      teacher_logits: ``[B, C]`` teacher logits.
      rng: a PRNG key.

    Returns:
      ``float32[B, C]`` target distribution (no gradient).

    References:
      [BAN] Sec. 3.2 (dark knowledge with permuted predictions, DKPP).
    """
    return jnp.exp(_dkpp_log_targets(teacher_logits, rng))


def _sd_parts(student_logits, teacher_logits, labels, temperature: float) -> dict[str, Array]:
    return {"ce": (1.0 + 1.0 / temperature) * cross_entropy(student_logits, labels),
            "kd": distillation_kl(student_logits, teacher_logits,
                                  teacher_temperature=temperature)}


def snapshot_distillation_loss(student_logits: Array, teacher_logits: Array,
                               labels: Array, *, temperature: float) -> Array:
    """``(1 + 1/T) * CE(z, y) + KL(softmax(t / T) || softmax(z))`` (only the teacher is softened).

    Args:
      student_logits: ``[B, C]`` student logits.
      teacher_logits: ``[B, C]`` logits of the previous snapshot (no gradient).
      labels: ``[B]`` integer labels.
      temperature: ``T > 0``.

    Returns:
      ``float32[B]`` per-example loss.

    References:
      [SD] Eqn 3, with ``lambda_S = 1 + 1/T`` and ``lambda_T = 1``.
    """
    _check_hyper("temperature", temperature, **_POSITIVE)
    return sum_terms(_sd_parts(student_logits, teacher_logits, labels, temperature))


# ------------------------------------------------------------------------------------------
# [KD] and [RCO]: Hinton's KD and the online route.
# ------------------------------------------------------------------------------------------


def kd_loss_terms(student_logits: Array, teacher_logits: Array, labels: Array, *,
                  ce_weight: float = 1.0, kl_weight: float = 1.0, temperature: float = 4.0,
                  scale_by_t2: bool = True) -> dict[str, Array]:
    """The two per-example terms of Hinton KD: ``{'ce': a * CE(z, y), 'kd': b * KL}``.

    ``b = kl_weight * T^2`` (``kl_weight`` without the ``T^2`` factor when ``scale_by_t2``
    is False) and ``KL = KL(softmax(t/T) || softmax(z/T))``, the teacher side constant.

    References:
      Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015, Sec. 2;
      [RCO] Eqn 3 (lambda = ``kl_weight``, tau = ``temperature``).
    """
    kl = distillation_kl(student_logits, teacher_logits, teacher_temperature=temperature,
                         student_temperature=temperature)
    kl_scale = kl_weight * (temperature**2 if scale_by_t2 else 1.0)
    return {"ce": ce_weight * cross_entropy(student_logits, labels), "kd": kl_scale * kl}


def kd_loss(student_logits: Array, teacher_logits: Array, labels: Array, *,
            ce_weight: float = 1.0, kl_weight: float = 1.0, temperature: float = 4.0,
            scale_by_t2: bool = True) -> Array:
    """Hinton KD per example, ``float32[B]``: the sum of `kd_loss_terms` (jit-able).

    Example::

        loss = jnp.mean(kd_loss(student_logits, teacher_logits, labels, temperature=4.0))
    """
    return sum_terms(kd_loss_terms(student_logits, teacher_logits, labels,
                                   ce_weight=ce_weight, kl_weight=kl_weight,
                                   temperature=temperature, scale_by_t2=scale_by_t2))


def online_route_loss_terms(student_logits: Array, teacher_logits: Array, labels: Array,
                            *, kl_weight: float = 1.0, temperature: float = 5.0,
                            teacher_weight: float = 1.0) -> dict[str, Array]:
    """The three per-example terms of `online_route_loss`: ``{'ce_teacher', 'ce', 'kd'}``."""
    kl = distillation_kl(student_logits, jax.lax.stop_gradient(teacher_logits),
                         teacher_temperature=temperature, student_temperature=temperature)
    return {"ce_teacher": teacher_weight * cross_entropy(teacher_logits, labels),
            "ce": cross_entropy(student_logits, labels),
            "kd": kl_weight * temperature**2 * kl}


def online_route_loss(student_logits: Array, teacher_logits: Array, labels: Array, *,
                      kl_weight: float = 1.0, temperature: float = 5.0,
                      teacher_weight: float = 1.0) -> Array:
    """Per-example loss of a teacher and a student trained together ([RCO] RL).

    ``teacher_weight * CE(t, y) + CE(z, y) + kl_weight * tau^2 * KL(softmax(t/tau) ||
    softmax(z/tau))`` with the teacher's logits ``t`` held fixed in the KL term: the
    teacher learns from the labels only, the student from the labels and the teacher's
    current output, i.e. [RCO] Eqn 3 with an anchor at every iteration (Table 6, RL).

    Args:
      student_logits: ``[B, C]``.
      teacher_logits: ``[B, C]`` of the same forward pass (its gradient reaches only the
        teacher's CE term).
      labels: ``int[B]``.
      kl_weight: lambda of Eqn 3.
      temperature: tau (5 in [RCO]).
      teacher_weight: weight of the teacher's own CE.

    Returns:
      ``float32[B]``: the sum of `online_route_loss_terms`.
    """
    return sum_terms(online_route_loss_terms(student_logits, teacher_logits, labels,
                                             kl_weight=kl_weight, temperature=temperature,
                                             teacher_weight=teacher_weight))
