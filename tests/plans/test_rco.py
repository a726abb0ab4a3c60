"""jaxkd.plans.rco: [RCO]'s teacher run with anchors, the student stages of every mode, the
greedy rule of Algorithm 2 (`greedy_next_anchor`) and the end of a greedy route
(`trim_to_route`)."""

import pytest

from jaxkd import plans
from tests.plans.test_plans import _config


def test_rco_one_stage_follows_anchors_in_order():
    plan = plans.build(_config("rco", num_epochs=240, **{
        "rco.anchor_every_epochs": 60, "rco.teacher_epochs": 240, "teacher.model": "resnet56"}))
    teacher, *stages = plan
    assert teacher.anchor_every_epochs == 60 and teacher.model == "resnet56"
    assert [s.teacher.anchor for s in stages] == [60, 120, 180, 240]
    assert [s.schedule_start_epoch for s in stages] == [0, 60, 120, 180]
    assert all(s.schedule_num_epochs == 240 and s.num_epochs == 60 for s in stages)
    assert [s.init for s in stages] == ["fresh", "continue", "continue", "continue"]
    assert dict(stages[0].loss_params)["temperature"] == 5.0


def test_rco_multi_stage_and_kd():
    multi = plans.build(_config("rco", num_epochs=30, **{
        "rco.mode": "multi_stage", "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 30}))
    assert [s.num_epochs for s in multi[1:]] == [30, 30, 30]
    kd = plans.build(_config("rco", num_epochs=30, **{
        "rco.mode": "kd", "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 30}))
    assert len(kd) == 2 and kd[1].teacher.anchor == 30 and kd[1].init == "fresh"


def test_rco_teacher_from_existing_workdir():
    plan = plans.build(_config("rco", num_epochs=20, **{
        "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 20,
        "rco.teacher_workdir": "/runs/teacher", "teacher.model": "resnet56"}))
    assert [p.role for p in plan] == ["student", "student"]
    assert plan[0].teacher.checkpoint == "/runs/teacher/phases/teacher"
    assert plan[1].teacher.anchor == 20


def test_rco_greedy_is_multi_stage_with_a_full_schedule_per_anchor():
    """[RCO] Algorithm 2 as in the paper: every chosen anchor gets a full schedule."""
    plan = plans.build(_config("rco", num_epochs=30, **{
        "rco.mode": "greedy", "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 30}))
    students = plan[1:]
    assert len(students) == 3                        # at most one stage per anchor
    assert all(s.teacher.select == "greedy" and s.teacher.route == (10, 20, 30)
               for s in students)
    assert all(s.num_epochs == 30 and s.schedule_num_epochs == 0 for s in students)
    assert [s.init for s in students] == ["fresh", "continue", "continue"]


def test_rco_greedy_route_ends_at_the_last_anchor():
    plan = plans.build(_config("rco", num_epochs=30, **{
        "rco.mode": "greedy", "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 30}))
    assert plans.trim_to_route(plan, {"1": 0}) == plan
    assert plans.trim_to_route(plan, {"1": 0, "2": 2}) == plan[:3]    # stage2 took anchor N
    assert plans.trim_to_route(plan, {"1": 0, "2": 1, "3": 2}) == plan


def test_rco_teacher_has_its_own_schedule():
    """RCO ImageNet: teacher lr 0.4 with its own drops and warm-up, student lr 0.1."""
    plan = plans.build(_config("rco", num_epochs=40, **{
        "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 20,
        "schedule.name": "step", "schedule.base_lr": 0.1, "schedule.boundaries": (20, 30),
        "rco.teacher_schedule": {"base_lr": 0.4, "boundaries": (6, 12, 18),
                                 "warmup_epochs": 1}}))
    teacher, student = dict(plan[0].schedule), dict(plan[1].schedule)
    assert (teacher["base_lr"], teacher["boundaries"], teacher["warmup_epochs"]) == \
        (0.4, (6, 12, 18), 1)
    assert (student["base_lr"], student["boundaries"], student["warmup_epochs"]) == \
        (0.1, (20, 30), 0)
    bad = _config("rco", num_epochs=40, **{"rco.anchor_every_epochs": 10,
                                           "rco.teacher_epochs": 20,
                                           "rco.teacher_schedule": {"boundaries": (30,)}})
    with pytest.raises(ValueError, match="config.rco.teacher_schedule.boundaries"):
        plans.validate(bad)


@pytest.mark.parametrize("h,current,delta,expected", [
    ([1.0, 1.5, 1.7, 2.5], 0, 0.8, 3),   # r = .5, .7 for j < N: none exceeds -> N
    ([1.0, 1.5, 2.0, 2.5, 9.0], 0, 0.8, 1),   # r = .5, then 1.0 at j=2 -> j - 1 = 1
    ([1.0, 1.5, 1.7, 1.75], 0, 0.8, 3),  # never exceeds -> the last anchor
    ([1.0, 2.0, 3.0, 4.0], 0, 0.8, 1),   # exceeds at once: Algorithm 2 says i; advance by one
    ([2.0, 1.0, 2.5, 3.0, 3.7], 1, 0.8, 2),   # from anchor 1: r = 1.5 at j=2 -> advance to 2
    ([2.0, 1.0, 1.2, 1.79, 1.81], 1, 0.8, 4),  # r = .2, .79 for j < N; H_N never compared
    ([2.0, 1.0, 1.2, 1.81, 1.0], 1, 0.8, 2),   # r = .2, .81 at j=3 -> j - 1 = 2
    ([1.0, 1.0], 1, 0.8, 1),
    ([1.0, float("nan")], 0, 0.8, 1),    # j < N: H_N is not even computed
])
def test_greedy_next_anchor_rule(h, current, delta, expected):
    assert plans.greedy_next_anchor(h, current, delta) == expected


def test_rco_online_is_one_phase_of_the_route_pair():
    """[RCO] Table 6's RL row: teacher and student side by side in one phase."""
    (phase,) = plans.build(_config("rco", num_epochs=30, model="resnet20", **{
        "rco.mode": "online", "teacher.model": "resnet56", "rco.kl_weight": 0.5,
        "rco.temperature": 4.0}))
    assert (phase.name, phase.model, phase.loss, phase.teacher) == (
        "route", "route_pair", "online_route", None)
    assert dict(phase.model_overrides) == {"teacher_model": "resnet56",
                                           "student_model": "resnet20",
                                           "teacher_overrides": (), "student_overrides": ()}
    assert dict(phase.loss_params) == {"kl_weight": 0.5, "temperature": 4.0}
    assert phase.num_epochs == 30


@pytest.mark.parametrize("changes, message", [
    ({"rco.mode": "two_stage"}, r"config.rco.mode must be one of \['one_stage', "
                                r"'multi_stage', 'greedy', 'kd', 'online'\], got 'two_stage'"),
    ({"rco.mode": "online", "rco.teacher_epochs": 20},
     r"config.rco.teacher_epochs=20 must be 0 or config.num_epochs=30 in RCO mode 'online'"),
    ({"rco.anchor_every_epochs": 7},
     r"config.rco.anchor_every_epochs=7 must be >= 1 and divide the teacher's 30 epochs"),
    ({"rco.anchor_every_epochs": 0}, r"config.rco.anchor_every_epochs must be an integer"),
    ({"rco.mode": "greedy", "rco.delta": -1.0}, r"config.rco.delta must be a finite number "
                                                r">= 0, got -1.0"),
    ({"rco.mode": "greedy", "rco.delta": float("inf")}, r"config.rco.delta must be a finite"),
])
def test_rco_errors_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        plans.build(_config("rco", num_epochs=30, **{"rco.teacher_epochs": 30, **changes}))


def test_rco_one_stage_epochs_must_split_over_the_anchors():
    with pytest.raises(ValueError, match=r"config.num_epochs=25 must be a multiple of the 3 "
                                         r"anchors .* in RCO mode 'one_stage'"):
        plans.build(_config("rco", num_epochs=25, **{"rco.anchor_every_epochs": 10,
                                                     "rco.teacher_epochs": 30}))


def test_rco_teacher_epochs_zero_means_the_students_epochs():
    teacher, *stages = plans.build(_config("rco", num_epochs=30, **{
        "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 0}))
    assert (teacher.num_epochs, teacher.loss, teacher.role) == (30, "cross_entropy", "teacher")
    assert [s.teacher.anchor for s in stages] == [10, 20, 30]
    assert dict(teacher.schedule)["base_lr"] == 0.05          # config.rco.teacher_lr


def test_trim_to_route_keeps_a_plan_without_greedy_stages():
    plan = plans.build(_config("rco", num_epochs=30, **{
        "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 30}))
    assert plans.trim_to_route(plan, {"1": 2}) == plan
    assert plans.trim_to_route(plan, {}) == plan


@pytest.mark.parametrize("current", [3, 4])
def test_greedy_next_anchor_from_the_last_anchor_stays_there(current):
    assert plans.greedy_next_anchor([1.0, 2.0, 3.0, 4.0], current, 0.8) == 3
