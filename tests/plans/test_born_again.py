"""jaxkd.plans.born_again: [BAN] generation 0, then generations each taught by the last."""

import pytest

from jaxkd import plans
from tests.plans.test_plans import _config


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


@pytest.mark.parametrize("variant", ["ban", "ban_l", "cwtm", "dkpp"])
def test_born_again_label_weight_where_the_variant_ignores_it_is_refused(variant):
    config = _config("born_again", generations=1, **{"born_again.variant": variant,
                                                     "born_again.label_weight": 0.5})
    with pytest.raises(ValueError, match="config.born_again.label_weight=0.5 is read only"):
        plans.build(config)
    config.born_again.variant = "lambda"
    assert dict(plans.build(config)[1].loss_params) == {"label_weight": 0.5}


def test_born_again_unknown_variant_names_the_field():
    with pytest.raises(ValueError, match=r"config.born_again.variant must be one of "
                                         r"\['ban', 'ban_l', 'cwtm', 'dkpp', 'lambda'\], "
                                         r"got 'banana'"):
        plans.build(_config("born_again", **{"born_again.variant": "banana"}))


def test_born_again_zero_generations_is_generation_zero_alone():
    (gen0,) = plans.build(_config("born_again", generations=0))
    assert (gen0.name, gen0.role, gen0.teacher, gen0.loss) == ("gen0", "teacher", None,
                                                                 "cross_entropy")


def test_born_again_students_keep_their_own_architecture_and_loss_source():
    plan = plans.build(_config("born_again", generations=2, model="resnet20",
                               model_overrides={"width": 2},
                               **{"teacher.model": "resnet56",
                                  "teacher.model_overrides": {"depth": 3}}))
    assert (plan[0].model, plan[0].model_overrides) == ("resnet56", (("depth", 3),))
    assert all((p.model, p.model_overrides) == ("resnet20", (("width", 2),))
               for p in plan[1:])
    assert [p.role for p in plan] == ["teacher", "generation", "generation"]
    assert all(p.loss_source == "config.born_again" for p in plan[1:])
