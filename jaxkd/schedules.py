"""Learning-rate schedules of the four papers, built from optax primitives.

Every schedule maps the phase-local step (0-based) to a learning rate and works under
``jax.jit``. ``build`` turns a ``config.schedule`` mapping into a schedule; its errors name
the config field (``config.schedule.boundaries ...``).

References:
  [SD]  Yang et al., "Snapshot Distillation: Teacher-Student Optimization in One
        Generation", CVPR 2019, Eqn 5 (cyclic cosine with restarts).
  [TT]  Yang et al., "Knowledge Distillation in Generations", Sec. 4 (step decay at 50% and
        75% of training: 82/123 of 164 epochs, 150/225 of 300).
  [RCO] Jin et al., "Knowledge Distillation via Route Constrained Optimization", Sec. 4.1
        (step decay at 150/180/210 of 240 epochs).
  Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax.numpy as jnp
import optax

from jaxkd import plateau
from jaxkd.validation import fail, is_number, require_choice, require_int, require_number


def step_decay(base_lr: float, *, boundaries_epochs: Sequence[float], steps_per_epoch: int,
               factor: float = 0.1) -> optax.Schedule:
    """``base_lr * factor^(number of boundaries passed)``.

    The new value applies from the first step of the boundary epoch, i.e. at
    ``step == round(boundary * steps_per_epoch)``.

    Args:
      base_lr: initial learning rate (> 0).
      boundaries_epochs: strictly increasing epochs (> 0) at which the rate is multiplied.
      steps_per_epoch: optimizer steps per epoch (>= 1).
      factor: multiplier at each boundary (>= 0).

    Returns:
      An optax schedule.

    References:
      [TT] Sec. 4 (82/123 of 164 epochs, 150/225 of 300); [RCO] Sec. 5.
    """
    base_lr = require_number(base_lr, "base_lr", low=0.0, low_open=True)
    steps_per_epoch = require_int(steps_per_epoch, "steps_per_epoch", low=1)
    factor = require_number(factor, "factor", low=0.0)
    steps = [round(float(b) * steps_per_epoch) for b in boundaries_epochs]
    if any(s <= 0 for s in steps) or any(b >= a for b, a in zip(steps, steps[1:])):
        fail("boundaries_epochs", "must be strictly increasing and > 0", list(boundaries_epochs))
    return optax.piecewise_constant_schedule(base_lr, {s: factor for s in steps})


def cosine(base_lr: float, *, total_steps: int, final_lr: float = 0.0) -> optax.Schedule:
    """Cosine decay from ``base_lr`` at step 0 to ``final_lr`` at ``total_steps`` (then flat).

    Args:
      base_lr: initial learning rate (> 0).
      total_steps: length of the decay (>= 1).
      final_lr: value at and after ``total_steps`` (in ``[0, base_lr]``).

    Returns:
      An optax schedule.

    References:
      Loshchilov & Hutter 2017, Eqn 5 (one cycle, no restart).
    """
    base_lr = require_number(base_lr, "base_lr", low=0.0, low_open=True)
    total_steps = require_int(total_steps, "total_steps", low=1)
    final_lr = require_number(final_lr, "final_lr", low=0.0)
    if final_lr > base_lr:
        fail("final_lr", f"must be <= base_lr ({base_lr:g})", final_lr)
    return optax.cosine_decay_schedule(base_lr, total_steps, alpha=final_lr / base_lr)


def cyclic_cosine(peak_lrs: Sequence[float], cycle_steps: Sequence[int]) -> optax.Schedule:
    """Cosine cycles with restarts: ``0.5 * alpha_k * (1 + cos(pi * (l - L'_{k-1}) / L_k))``.

    Cycle k starts at ``L'_{k-1} = L_1 + ... + L_{k-1}`` with the value ``alpha_k`` (the
    restart happens exactly at that step) and decays towards 0 over ``L_k`` steps. After the
    last cycle the rate is 0.

    Args:
      peak_lrs: ``alpha_1..alpha_K`` (each > 0).
      cycle_steps: ``L_1..L_K`` (each >= 1), same length as ``peak_lrs``.

    Returns:
      An optax schedule.

    References:
      [SD] Eqn 5; Loshchilov & Hutter 2017 (SGDR).
    """
    peak_lrs, cycle_steps = list(peak_lrs), list(cycle_steps)
    if not peak_lrs or len(peak_lrs) != len(cycle_steps):
        raise ValueError("peak_lrs and cycle_steps must be non-empty and of equal length, got "
                         f"{len(peak_lrs)} and {len(cycle_steps)}")
    for k, (peak, length) in enumerate(zip(peak_lrs, cycle_steps)):
        require_number(peak, f"peak_lrs[{k}]", low=0.0, low_open=True)
        require_int(length, f"cycle_steps[{k}]", low=1)
    cycles = [optax.cosine_decay_schedule(float(p), int(n))
              for p, n in zip(peak_lrs, cycle_steps)]
    starts = [sum(cycle_steps[:k]) for k in range(1, len(cycle_steps))]
    return optax.join_schedules(cycles, starts)


def warmup(schedule: optax.Schedule, *, warmup_steps: int,
           init_lr: float = 0.0) -> optax.Schedule:
    """Linear warmup in front of ``schedule``, which is not shifted.

    For ``step < warmup_steps`` the rate ramps linearly from ``init_lr`` (at step 0) to
    ``schedule(warmup_steps)``; from ``warmup_steps`` on it is ``schedule(step)``. The warmup
    thus replaces the first ``warmup_steps`` of the schedule and the total length and every
    boundary stay where they were. ``warmup_steps = 0`` returns ``schedule`` itself.

    Args:
      schedule: any optax schedule.
      warmup_steps: length of the ramp (>= 0).
      init_lr: rate at step 0 (>= 0).

    Returns:
      An optax schedule.

    References:
      Goyal et al., "Accurate, Large Minibatch SGD", 2017, Sec. 2.2 (gradual warmup).
    """
    warmup_steps = require_int(warmup_steps, "warmup_steps", low=0)
    init_lr = require_number(init_lr, "init_lr", low=0.0)
    if warmup_steps == 0:
        return schedule
    target = float(schedule(warmup_steps))
    ramp = optax.linear_schedule(init_lr, target, warmup_steps)

    def warmed_up(step):
        return jnp.where(step < warmup_steps, ramp(step), schedule(step))

    return warmed_up


_NAMES = ("constant", "step", "cosine", "cyclic_cosine", "plateau")
_FIELDS = ("name", "base_lr", "boundaries", "factor", "cycles", "warmup_epochs", "final_lr",
           "plateau_threshold", "plateau_monitor")
_DEFAULTS = {"factor": 0.1, "warmup_epochs": 0, "final_lr": 0.0}


def _field(name: str) -> str:
    return f"config.schedule.{name}"


def _read(schedule_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config as a dict with defaults; unknown fields are an error."""
    cfg = dict(schedule_cfg.items())
    unknown = sorted(set(cfg) - set(_FIELDS))
    if unknown:
        fail(_field(unknown[0]), f"is not a schedule field; allowed: {list(_FIELDS)}")
    require_choice(cfg.get("name"), _field("name"), list(_NAMES))
    if "base_lr" not in cfg:
        fail(_field("base_lr"), "is required")
    return {**_DEFAULTS, **cfg}


def _check_boundaries(boundaries: Any, num_epochs: int) -> list[float]:
    ok = isinstance(boundaries, Sequence) and not isinstance(boundaries, str) and all(
        is_number(b) for b in boundaries)
    ok = ok and all(0 < b < num_epochs for b in boundaries)
    ok = ok and all(a < b for a, b in zip(boundaries, boundaries[1:]))
    if not ok:
        fail(_field("boundaries"),
             f"must be strictly increasing epochs in (0, num_epochs={num_epochs})", boundaries)
    return [float(b) for b in boundaries]


def _base(cfg: Mapping[str, Any], total_steps: int, steps_per_epoch: int,
          num_epochs: int) -> optax.Schedule:
    """The schedule named by ``cfg['name']``, before warmup."""
    base_lr = require_number(cfg["base_lr"], _field("base_lr"), low=0.0, low_open=True)
    name = cfg["name"]
    if name in ("constant", "plateau"):   # plateau: cut by jaxkd.plateau, not by the step
        return optax.constant_schedule(base_lr)
    if name == "step":
        boundaries = _check_boundaries(cfg.get("boundaries"), num_epochs)
        factor = require_number(cfg["factor"], _field("factor"), low=0.0)
        return step_decay(base_lr, boundaries_epochs=boundaries,
                          steps_per_epoch=steps_per_epoch, factor=factor)
    if name == "cosine":
        final_lr = require_number(cfg["final_lr"], _field("final_lr"), low=0.0)
        if final_lr > base_lr:
            fail(_field("final_lr"), f"must be <= base_lr ({base_lr:g})", final_lr)
        return cosine(base_lr, total_steps=total_steps, final_lr=final_lr)
    cycles = require_int(cfg.get("cycles"), _field("cycles"), low=1)
    if cycles > total_steps:
        fail(_field("cycles"), f"must be <= the number of steps ({total_steps})", cycles)
    ends = [k * total_steps // cycles for k in range(cycles + 1)]
    return cyclic_cosine([base_lr] * cycles, [b - a for a, b in zip(ends, ends[1:])])


def build(schedule_cfg: Mapping[str, Any], *, steps_per_epoch: int,
          num_epochs: int) -> optax.Schedule:
    """The schedule described by ``config.schedule`` over one phase's steps.

    Fields: ``name`` in {'constant', 'step', 'cosine', 'cyclic_cosine', 'plateau'};
    ``base_lr``;
    ``boundaries`` (epochs, for 'step'); ``factor`` (0.1, for 'step'); ``final_lr`` (0.0,
    for 'cosine'); ``cycles`` (K, for 'cyclic_cosine': K cycles of equal length over the
    phase, each peaking at ``base_lr``; when the steps do not divide evenly the cycle ends
    are rounded down to whole steps); ``warmup_epochs`` (0; see ``warmup``); for 'plateau'
    (``base_lr`` here, cut by ``factor`` on a validation plateau: ``jaxkd.plateau``)
    ``plateau_threshold`` and ``plateau_monitor``. Fields that the chosen name does not use
    are ignored.

    Args:
      schedule_cfg: a mapping or ``ml_collections.ConfigDict``.
      steps_per_epoch: optimizer steps per epoch (>= 1).
      num_epochs: epochs in the phase (>= 1).

    Returns:
      An optax schedule of the phase-local step.

    Raises:
      ValueError: naming ``config.schedule.<field>`` and the bad value.

    References:
      [TT] Sec. 4, [RCO] Sec. 5 (step); [SD] Eqn 5 (cyclic_cosine).
    """
    steps_per_epoch = require_int(steps_per_epoch, "steps_per_epoch", low=1)
    num_epochs = require_int(num_epochs, "num_epochs", low=1)
    cfg = _read(schedule_cfg)
    plateau.from_schedule(cfg)   # its fields are checked with the others
    total_steps = steps_per_epoch * num_epochs
    schedule = _base(cfg, total_steps, steps_per_epoch, num_epochs)
    warmup_epochs = require_number(cfg["warmup_epochs"], _field("warmup_epochs"), low=0.0)
    if warmup_epochs >= num_epochs and warmup_epochs > 0:
        fail(_field("warmup_epochs"), f"must be < num_epochs ({num_epochs})", warmup_epochs)
    return warmup(schedule, warmup_steps=round(warmup_epochs * steps_per_epoch))
