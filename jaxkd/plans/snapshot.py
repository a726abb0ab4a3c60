"""[SD] Snapshot distillation: K mini-generations in one run, each cycle's last snapshot
teaching the next; and the snapshot-ensemble baseline.

References:
    [SD] Yang et al., "Snapshot Distillation: Teacher-Student Optimization in One
        Generation", CVPR 2019, Algorithm 1, Eqn 3 and Section 4.1.
"""

from __future__ import annotations

from jaxkd import validation
from jaxkd.plans.phase import Phase, TeacherRef, make_phase, schedule_items


def _cycle_epochs(config, cycles: int) -> int:
    validation.require_int(cycles, "config.snapshot.cycles", low=1)
    if config.num_epochs % cycles:
        raise ValueError(f"config.snapshot.cycles={cycles} must be >= 1 and divide "
                         f"config.num_epochs={config.num_epochs}")
    return config.num_epochs // cycles


def snapshot_distillation_plan(config) -> list[Phase]:
    """[SD]: K mini-generations in one run, each restarting a cosine learning rate.

    Every cycle restarts a cosine learning rate at `config.schedule.base_lr`.
    Mini-generation k continues the weights of k-1 and, from k = 2 on, learns from the
    snapshot at the end of k-1 with the asymmetric loss (Eqn 3, lambda_S = 1 + 1/T).
    With `config.snapshot.teacher = False` it is the snapshot-ensemble baseline.
    """
    sd = config.snapshot
    epochs = _cycle_epochs(config, sd.cycles)
    schedule = schedule_items(config, name="cosine", boundaries=())
    plan = []
    for k in range(1, sd.cycles + 1):
        distill = sd.teacher and k > 1
        plan.append(make_phase(
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
