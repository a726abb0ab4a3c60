"""Methods as plans: each paper's procedure is a list of phases for the one engine.

`build(config)` is pure: it reads the config only. The phases are `jaxkd.plans.phase.Phase`;
each paper's plan lives in its own module (`baseline`, `born_again`, `tolerant_teacher`,
`snapshot`, `rco`), and `PLANS` maps `config.method` to it. `validate(config)` is every
check that needs no data and no compile: the config's fields, the plan, each phase's
model, loss and schedule.

References:
    [BAN] Furlanello et al., "Born-Again Neural Networks", ICML 2018.
    [TT] Yang et al., "Knowledge Distillation in Generations: More Tolerant Teachers Educate
        Better Students", 2018.
    [SD] Yang et al., "Snapshot Distillation: Teacher-Student Optimization in One
        Generation", CVPR 2019.
    [RCO] Jin et al., "Knowledge Distillation via Route Constrained Optimization", ICCV 2019.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from jaxkd import config as config_lib
from jaxkd import losses, models, schedules
from jaxkd.plans.baseline import baseline_plan, kd_plan
from jaxkd.plans.born_again import born_again_plan
from jaxkd.plans.phase import Phase, TeacherRef, describe_teacher, with_data_streams
from jaxkd.plans.rco import RCO_MODES, greedy_next_anchor, rco_plan, trim_to_route
from jaxkd.plans.snapshot import snapshot_distillation_plan, snapshot_ensemble_plan
from jaxkd.plans.tolerant_teacher import tolerant_teacher_plan

__all__ = ["PLANS", "Phase", "RCO_MODES", "TeacherRef", "build", "describe_teacher",
           "greedy_next_anchor", "phase_by_name", "trim_to_route", "validate",
           "validate_losses", "with_data_streams"]

PLANS: dict[str, Callable[[Any], list[Phase]]] = {
    "baseline": baseline_plan,
    "kd": kd_plan,
    "born_again": born_again_plan,
    "tolerant_teacher": tolerant_teacher_plan,
    "snapshot_distillation": snapshot_distillation_plan,
    "snapshot_ensemble": snapshot_ensemble_plan,
    "rco": rco_plan,
}


def build(config) -> list[Phase]:
    """The plan of `config.method`, its losses validated against the class count.

    Raises:
        ValueError: naming the config field, before anything is compiled.
    """
    if config.method not in PLANS:
        raise ValueError(f"config.method must be one of {sorted(PLANS)}, got "
                         f"{config.method!r}")
    plan = with_data_streams(PLANS[config.method](config))
    names = [p.name for p in plan]
    if len(set(names)) != len(names):
        raise ValueError(f"plan of {config.method!r} repeats a phase name: {names}")
    return plan


def validate_losses(plan: list[Phase], num_classes: int) -> None:
    """Checks every phase's loss and its hyper-parameters.

    Errors name the field the user set: `config.loss.*`, or the method's group
    (`config.tolerant_teacher.k`, `config.snapshot.temperature`, ...) where the plan
    took the parameter from there.
    """
    for phase in plan:
        spec = losses.get(phase.loss)
        try:
            spec.validate(dict(phase.loss_params), num_classes)
        except ValueError as err:
            if phase.loss_source == "config.loss":
                raise
            raise ValueError(str(err).replace("config.loss.", phase.loss_source + ".")) \
                from err
        if spec.needs_model and phase.model != spec.needs_model:
            raise ValueError(f"phase {phase.name!r}: loss {phase.loss!r} needs the model "
                             f"{spec.needs_model!r}, got {phase.model!r} (config.loss.name)")
        if spec.needs_teacher and phase.teacher is None:
            raise ValueError(f"phase {phase.name!r}: loss {phase.loss!r} needs a teacher "
                             f"(config.loss.name)")


def phase_by_name(plan: list[Phase]) -> Mapping[str, Phase]:
    return {p.name: p for p in plan}


def validate(config) -> list[Phase]:
    """Every check that needs no data and no compile; returns the plan.

    Raises:
        ValueError: naming the config field (the group the user set: a teacher's own
            schedule names `config.rco.teacher_schedule`).
    """
    config_lib.check_known_fields(config)
    config_lib.validate_engine_fields(config)
    plan = build(config)
    known = set(models.list_models())
    for phase in plan:
        if phase.model not in known:
            raise ValueError(f"phase {phase.name!r}: unknown model {phase.model!r} "
                             f"(config.model / config.teacher.model); known: {sorted(known)}")
        losses.get(phase.loss)
        try:
            schedules.build(dict(phase.schedule), steps_per_epoch=1,
                            num_epochs=phase.schedule_num_epochs or phase.num_epochs)
        except ValueError as err:
            raise ValueError(str(err).replace("config.schedule.", phase.schedule_source + ".")
                             ) from err
    return plan
