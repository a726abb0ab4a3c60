"""Plans of one student phase: the baseline (CE, LSR, CP) and plain KD from a checkpoint.

References:
    [BAN] Furlanello et al., ICML 2018, Table 5 (cross-architecture students).
    [SD] Yang et al., CVPR 2019, Table 2 (students continued from a snapshot).
"""

from __future__ import annotations

from jaxkd import losses
from jaxkd.plans.phase import Phase, TeacherRef, items, make_phase, rest_of_schedule


def baseline_plan(config) -> list[Phase]:
    """One phase, fresh, no teacher; `config.loss` is CE, LSR or the CP baseline."""
    return [make_phase(config, "baseline", "baseline", **rest_of_schedule(config))]


def kd_plan(config) -> list[Phase]:
    """Plain KD: one fresh phase taught by a checkpoint on disk with `config.loss`.

    The teacher is `config.teacher.checkpoint` (a phase dir, its `final` folder, a
    `ckpt/<step>` or `anchors/<epoch>` folder) of architecture `config.teacher.model`
    (default `config.model`) with `config.teacher.model_overrides`: Hinton KD,
    cross-architecture students ([BAN] Table 5: with `config.init` and
    `config.optimizer.frozen` the student shares the teacher's conv1 and classifier,
    frozen) and [SD] Table 2 (`config.init.checkpoint` = the M#75 / M#150 snapshot,
    `config.init.epoch` = 75 / 150: the rest of the schedule).
    """
    t = config.teacher
    if not t.checkpoint:
        raise ValueError("config.teacher.checkpoint must name the teacher's checkpoint "
                         "with config.method='kd'")
    if not losses.get(config.loss.name).needs_teacher:
        raise ValueError(f"config.loss.name={config.loss.name!r} learns from no teacher; "
                         f"config.method='kd' needs a distillation loss such as 'kd'")
    overrides = t.model_overrides if t.model else config.model_overrides
    teacher = TeacherRef(checkpoint=t.checkpoint, model=t.model or config.model,
                         model_overrides=items(overrides))
    return [make_phase(config, "student", "student", teacher=teacher, **rest_of_schedule(config))]
