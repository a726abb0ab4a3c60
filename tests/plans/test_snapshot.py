"""jaxkd.plans.snapshot: [SD]'s K mini-generations in one run and the snapshot ensemble."""

import pytest

from jaxkd import plans
from tests.plans.test_plans import _config


def test_snapshot_distillation_cycles():
    plan = plans.build(_config("snapshot_distillation", num_epochs=164, **{
        "snapshot.cycles": 4, "snapshot.temperature": 3.0}))
    assert [p.num_epochs for p in plan] == [41, 41, 41, 41]
    assert [p.init for p in plan] == ["fresh", "continue", "continue", "continue"]
    assert plan[0].teacher is None and plan[0].loss == "cross_entropy"
    for prev, phase in zip(plan, plan[1:]):
        assert phase.teacher.phases == (prev.name,)
        assert phase.loss == "snapshot_distillation"
        assert dict(phase.loss_params) == {"temperature": 3.0}
    assert all(dict(p.schedule)["name"] == "cosine" for p in plan)


def test_snapshot_ensemble_has_no_teacher_term():
    plan = plans.build(_config("snapshot_ensemble", num_epochs=8, **{"snapshot.cycles": 4}))
    assert all(p.teacher is None and p.loss == "cross_entropy" for p in plan)
    assert [p.init for p in plan][1:] == ["continue"] * 3


def test_snapshot_cycles_must_divide_epochs():
    with pytest.raises(ValueError, match="config.snapshot.cycles"):
        plans.build(_config("snapshot_distillation", num_epochs=10, **{"snapshot.cycles": 4}))


@pytest.mark.parametrize("cycles", [0, -2])
def test_snapshot_cycles_must_be_a_positive_integer(cycles):
    with pytest.raises(ValueError, match="config.snapshot.cycles"):
        plans.build(_config("snapshot_distillation", num_epochs=8,
                            **{"snapshot.cycles": cycles}))


def test_snapshot_cycles_restart_a_cosine_whatever_the_configured_schedule():
    plan = plans.build(_config("snapshot_distillation", num_epochs=6, **{
        "snapshot.cycles": 3, "schedule.name": "step", "schedule.boundaries": (2, 4),
        "schedule.base_lr": 0.2}))
    for phase in plan:
        schedule = dict(phase.schedule)
        assert (schedule["name"], schedule["boundaries"], schedule["base_lr"]) == (
            "cosine", (), 0.2)
        assert phase.num_epochs == 2 and phase.role == "mini_generation"


def test_snapshot_ensemble_leaves_the_callers_config_alone():
    config = _config("snapshot_ensemble", num_epochs=4, **{"snapshot.cycles": 2})
    assert config.snapshot.teacher
    plans.build(config)
    assert config.snapshot.teacher                   # the plan worked on a copy
