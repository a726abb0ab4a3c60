"""The registry of losses by name: what the engine and the plans select a loss by.

A `LossSpec` adapts one of the pure functions of `jaxkd.losses.functions` to the engine's
calling convention, ``fn(student: Outputs, teacher: Outputs | None, labels, rng,
**params) -> float32[B]``, and checks its parameters as config fields: errors name the
field, e.g. ``config.loss.temperature must be > 0, got -1``.
"""
from __future__ import annotations

import dataclasses
import types
from typing import Any, Callable, Mapping, NamedTuple

from jaxkd import validation
from jaxkd.losses.functions import (_ETA, _NONNEGATIVE, _POSITIVE, _SMOOTHING, _WEIGHT, Array,
                                    _born_again_parts, _check_k, _dkpp_log_targets,
                                    _kl_from_log_probs, _log_softmax, _sd_parts,
                                    _tolerant_parts, born_again_loss, confidence_penalty,
                                    cross_entropy, cwtm_loss, distillation_kl,
                                    eta_from_primary_score, hint_loss, kd_loss, kd_loss_terms,
                                    online_route_loss_terms, snapshot_distillation_loss,
                                    sum_terms, tolerant_teacher_loss)


class Outputs(NamedTuple):
    """A model's outputs: logits ``[B, C]`` and optional pooled features ``[B, D]``."""

    logits: Array
    features: Array | None = None


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A registered loss.

    Attributes:
      name: registry name (the value of ``config.loss.name``).
      fn: ``fn(student: Outputs, teacher: Outputs | None, labels, rng, **params)`` returning
        ``float32[B]``; params are Python scalars.
      needs_teacher: whether ``fn`` reads the teacher's outputs.
      defaults: every accepted parameter with its default.
      check: ``check(params, num_classes)`` on the complete (defaults-merged) params;
        raises ``ValueError`` naming ``config.loss.<param>``.
      needs_features: whether ``fn`` reads penultimate features (the hint loss).
      needs_model: the model the loss is written for ('' = any): 'online_route' reads
        the `route_pair`'s teacher logits.
      terms: None, or ``terms(student, teacher, labels, rng, **params)`` returning the
        loss's weighted parts by name (``{'ce': [B], 'kd': [B]}``), which add up to
        ``fn``'s value; the engine logs their batch means as ``loss_<name>``.
    """

    name: str
    fn: Callable[..., Array]
    needs_teacher: bool
    defaults: Mapping[str, Any]
    check: Callable[[Mapping[str, Any], int], None] = lambda params, num_classes: None
    needs_features: bool = False
    needs_model: str = ""
    terms: Callable[..., Mapping[str, Array]] | None = None

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Returns the defaults updated with ``params``; unknown names are an error."""
        given = dict(params.items()) if params is not None else {}
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise ValueError(f"config.loss.{unknown[0]} is not a parameter of loss "
                             f"{self.name!r}; allowed: {sorted(self.defaults)}")
        return {**self.defaults, **given}

    def per_example_and_terms(self, student, teacher, labels, rng, **params
                              ) -> tuple[Array, dict[str, Array]]:
        """The per-example loss and its weighted parts, each computed once: the loss is
        the sum of `terms` where the loss has them (the same value as `fn`), else `fn`."""
        if self.terms is None:
            return self.fn(student, teacher, labels, rng, **params), {}
        parts = dict(self.terms(student, teacher, labels, rng, **params))
        return sum_terms(parts), parts

    def validate(self, params: Mapping[str, Any], num_classes: int) -> None:
        """Checks ``params`` (without ``name``) for ``num_classes`` classes.

        Raises:
          ValueError: naming ``config.loss.<param>`` and the bad value, or listing the
            allowed names for an unknown parameter.
        """
        self.check(self.resolve(params), num_classes)


def _field(param: str) -> str:
    return f"config.loss.{param}"


