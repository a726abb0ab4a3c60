"""A plan's unit: `Phase` (one training run of the student) and `TeacherRef` (where its
teacher comes from), with the helpers every paper's plan builds phases with.

A phase trains the student once: from a fresh init (a new generation) or continuing the
previous phase's weights (snapshot distillation, RCO stages), with an optional teacher (an
earlier phase, one of its anchor checkpoints, a checkpoint on disk, or an ensemble), a loss
by name and a learning-rate schedule.

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

    def describe(self) -> str:
        """A short human description for logs and reports, e.g. 'gen1', 'teacher anchor
        20', 'greedy anchor of teacher', 'runs/t/phases/teacher' or 'gen1+gen2'."""
        where = self.checkpoint or "+".join(self.phases)
        if self.select:
            return f"{self.select} anchor of {where}"
        return f"{where} anchor {self.anchor}" if self.anchor else where


def describe_teacher(ref: TeacherRef | None) -> str:
    """`ref.describe()`, or 'none' for a phase without a teacher."""
    return "none" if ref is None else ref.describe()


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
    from (seed, epoch), `jaxkd.data.batching`). Phase i draws the epochs right after
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


def items(mapping) -> tuple:
    return tuple(sorted(dict(mapping).items()))


def schedule_items(config, **changes) -> tuple:
    sched = dict(config.schedule.to_dict() if hasattr(config.schedule, "to_dict")
                 else config.schedule)
    sched.update(changes)
    sched["boundaries"] = tuple(sched.get("boundaries", ()))
    return items(sched)


def loss_params_of(config) -> dict:
    params = dict(config.loss.to_dict() if hasattr(config.loss, "to_dict") else config.loss)
    params.pop("name", None)
    return params


def make_phase(config, name, role, *, init="fresh", teacher=None, loss=None, loss_params=None,
           model=None, overrides=None, num_epochs=None, schedule=None, **extra):
    overrides = config.model_overrides if overrides is None else overrides
    return Phase(name=name, role=role, init=init, model=model or config.model,
                 model_overrides=items(overrides), teacher=teacher,
                 loss=loss or config.loss.name,
                 loss_params=items(loss_params_of(config) if loss_params is None
                                    else loss_params),
                 num_epochs=num_epochs or config.num_epochs,
                 schedule=schedule or schedule_items(config), **extra)


def rest_of_schedule(config) -> dict:
    """With `config.init.epoch = E`: the epochs E+1..N of an N-epoch schedule.

    [SD] Table 2: the snapshot M#75 of a 300-epoch run continues 225 epochs from the
    schedule's epoch 75 (with new data order and augmentation, and its own teacher).
    """
    epoch = config.get("init", {}).get("epoch", 0)
    if not epoch:
        return {}
    return dict(num_epochs=config.num_epochs - epoch, schedule_start_epoch=epoch,
                schedule_num_epochs=config.num_epochs)
