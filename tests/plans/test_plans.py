"""The plan registry of jaxkd.plans: `build` (method -> phases, names unique, data streams),
`validate` (every check needing no data: fields, models, losses, schedules) and
`validate_losses` (each phase's loss against the class count), errors naming the field."""

import dataclasses

import pytest

from jaxkd import plans
from jaxkd.config import default_config
from tests.helpers import set_fields


def _config(method, **changes):
    c = default_config()
    c.method = method
    return set_fields(c, **changes)


def test_unknown_method_names_the_field():
    with pytest.raises(ValueError, match="config.method"):
        plans.build(_config("distill_everything"))


def test_every_method_has_a_plan_builder():
    assert sorted(plans.PLANS) == ["baseline", "born_again", "kd", "rco",
                                   "snapshot_distillation", "snapshot_ensemble",
                                   "tolerant_teacher"]
    assert set(plans.RCO_MODES) == {"one_stage", "multi_stage", "greedy", "kd", "online"}


def test_build_gives_every_phase_its_data_stream_and_init_key():
    plan = plans.build(_config("born_again", num_epochs=5, generations=2))
    assert [(p.data_epoch_offset, p.seed_index) for p in plan] == [(0, 0), (5, 1), (10, 2)]


def test_build_refuses_a_plan_that_repeats_a_phase_name(monkeypatch):
    def twice(config):
        (phase,) = plans.PLANS["baseline"](config)
        return [phase, dataclasses.replace(phase, init="continue")]
    monkeypatch.setitem(plans.PLANS, "twice", twice)
    with pytest.raises(ValueError, match=r"plan of 'twice' repeats a phase name: "
                                         r"\['baseline', 'baseline'\]"):
        plans.build(_config("twice"))


def test_phase_by_name_maps_names_in_plan_order():
    plan = plans.build(_config("born_again", generations=2))
    by_name = plans.phase_by_name(plan)
    assert list(by_name) == ["gen0", "gen1", "gen2"]
    assert by_name["gen1"] is plan[1]


def test_validate_returns_the_plan_of_build():
    config = _config("snapshot_distillation", num_epochs=8, **{"snapshot.cycles": 2})
    assert plans.validate(config) == plans.build(config)


@pytest.mark.parametrize("changes, message", [
    ({"model": "no_such_net"}, r"phase 'baseline': unknown model 'no_such_net' "
                               r"\(config.model / config.teacher.model\)"),
    ({"loss.name": "no_loss"}, r"config.loss.name must be one of \[.*'cross_entropy'"),
    ({"schedule.boundaries": (200,)}, r"config.schedule.boundaries must be strictly "
                                      r"increasing epochs in \(0, num_epochs=164\)"),
    ({"batch_size": 0}, r"config.batch_size must be an integer >= 1, got 0"),
])
def test_validate_names_the_field_of_a_bad_config(changes, message):
    with pytest.raises(ValueError, match=message):
        plans.validate(_config("baseline", **changes))


def test_validate_refuses_an_unknown_field():
    config = _config("baseline")
    with config.unlocked():
        config.schedule.baselr = 0.1
    with pytest.raises(ValueError, match="config.schedule.baselr is not a known field"):
        plans.validate(config)


def test_validate_losses_needs_a_teacher_and_the_right_model():
    plan = plans.build(_config("baseline", **{"loss.name": "kd"}))
    with pytest.raises(ValueError, match=r"phase 'baseline': loss 'kd' needs a teacher "
                                         r"\(config.loss.name\)"):
        plans.validate_losses(plan, 10)
    plan = plans.build(_config("baseline", **{"loss.name": "online_route"}))
    with pytest.raises(ValueError, match="loss 'online_route' needs the model 'route_pair', "
                                         "got 'resnet20'"):
        plans.validate_losses(plan, 10)
    plans.validate_losses(plans.build(_config("baseline")), 10)      # CE: fine


def test_validate_losses_names_the_group_the_parameter_came_from():
    """A TSD patriarch's k comes from config.tolerant_teacher, not config.loss."""
    plan = plans.build(_config("tolerant_teacher", generations=1,
                               **{"tolerant_teacher.k": 7}))
    with pytest.raises(ValueError, match="config.tolerant_teacher.k") as info:
        plans.validate_losses(plan, 5)
    assert "config.loss." not in str(info.value)
    plans.validate_losses(plan, 10)
