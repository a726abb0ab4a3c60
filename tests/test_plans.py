"""Plan builders produce the phases each paper describes, from the config alone."""

import pytest

from jaxkd import plans
from jaxkd.config import default_config
from tests.helpers import set_fields


def _config(method, **changes):
    c = default_config()
    c.method = method
    return set_fields(c, **changes)


def test_baseline_is_one_fresh_phase_without_teacher():
    (phase,) = plans.build(_config("baseline"))
    assert (phase.init, phase.teacher, phase.loss) == ("fresh", None, "cross_entropy")
    assert dict(phase.schedule)["boundaries"] == (82, 123)


@pytest.mark.parametrize("variant,loss,params", [
    ("ban", "born_again", {"label_weight": 0.0}),
    ("ban_l", "ban_l", {}),
    ("cwtm", "cwtm", {}),
    ("dkpp", "dkpp", {}),
])
def test_born_again_generations_chain_their_teachers(variant, loss, params):
    plan = plans.build(_config("born_again", generations=3, **{"born_again.variant": variant}))
    assert [p.name for p in plan] == ["gen0", "gen1", "gen2", "gen3"]
    assert plan[0].teacher is None and plan[0].loss == "cross_entropy"
    for prev, phase in zip(plan, plan[1:]):
        assert phase.init == "fresh"
        assert phase.teacher.phases == (prev.name,)
        assert (phase.loss, dict(phase.loss_params)) == (loss, params)
        assert phase.schedule == plan[0].schedule          # same schedule as the teacher
    assert len({p.seed_index for p in plan}) == 4           # a new random init each


def test_born_again_cross_architecture_teacher():
    plan = plans.build(_config("born_again", generations=1, model="resnet56",
                               **{"teacher.model": "densenet_bc_100_12"}))
    assert plan[0].model == "densenet_bc_100_12" and plan[1].model == "resnet56"


def test_tolerant_teacher_patriarch_and_lambda_mix():
    plan = plans.build(_config("tolerant_teacher", generations=2,
                               **{"tolerant_teacher.u": 0.6, "tolerant_teacher.label_weight": 0.6}))
    assert plan[0].loss == "tolerant_teacher"
    assert dict(plan[0].loss_params) == {"u": 0.6, "k": 5}
    assert all(dict(p.loss_params) == {"label_weight": 0.6} for p in plan[1:])
    assert [p.loss for p in plan[1:]] == ["born_again", "born_again"]


def test_tolerant_teacher_u_one_is_born_again_with_ce_patriarch():
    plan = plans.build(_config("tolerant_teacher", generations=1,
                               **{"tolerant_teacher.u": 1.0, "tolerant_teacher.label_weight": 0.5}))
    assert plan[0].loss == "cross_entropy"
    assert dict(plan[1].loss_params) == {"label_weight": 0.5}


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


def test_unknown_method_names_the_field():
    with pytest.raises(ValueError, match="config.method"):
        plans.build(_config("distill_everything"))


@pytest.mark.parametrize("variant", ["ban", "ban_l", "cwtm", "dkpp"])
def test_born_again_label_weight_where_the_variant_ignores_it_is_refused(variant):
    config = _config("born_again", generations=1, **{"born_again.variant": variant,
                                                     "born_again.label_weight": 0.5})
    with pytest.raises(ValueError, match="config.born_again.label_weight=0.5 is read only"):
        plans.build(config)
    config.born_again.variant = "lambda"
    assert dict(plans.build(config)[1].loss_params) == {"label_weight": 0.5}
