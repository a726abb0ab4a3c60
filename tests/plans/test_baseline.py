"""jaxkd.plans.baseline: the one-phase baseline (CE / LSR / CP) and plain KD from a
checkpoint on disk."""

import pytest

from jaxkd import plans
from tests.plans.test_plans import _config


def test_baseline_is_one_fresh_phase_without_teacher():
    (phase,) = plans.build(_config("baseline"))
    assert (phase.init, phase.teacher, phase.loss) == ("fresh", None, "cross_entropy")
    assert dict(phase.schedule)["boundaries"] == (82, 123)


def test_baseline_loss_parameters_come_from_config_loss():
    (phase,) = plans.build(_config("baseline", **{"loss.label_smoothing": 0.1}))
    assert (phase.name, phase.role, phase.loss) == ("baseline", "baseline", "cross_entropy")
    assert dict(phase.loss_params) == {"label_smoothing": 0.1}
    assert phase.loss_source == "config.loss"


def test_baseline_from_a_snapshot_runs_the_rest_of_the_schedule():
    """[SD] Table 2: init.epoch = 75 of 300 -> 225 epochs from the schedule's epoch 75."""
    (phase,) = plans.build(_config("baseline", num_epochs=300, **{
        "init.checkpoint": "/runs/bl/phases/baseline", "init.epoch": 75}))
    assert (phase.num_epochs, phase.schedule_start_epoch, phase.schedule_num_epochs) == \
        (225, 75, 300)


def test_kd_is_one_student_taught_by_the_checkpoint():
    (phase,) = plans.build(_config("kd", model="resnet20", **{
        "teacher.checkpoint": "/runs/t/phases/gen0", "teacher.model": "resnet56",
        "teacher.model_overrides": {"width": 2}, "loss.name": "kd"}))
    assert (phase.name, phase.role, phase.init, phase.model, phase.loss) == (
        "student", "student", "fresh", "resnet20", "kd")
    assert phase.teacher == plans.TeacherRef(checkpoint="/runs/t/phases/gen0",
                                             model="resnet56",
                                             model_overrides=(("width", 2),))


def test_kd_teacher_defaults_to_the_students_architecture():
    (phase,) = plans.build(_config("kd", model="resnet20", **{
        "teacher.checkpoint": "/ckpt", "loss.name": "kd"}))
    assert (phase.teacher.model, phase.teacher.checkpoint) == ("resnet20", "/ckpt")


@pytest.mark.parametrize("changes, field", [
    ({"loss.name": "kd"}, "config.teacher.checkpoint must name"),
    ({"teacher.checkpoint": "/ckpt"}, "config.loss.name='cross_entropy' learns from no teacher"),
])
def test_kd_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        plans.build(_config("kd", **changes))
