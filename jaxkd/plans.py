"""Methods as plans: each paper's procedure is a list of phases for the one engine.

A phase trains the student once: from a fresh init (a new generation) or continuing the
previous phase's weights (snapshot distillation, RCO stages), with an optional teacher (an
earlier phase, one of its anchor checkpoints, a checkpoint on disk, or an ensemble), a loss
by name and a learning-rate schedule. `build(config)` is pure: it reads the config only.

References:
    [BAN] Furlanello et al., "Born-Again Neural Networks", ICML 2018.
    [TT] Yang et al., "Knowledge Distillation in Generations: More Tolerant Teachers Educate
        Better Students", 2018.
    [SD] Yang et al., "Snapshot Distillation: Teacher-Student Optimization in One
        Generation", CVPR 2019.
    [RCO] Jin et al., "Knowledge Distillation via Route Constrained Optimization", ICCV 2019.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from jaxkd import losses

ROLES = ("baseline", "teacher", "patriarch", "generation", "mini_generation", "student")


@dataclasses.dataclass(frozen=True)
class TeacherRef:
    """Where a phase's teacher comes from.

    Attributes:
        phases: earlier phases whose final states teach; more than one is an ensemble.
        anchor: with one phase, use its anchor checkpoint of this epoch instead of its final.
        checkpoint: a checkpoint on disk (phase dir, `final` folder or step folder).
        model: the teacher's architecture when it is a checkpoint on disk.
        model_overrides: that architecture's overrides.
        select: 'greedy' lets the runner pick the anchor by RCO's Algorithm 2.
        route: with select='greedy', the anchor epochs to choose from.
    """

    phases: tuple[str, ...] = ()
    anchor: int = 0
    checkpoint: str = ""
    model: str = ""
    model_overrides: tuple = ()
    select: str = ""
    route: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Phase:
    """One training run of the student inside a plan."""

    name: str
    role: str
    init: str                        # 'fresh' | 'continue'
    model: str
    model_overrides: tuple
    teacher: TeacherRef | None
    loss: str
    loss_params: tuple
    num_epochs: int
    schedule: tuple                  # items of a schedule config (see jaxkd.schedules.build)
    schedule_start_epoch: int = 0    # the schedule is evaluated from this epoch on ...
    schedule_num_epochs: int = 0     # ... of a schedule this long (0: num_epochs)
    anchor_every_epochs: int = 0     # keep anchor checkpoints (RCO teacher run)
    seed_index: int = 0              # which init key a fresh phase draws
    loss_source: str = "config.loss"  # the config group loss_params come from (errors)
    data_epoch_offset: int = 0       # the phase's epoch e draws the run's data epoch e + this
    schedule_source: str = "config.schedule"  # the config group `schedule` comes from


def with_data_streams(plan: list[Phase]) -> list[Phase]:
    """Gives every phase its own data epochs and every fresh phase its own init key.

    The run's data is one sequence of epochs (an epoch's order and augmentation follow
    from (seed, epoch), `jaxkd.data.pipeline`). Phase i draws the epochs right after
    those of phases 0..i-1, so
      * a `continue` phase (an SD mini-generation, an RCO stage) carries on its
        predecessor's epochs: K snapshot cycles see exactly the batches of one
        uninterrupted schedule of the same length ([SD] Algorithm 1 is one run);
      * a fresh generation draws epochs no earlier phase saw: its own stream, as the
        papers' "a different random seed" ([BAN] Sec. 3, [TT] Sec. 3.2);
    and the first phase keeps epochs 0.., so a baseline or a generation 0 is what it
    always was. A fresh phase's init key is its plan position (RCO's student no longer
    shares its teacher's init). Adding generations to a finished plan leaves the earlier
    phases' streams unchanged.
    """
    out, offset = [], 0
    for index, phase in enumerate(plan):
        out.append(dataclasses.replace(phase, data_epoch_offset=offset, seed_index=index))
        offset += phase.num_epochs
    return out


def _items(mapping) -> tuple:
    return tuple(sorted(dict(mapping).items()))


def _schedule(config, **changes) -> tuple:
    sched = dict(config.schedule.to_dict() if hasattr(config.schedule, "to_dict")
                 else config.schedule)
    sched.update(changes)
    sched["boundaries"] = tuple(sched.get("boundaries", ()))
    return _items(sched)


def _loss_params(config) -> dict:
    params = dict(config.loss.to_dict() if hasattr(config.loss, "to_dict") else config.loss)
    params.pop("name", None)
    return params


def _phase(config, name, role, *, init="fresh", teacher=None, loss=None, loss_params=None,
           model=None, overrides=None, num_epochs=None, schedule=None, **extra):
    overrides = config.model_overrides if overrides is None else overrides
    return Phase(name=name, role=role, init=init, model=model or config.model,
                 model_overrides=_items(overrides), teacher=teacher,
                 loss=loss or config.loss.name,
                 loss_params=_items(_loss_params(config) if loss_params is None
                                    else loss_params),
                 num_epochs=num_epochs or config.num_epochs,
                 schedule=schedule or _schedule(config), **extra)


def _rest_of_schedule(config) -> dict:
    """With `config.init.epoch = E`: the epochs E+1..N of an N-epoch schedule.

    [SD] Table 2: the snapshot M#75 of a 300-epoch run continues 225 epochs from the
    schedule's epoch 75 (with new data order and augmentation, and its own teacher).
    """
    epoch = config.get("init", {}).get("epoch", 0)
    if not epoch:
        return {}
    return dict(num_epochs=config.num_epochs - epoch, schedule_start_epoch=epoch,
                schedule_num_epochs=config.num_epochs)


def baseline_plan(config) -> list[Phase]:
    """One phase, fresh, no teacher; `config.loss` is CE, LSR or the CP baseline."""
    return [_phase(config, "baseline", "baseline", **_rest_of_schedule(config))]


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
                         model_overrides=_items(overrides))
    return [_phase(config, "student", "student", teacher=teacher, **_rest_of_schedule(config))]


_BAN_VARIANTS: dict[str, Callable[[Any], tuple[str, dict]]] = {
    "ban": lambda c: ("born_again", {"label_weight": 0.0}),
    "ban_l": lambda c: ("ban_l", {}),
    "cwtm": lambda c: ("cwtm", {}),
    "dkpp": lambda c: ("dkpp", {}),
    "lambda": lambda c: ("born_again", {"label_weight": c.born_again.label_weight}),
}


def _generations(config, first: Phase, loss: str, params: dict,
                 source: str) -> list[Phase]:
    """Generations 1..M: fresh init, teacher = the previous generation's final state."""
    plan, previous = [first], first.name
    for m in range(1, config.generations + 1):
        plan.append(_phase(config, f"gen{m}", "generation", loss=loss,
                           loss_params=params, teacher=TeacherRef(phases=(previous,)),
                           loss_source=source))
        previous = plan[-1].name
    return plan