def _checker(rules: Mapping[str, Mapping[str, Any]]):
    """A ``check`` function: each parameter named in ``rules`` must be a real number (not a
    bool) in the range ``rules[param]`` (the bounds of `validation.require_number`)."""

    def check(params: Mapping[str, Any], num_classes: int) -> None:
        del num_classes
        for param, bounds in rules.items():
            validation.require_number(params[param], _field(param), finite=False, **bounds)

    return check


def _teacher_logits(teacher: Outputs | None, name: str) -> Array:
    if teacher is None:
        raise ValueError(f"loss {name!r} needs teacher outputs, got None")
    return teacher.logits


def _ce_fn(student, teacher, labels, rng, *, label_smoothing=0.0):
    del teacher, rng
    return cross_entropy(student.logits, labels, label_smoothing=label_smoothing)


def _cp_terms(student, teacher, labels, rng, *, beta=0.1):
    del teacher, rng
    return {"ce": cross_entropy(student.logits, labels),
            "cp": beta * confidence_penalty(student.logits)}


def _tolerant_eta(eta: float | None, u: float | None, k: int) -> float:
    if (eta is None) == (u is None):
        raise ValueError("tolerant_teacher needs exactly one of config.loss.eta and "
                         f"config.loss.u, got eta={eta!r}, u={u!r}")
    return eta if eta is not None else eta_from_primary_score(u, k=k)


def _tolerant_fn(student, teacher, labels, rng, *, eta=None, u=None, k=5):
    del teacher, rng
    return tolerant_teacher_loss(student.logits, labels, eta=_tolerant_eta(eta, u, k), k=k)


def _tolerant_check(params: Mapping[str, Any], num_classes: int) -> None:
    _check_k(_field("k"), params["k"], num_classes)
    for param in ("eta", "u"):
        if params[param] is not None:
            validation.require_number(params[param], _field(param), finite=False, **_ETA)
    _tolerant_eta(params["eta"], params["u"], params["k"])


def _born_again_fn(student, teacher, labels, rng, *, label_weight=0.0, temperature=1.0):
    del rng
    return born_again_loss(student.logits, _teacher_logits(teacher, "born_again"), labels,
                           label_weight=label_weight, temperature=temperature)


def _ban_l_terms(student, teacher, labels, rng):
    del rng
    return {"ce": cross_entropy(student.logits, labels),
            "kd": distillation_kl(student.logits, _teacher_logits(teacher, "ban_l"))}


def _cwtm_fn(student, teacher, labels, rng):
    del rng
    return cwtm_loss(student.logits, _teacher_logits(teacher, "cwtm"), labels)


def _dkpp_fn(student, teacher, labels, rng):
    del labels
    log_targets = _dkpp_log_targets(_teacher_logits(teacher, "dkpp"), rng)
    return _kl_from_log_probs(log_targets, _log_softmax(student.logits))


def _sd_fn(student, teacher, labels, rng, *, temperature=2.0):
    del rng
    t = _teacher_logits(teacher, "snapshot_distillation")
    return snapshot_distillation_loss(student.logits, t, labels, temperature=temperature)


def _kd_fn(student, teacher, labels, rng, **params):
    del rng
    return kd_loss(student.logits, _teacher_logits(teacher, "kd"), labels, **params)


def _kd_check(params: Mapping[str, Any], num_classes: int) -> None:
    _checker({"ce_weight": _NONNEGATIVE, "kl_weight": _NONNEGATIVE,
              "temperature": _POSITIVE})(params, num_classes)
    validation.require_bool(params["scale_by_t2"], _field("scale_by_t2"))


def _route_pair_teacher(student: Outputs) -> Array:
    """The `route_pair`'s teacher logits, which it returns in the features slot."""
    if student.features is None:
        raise ValueError("loss 'online_route' needs the model 'route_pair' (its features "
                         "are the teacher's logits)")
    return student.features


def _online_route_terms(student, teacher, labels, rng, **params):
    del teacher, rng
    return online_route_loss_terms(student.logits, _route_pair_teacher(student), labels,
                                   **params)


# The weighted parts of the two-term losses (what a cyclic-schedule user plots): each adds
# up to its loss's `fn` by the same formula (tests/losses/test_registry.py).


