"""[RCO] Route constrained optimisation: the student follows anchor checkpoints of its
teacher's route, easy to hard; the greedy anchor rule of Algorithm 2 and the end of a greedy
route.

References:
    [RCO] Jin et al., "Knowledge Distillation via Route Constrained Optimization", ICCV 2019,
        Section 3, Algorithms 1 and 2, Table 6 (the RL row: `_rco_online`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from jaxkd import validation
from jaxkd.plans.phase import Phase, TeacherRef, items, make_phase, schedule_items


def _teacher_schedule(config) -> tuple:
    """The teacher's own schedule: `config.schedule` with `rco.teacher_lr`, then every field
    given in `config.rco.teacher_schedule` (RCO ImageNet: the teacher has lr 0.4 with drops
    at 15k/30k/45k of 50k iterations and a warm-up, the student lr 0.1 with drops at
    45k/75k/100k of 130k: [RCO] Sec. 4.2)."""
    own = config.rco.teacher_schedule
    own = dict(own.to_dict() if hasattr(own, "to_dict") else own)
    return schedule_items(config, **{"base_lr": config.rco.teacher_lr, **own})


def _rco_teacher(config) -> tuple[list[Phase], Callable[[int], TeacherRef], list[int]]:
    """The teacher run keeping anchors every M_gap epochs, or an existing teacher workdir."""
    rco = config.rco
    validation.require_int(rco.teacher_epochs, "config.rco.teacher_epochs", low=0)
    validation.require_int(rco.anchor_every_epochs, "config.rco.anchor_every_epochs", low=1)
    epochs = rco.teacher_epochs or config.num_epochs
    if epochs % rco.anchor_every_epochs:
        raise ValueError(f"config.rco.anchor_every_epochs={rco.anchor_every_epochs} must be "
                         f">= 1 and divide the teacher's {epochs} epochs")
    anchors = list(range(rco.anchor_every_epochs, epochs + 1, rco.anchor_every_epochs))
    model = config.teacher.model or config.model
    if rco.teacher_workdir:
        path = rco.teacher_workdir.rstrip("/") + "/phases/teacher"
        return [], lambda e: TeacherRef(checkpoint=path, anchor=e, model=model,
                                        model_overrides=items(config.teacher.model_overrides)
                                        ), anchors
    teacher = make_phase(config, "teacher", "teacher", model=model,
                     overrides=config.teacher.model_overrides, loss="cross_entropy",
                     loss_params={}, num_epochs=epochs, schedule=_teacher_schedule(config),
                     schedule_source=("config.rco.teacher_schedule"
                                      if len(config.rco.teacher_schedule) else "config.schedule"),
                     anchor_every_epochs=rco.anchor_every_epochs)
    return [teacher], lambda e: TeacherRef(phases=("teacher",), anchor=e), anchors


def _rco_stages(config, mode: str, n: int) -> list[dict]:
    """Epochs and schedule window of each of the n student stages of an RCO mode."""
    if mode in ("multi_stage", "greedy"):
        return [dict(num_epochs=config.num_epochs) for _ in range(n)]
    total = config.num_epochs
    if total % n:
        raise ValueError(f"config.num_epochs={total} must be a multiple of the {n} anchors "
                         f"(config.rco.anchor_every_epochs) in RCO mode {mode!r}")
    per = total // n
    return [dict(num_epochs=per, schedule_start_epoch=i * per, schedule_num_epochs=total)
            for i in range(n)]


RCO_MODES = ("one_stage", "multi_stage", "greedy", "kd", "online")


def _rco_online(config) -> list[Phase]:
    """[RCO] Table 6's RL row: the student learns from the teacher's every iteration.

    One phase trains the pair `route_pair` (teacher and student side by side, the same
    batches, `jaxkd.models.route_pair`) with the 'online_route' loss; the teacher's own
    learning rate is `config.optimizer.lr_scales.teacher` times the student's.
    """
    rco = config.rco
    if rco.teacher_epochs not in (0, config.num_epochs):
        raise ValueError(f"config.rco.teacher_epochs={rco.teacher_epochs} must be 0 or "
                         f"config.num_epochs={config.num_epochs} in RCO mode 'online' "
                         f"(teacher and student train together)")
    teacher = config.teacher.model or config.model
    overrides = dict(teacher_model=teacher, student_model=config.model,
                     teacher_overrides=items(config.teacher.model_overrides),
                     student_overrides=items(config.model_overrides))
    params = {"kl_weight": rco.kl_weight, "temperature": rco.temperature}
    return [make_phase(config, "route", "student", model="route_pair", overrides=overrides,
                   loss="online_route", loss_params=params, loss_source="config.rco")]


def rco_plan(config) -> list[Phase]:
    """[RCO]: the student follows anchor checkpoints of its teacher's route, easy to hard.

    Modes: 'one_stage' (Algorithm 1 in one schedule of E epochs, anchor i for E/n epochs),
    'multi_stage' (a full schedule per anchor, each stage initialised from the previous),
    'greedy' (Algorithm 2: multi-stage, each stage a full schedule on the anchor the greedy
    rule picks on the held-out split; the plan lists one stage per anchor, and the run
    stops after the stage that learned the last anchor, so the number of stages follows
    from the data: `trim_to_route`), 'kd' (only the converged teacher: plain
    Hinton KD), 'online' (Table 6's RL: an anchor at every iteration, i.e. teacher and
    student trained together, `_rco_online`).
    """
    rco = config.rco
    if rco.mode not in RCO_MODES:
        raise ValueError(f"config.rco.mode must be one of {list(RCO_MODES)}, got {rco.mode!r}")
    if rco.mode == "online":
        return _rco_online(config)
    teacher_phases, ref, anchors = _rco_teacher(config)
    kd = {"ce_weight": 1.0, "kl_weight": rco.kl_weight, "temperature": rco.temperature,
          "scale_by_t2": True}
    if rco.mode == "kd":
        anchors = anchors[-1:]
    if rco.mode == "greedy" and (isinstance(rco.delta, bool) or not isinstance(
            rco.delta, (int, float)) or not rco.delta >= 0 or rco.delta == float("inf")):
        raise ValueError(f"config.rco.delta must be a finite number >= 0, got {rco.delta!r}")
    students = []
    for i, (epoch, stage) in enumerate(zip(anchors, _rco_stages(config, rco.mode,
                                                                len(anchors)))):
        teacher = ref(epoch)
        if rco.mode == "greedy":
            teacher = dataclasses.replace(ref(anchors[-1]), select="greedy",
                                          route=tuple(anchors))
        students.append(make_phase(config, f"stage{i + 1}", "student",
                               init="fresh" if i == 0 else "continue", teacher=teacher,
                               loss="kd", loss_params=kd, loss_source="config.rco",
                               **stage))
    return teacher_phases + students


# -- Algorithm 2: the greedy rule and the end of a greedy route ----------------------------
def greedy_next_anchor(kl_to_anchor: Sequence[float], current: int, delta: float) -> int:
    """Index of the next anchor after `current`: [RCO] Algorithm 2.

    With H_j = KL(student || anchor_j) on the held-out split and
    r_ij = (H_j - H_i) / H_i, the loop runs j = i+1, ... while j < N and returns j - 1 at
    the first r_ij > delta; when none exceeds delta it returns N, the converged teacher
    (H_N itself is never compared). One deviation: where r_{i,i+1} > delta already,
    Algorithm 2 returns i, the anchor just learned, and a second full stage on it could
    repeat forever; the route advances to i + 1 instead, so it ends after at most N stages.

    Args:
        kl_to_anchor: H_j for every anchor j (0-based, ascending training time); only the
            entries current..N-2 are read.
        current: index i of the anchor the student has just learned from.
        delta: the threshold (0.8 in the paper).

    Returns:
        The index of the next anchor, in (current, len(kl_to_anchor) - 1].
    """
    last = len(kl_to_anchor) - 1
    if current >= last:
        return last
    h_i = max(float(kl_to_anchor[current]), 1e-12)
    for j in range(current + 1, last):          # while j < N (0-based: j < last)
        if (float(kl_to_anchor[j]) - h_i) / h_i > delta:
            return max(j - 1, current + 1)
    return last


def trim_to_route(plan: list, route: dict) -> list:
    """The plan up to the greedy stage that learned the last anchor (Algorithm 2's end).

    A greedy RCO plan lists one stage per anchor, the most Algorithm 2 can take; the run
    stops after the stage whose chosen anchor (`route`, plan index -> anchor index, as in
    `rco_route.json`) is the converged teacher.
    """
    for index, phase in enumerate(plan):
        ref = phase.teacher
        if ref is not None and ref.select == "greedy" and \
                route.get(str(index)) == len(ref.route) - 1:
            return plan[:index + 1]
    return plan