def born_again_plan(config) -> list[Phase]:
    """[BAN]: generation 0 with CE, then M born-again generations (variant by name).

    `config.teacher.model` (if set) makes generation 0 another architecture: DenseNet
    teacher -> ResNet students and back ([BAN] Tables 3 and 5).
    """
    variant = config.born_again.variant
    if variant not in _BAN_VARIANTS:
        raise ValueError(f"config.born_again.variant must be one of {sorted(_BAN_VARIANTS)}, "
                         f"got {variant!r}")
    weight = config.born_again.label_weight
    if variant != "lambda" and weight != 0:
        raise ValueError(f"config.born_again.label_weight={weight!r} is read only by "
                         f"config.born_again.variant='lambda' (variant {variant!r} ignores "
                         f"it); set the variant to 'lambda' or leave the weight at 0")
    loss, params = _BAN_VARIANTS[variant](config)
    gen0 = _phase(config, "gen0", "teacher", model=config.teacher.model or config.model,
                  overrides=(config.teacher.model_overrides if config.teacher.model
                             else config.model_overrides))
    return _generations(config, gen0, loss, params, "config.born_again")


def tolerant_teacher_plan(config) -> list[Phase]:
    """[TT] D(u, lambda): a patriarch trained with the TSD loss, then M generations.

    u = 1 is a CE patriarch (so D(1.0, 0.5) is born-again training with lambda = 0.5).
    `config.tolerant_teacher.patriarch_loss` swaps the patriarch for a baseline of [TT]
    Table 2 / Figure 2 (u and k are then unused): 'label_smoothing' (LSR: CE with
    eps = `config.tolerant_teacher.label_smoothing`), 'confidence_penalty' (CP:
    CE - beta * H, beta = `config.tolerant_teacher.beta`) or 'cross_entropy'.
    """
    tt = config.tolerant_teacher
    patriarchs = {
        "tolerant_teacher": ("tolerant_teacher", lambda: {"u": tt.u, "k": tt.k}),
        "cross_entropy": ("cross_entropy", dict),
        "label_smoothing": ("cross_entropy", lambda: {"label_smoothing": tt.label_smoothing}),
        "confidence_penalty": ("confidence_penalty", lambda: {"beta": tt.beta}),
    }
    kind = tt.patriarch_loss
    if kind not in patriarchs:
        raise ValueError(f"config.tolerant_teacher.patriarch_loss must be one of "
                         f"{list(patriarchs)}, got {kind!r}")
    if kind == "tolerant_teacher":
        if isinstance(tt.u, bool) or not isinstance(tt.u, (int, float)) or not 0 < tt.u <= 1:
            raise ValueError(f"config.tolerant_teacher.u must be in (0, 1], got {tt.u!r}")
        kind = "cross_entropy" if tt.u >= 1.0 else kind
    loss, params = patriarchs[kind]
    patriarch = _phase(config, "gen0", "patriarch", loss=loss, loss_params=params(),
                       loss_source="config.tolerant_teacher")
    return _generations(config, patriarch, "born_again", {"label_weight": tt.label_weight},
                        "config.tolerant_teacher")