def _tolerant_terms(student, teacher, labels, rng, *, eta=None, u=None, k=5):
    del teacher, rng
    return _tolerant_parts(student.logits, labels, _tolerant_eta(eta, u, k), k)


def _born_again_terms(student, teacher, labels, rng, *, label_weight=0.0, temperature=1.0):
    del rng
    return _born_again_parts(student.logits, _teacher_logits(teacher, "born_again"), labels,
                             label_weight, temperature)


def _sd_terms(student, teacher, labels, rng, *, temperature=2.0):
    del rng
    return _sd_parts(student.logits, _teacher_logits(teacher, "snapshot_distillation"),
                     labels, temperature)


def _kd_terms(student, teacher, labels, rng, **params):
    del rng
    return kd_loss_terms(student.logits, _teacher_logits(teacher, "kd"), labels, **params)


def _hint_terms(student, teacher, labels, rng, *, ce_weight=1.0, hint_weight=1.0):
    del rng
    if teacher is None or teacher.features is None or student.features is None:
        raise ValueError("loss 'hint' needs student and teacher features")
    return {"ce": ce_weight * cross_entropy(student.logits, labels),
            "hint": hint_weight * hint_loss(student.features, teacher.features)}


def _summed(terms: Callable[..., Mapping[str, Array]]) -> Callable[..., Array]:
    """A registry `fn` that is the sum of its `terms` (the loss's one formula)."""
    def fn(*args, **params):
        return sum_terms(terms(*args, **params))
    return fn


def _registry(*specs: LossSpec) -> Mapping[str, LossSpec]:
    return types.MappingProxyType({spec.name: spec for spec in specs})


LOSSES: Mapping[str, LossSpec] = _registry(
    LossSpec("cross_entropy", _ce_fn, False, {"label_smoothing": 0.0},
             _checker({"label_smoothing": _SMOOTHING})),
    LossSpec("confidence_penalty", _summed(_cp_terms), False, {"beta": 0.1},
             _checker({"beta": _NONNEGATIVE}), terms=_cp_terms),
    LossSpec("tolerant_teacher", _tolerant_fn, False, {"eta": None, "u": None, "k": 5},
             _tolerant_check, terms=_tolerant_terms),
    LossSpec("born_again", _born_again_fn, True, {"label_weight": 0.0, "temperature": 1.0},
             _checker({"label_weight": _WEIGHT, "temperature": _POSITIVE}),
             terms=_born_again_terms),
    LossSpec("ban_l", _summed(_ban_l_terms), True, {}, terms=_ban_l_terms),
    LossSpec("cwtm", _cwtm_fn, True, {}),
    LossSpec("dkpp", _dkpp_fn, True, {}),
    LossSpec("snapshot_distillation", _sd_fn, True, {"temperature": 2.0},
             _checker({"temperature": _POSITIVE}), terms=_sd_terms),
    LossSpec("kd", _kd_fn, True, {"ce_weight": 1.0, "kl_weight": 1.0, "temperature": 4.0,
                                  "scale_by_t2": True}, _kd_check, terms=_kd_terms),
    LossSpec("hint", _summed(_hint_terms), True, {"ce_weight": 1.0, "hint_weight": 1.0},
             _checker({"ce_weight": _NONNEGATIVE, "hint_weight": _NONNEGATIVE}),
             needs_features=True, terms=_hint_terms),
    LossSpec("online_route", _summed(_online_route_terms), False,
             {"kl_weight": 1.0, "temperature": 5.0, "teacher_weight": 1.0},
             _checker({"kl_weight": _NONNEGATIVE, "temperature": _POSITIVE,
                       "teacher_weight": _NONNEGATIVE}), needs_features=True,
             needs_model="route_pair", terms=_online_route_terms),
)


def names() -> list[str]:
    """Names of the registered losses, sorted."""
    return sorted(LOSSES)


def get(name: str) -> LossSpec:
    """The registered loss called ``name``.

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    return LOSSES[validation.require_choice(name, "config.loss.name", names())]
