"""jaxkd.plans.tolerant_teacher: [TT]'s patriarch (TSD, or the LSR / CP / CE baselines of
Table 2 and Figure 2) and the generations with the lambda mix."""

import pytest

from jaxkd import plans
from jaxkd.config import default_config
from tests.plans.test_plans import _config


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


def _tt(**changes):
    c = default_config()
    c.method, c.generations = "tolerant_teacher", 2
    for key, value in changes.items():
        c.tolerant_teacher[key] = value
    return c


def test_label_smoothing_patriarch_is_smoothed_cross_entropy():
    plan = plans.build(_tt(patriarch_loss="label_smoothing", label_smoothing=0.2))
    gen0 = plan[0]
    assert (gen0.name, gen0.role, gen0.teacher) == ("gen0", "patriarch", None)
    assert (gen0.loss, dict(gen0.loss_params)) == ("cross_entropy", {"label_smoothing": 0.2})
    assert [(p.loss, dict(p.loss_params)) for p in plan[1:]] == [
        ("born_again", {"label_weight": 0.6})] * 2          # LSR-0.6 of [TT] Figure 2
    plans.validate_losses(plan, 100)


def test_confidence_penalty_patriarch():
    plan = plans.build(_tt(patriarch_loss="confidence_penalty", beta=0.3))
    assert (plan[0].role, plan[0].loss, dict(plan[0].loss_params)) == (
        "patriarch", "confidence_penalty", {"beta": 0.3})
    assert plan[1].teacher.phases == ("gen0",)
    plans.validate_losses(plan, 100)


def test_cross_entropy_patriarch_and_u_one_agree():
    by_name = plans.build(_tt(patriarch_loss="cross_entropy"))[0]
    by_u = plans.build(_tt(u=1.0))[0]
    assert (by_name.loss, by_name.loss_params) == (by_u.loss, by_u.loss_params) == (
        "cross_entropy", ())


def test_patriarch_fields_are_validated_by_name():
    with pytest.raises(ValueError, match="config.tolerant_teacher.patriarch_loss"):
        plans.build(_tt(patriarch_loss="lsr"))
    plan = plans.build(_tt(patriarch_loss="label_smoothing", label_smoothing=1.5))
    with pytest.raises(ValueError, match="config.tolerant_teacher.label_smoothing"):
        plans.validate_losses(plan, 100)
    plan = plans.build(_tt(patriarch_loss="confidence_penalty", beta=-1.0))
    with pytest.raises(ValueError, match="config.tolerant_teacher.beta"):
        plans.validate_losses(plan, 100)


@pytest.mark.parametrize("u", [0.0, -0.5, 1.5])
def test_tolerant_teacher_u_outside_zero_one_names_the_field(u):
    with pytest.raises(ValueError, match=r"config.tolerant_teacher.u must be in \(0, 1\]"):
        plans.build(_tt(u=u))


def test_tolerant_teacher_generations_chain_and_name_their_loss_source():
    plan = plans.build(_tt(u=0.6, label_weight=0.3))
    assert [p.name for p in plan] == ["gen0", "gen1", "gen2"]
    assert [p.teacher.phases for p in plan[1:]] == [("gen0",), ("gen1",)]
    assert all(p.init == "fresh" for p in plan)
    assert {p.loss_source for p in plan} == {"config.tolerant_teacher"}
    assert dict(plan[2].loss_params) == {"label_weight": 0.3}