def _check_int(value, field: str, low: int) -> None:
    """Raises a ValueError naming `field` unless `value` is an integer >= `low`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")


def _cycle_epochs(config, cycles: int) -> int:
    _check_int(cycles, "config.snapshot.cycles", 1)
    if config.num_epochs % cycles:
        raise ValueError(f"config.snapshot.cycles={cycles} must be >= 1 and divide "
                         f"config.num_epochs={config.num_epochs}")
    return config.num_epochs // cycles


def snapshot_distillation_plan(config) -> list[Phase]:
    """[SD]: K mini-generations in one run, each restarting a cosine learning rate.

    Mini-generation k continues the weights of k-1 and, from k = 2 on, learns from the
    snapshot at the end of k-1 with the asymmetric loss (Eqn 3, lambda_S = 1 + 1/T).
    With `config.snapshot.teacher = False` it is the snapshot-ensemble baseline.
    """
    sd = config.snapshot
    epochs = _cycle_epochs(config, sd.cycles)
    schedule = _schedule(config, name="cosine", base_lr=sd.peak_lr, boundaries=())
    plan = []
    for k in range(1, sd.cycles + 1):
        distill = sd.teacher and k > 1
        plan.append(_phase(
            config, f"cycle{k}", "mini_generation", init="fresh" if k == 1 else "continue",
            teacher=TeacherRef(phases=(plan[-1].name,)) if distill else None,
            loss="snapshot_distillation" if distill else "cross_entropy",
            loss_params={"temperature": sd.temperature} if distill else {},
            loss_source="config.snapshot",
            num_epochs=epochs, schedule=schedule))
    return plan


def snapshot_ensemble_plan(config) -> list[Phase]:
    """Snapshot ensembles: the SD schedule without the teacher term."""
    config = config.copy_and_resolve_references()
    config.snapshot.teacher = False
    return snapshot_distillation_plan(config)


def _rco_teacher_schedule(config) -> tuple:
    """The teacher's own schedule: `config.schedule` with `rco.teacher_lr`, then every field
    given in `config.rco.teacher_schedule` (RCO ImageNet: the teacher has lr 0.4 with drops
    at 15k/30k/45k of 50k iterations and a warm-up, the student lr 0.1 with drops at
    45k/75k/100k of 130k: [RCO] Sec. 4.2)."""
    own = config.rco.teacher_schedule
    own = dict(own.to_dict() if hasattr(own, "to_dict") else own)
    return _schedule(config, **{"base_lr": config.rco.teacher_lr, **own})


def _rco_teacher(config) -> tuple[list[Phase], Callable[[int], TeacherRef], list[int]]:
    """The teacher run keeping anchors every M_gap epochs, or an existing teacher workdir."""
    rco = config.rco
    _check_int(rco.teacher_epochs, "config.rco.teacher_epochs", 0)
    _check_int(rco.anchor_every_epochs, "config.rco.anchor_every_epochs", 1)
    epochs = rco.teacher_epochs or config.num_epochs
    if epochs % rco.anchor_every_epochs:
        raise ValueError(f"config.rco.anchor_every_epochs={rco.anchor_every_epochs} must be "
                         f">= 1 and divide the teacher's {epochs} epochs")
    anchors = list(range(rco.anchor_every_epochs, epochs + 1, rco.anchor_every_epochs))
    model = rco.teacher_model or config.teacher.model or config.model
    if rco.teacher_workdir:
        path = rco.teacher_workdir.rstrip("/") + "/phases/teacher"
        return [], lambda e: TeacherRef(checkpoint=path, anchor=e, model=model,
                                        model_overrides=_items(config.teacher.model_overrides)
                                        ), anchors
    teacher = _phase(config, "teacher", "teacher", model=model,
                     overrides=config.teacher.model_overrides, loss="cross_entropy",
                     loss_params={}, num_epochs=epochs, schedule=_rco_teacher_schedule(config),
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
    teacher = rco.teacher_model or config.teacher.model or config.model
    overrides = dict(teacher_model=teacher, student_model=config.model,
                     teacher_overrides=_items(config.teacher.model_overrides),
                     student_overrides=_items(config.model_overrides))
    params = {"kl_weight": rco.kl_weight, "temperature": rco.temperature}
    return [_phase(config, "route", "student", model="route_pair", overrides=overrides,
                   loss="online_route", loss_params=params, loss_source="config.rco")]


def rco_plan(config) -> list[Phase]:
    """[RCO]: the student follows anchor checkpoints of its teacher's route, easy to hard.

    Modes: 'one_stage' (Algorithm 1 in one schedule of E epochs, anchor i for E/n epochs),
    'multi_stage' (a full schedule per anchor, each stage initialised from the previous),
    'greedy' (Algorithm 2: multi-stage, each stage a full schedule on the anchor the greedy
    rule picks on the held-out split; the plan lists one stage per anchor, and the run
    stops after the stage that learned the last anchor, so the number of stages follows
    from the data: `jaxkd.rco.trim_to_route`), 'kd' (only the converged teacher: plain
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
        students.append(_phase(config, f"stage{i + 1}", "student",
                               init="fresh" if i == 0 else "continue", teacher=teacher,
                               loss="kd", loss_params=kd, loss_source="config.rco",
                               **stage))
    return teacher_phases + students


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
