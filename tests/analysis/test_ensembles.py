"""jaxkd.analysis.ensembles: BANE, the TT ensemble, snapshot / SD ensembles ([BAN]
Section 3.2, [TT] Table 4, [SD] Section 4.1) and their prefixes."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import analysis, losses, plans
from jaxkd.analysis import stats as secondary
from jaxkd.config import default_config
from tests.plans.test_tolerant_teacher import _tt


def test_sd_scaling_changes_the_ensemble_prediction():
    first = np.array([[0.0, 2.0]])     # p = [0.119, 0.881]
    second = np.array([[1.5, 0.0]])    # p = [0.818, 0.182]; scaled by T=2: [0.953, 0.047]
    labels = np.array([0])
    scales = analysis.sd_ensemble_scales(2.0, 2)
    assert scales == [1.0, 2.0]
    assert analysis.ensemble_accuracy([first, second], labels)["top1"] == 0.0
    assert analysis.ensemble_accuracy([first, second], labels, scales)["top1"] == 1.0
    logits = {"cycle1": first, "cycle2": second}
    assert analysis.ensemble_of(logits, labels, ["cycle1", "cycle2"], scales)["top1"] == 1.0
    assert analysis.ensemble_of(logits, labels, ["cycle1"])["top1"] == 0.0


def test_ensemble_is_mean_of_softmax():
    a, b = np.array([[0.0, 1.0, 2.0]]), np.array([[2.0, 0.0, 0.0]])
    mean_p = (secondary.softmax(a) + secondary.softmax(b)) / 2
    out = np.asarray(losses.ensemble_logits([jnp.asarray(a), jnp.asarray(b)]))
    np.testing.assert_allclose(np.exp(out), mean_p, rtol=1e-5)


def test_cumulative_ensembles_cover_every_prefix():
    rng = np.random.default_rng(0)
    logits = {f"gen{i}": rng.normal(size=(20, 5)) for i in range(1, 4)}
    labels = rng.integers(0, 5, 20)
    rows = analysis.cumulative_ensembles(logits, labels, ["gen1", "gen2", "gen3"], [1, 2, 4])
    assert [r["members"] for r in rows] == [["gen1", "gen2"], ["gen1", "gen2", "gen3"]]
    assert rows[0]["scales"] == [1, 2]
    direct = analysis.ensemble_accuracy([logits["gen1"], logits["gen2"]], labels, [1, 2])
    assert rows[0]["top1"] == direct["top1"]


def test_ensemble_specs_of_plans():
    c = default_config()
    c.method, c.num_epochs, c.snapshot.cycles, c.snapshot.temperature = (
        "snapshot_distillation", 6, 3, 3.0)
    specs = {s["name"]: s for s in analysis.ensemble_specs(plans.build(c))}
    assert specs["sd_ensemble"]["scales"] == [1.0, 3.0, 9.0]
    assert specs["snapshot_ensemble"]["members"] == ["cycle1", "cycle2", "cycle3"]
    c = default_config()
    c.method, c.generations = "tolerant_teacher", 3
    bane, tt = analysis.ensemble_specs(plans.build(c))
    assert bane["members"] == ["gen1", "gen2", "gen3"] and bane["scales"] is None
    # [TT] Table 4 ensembles "the last epochs of all generations": its Gen #1 column
    # (20.20% < 21.29% single) already holds two models, so the patriarch is a member.
    assert tt["name"] == "tt_ensemble" and tt["members"] == ["gen0", "gen1", "gen2", "gen3"]
    c.generations = 1
    assert [s["name"] for s in analysis.ensemble_specs(plans.build(c))] == ["tt_ensemble"]
    c.method = "born_again"
    assert analysis.ensemble_specs(plans.build(c)) == []


@pytest.mark.parametrize("kind", ["label_smoothing", "confidence_penalty"])
def test_baseline_patriarchs_get_the_tt_ensemble(kind):
    """results.json's tt_ensemble averages the patriarch and the generations."""
    plan = plans.build(_tt(patriarch_loss=kind))
    names = [p.name for p in plan]
    specs = {s["name"]: [names.index(m) for m in s["members"]]
             for s in analysis.ensemble_specs(plan)}
    assert specs["tt_ensemble"] == [0, 1, 2]


def test_sd_ensemble_scales_are_powers_of_the_temperature():
    assert analysis.sd_ensemble_scales(3.0, 4) == [1.0, 3.0, 9.0, 27.0]
    assert analysis.sd_ensemble_scales(2.0, 1) == [1.0]


def test_ensemble_accuracy_of_one_member_is_its_accuracy():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 2.0, 1.0]])
    labels = np.array([0, 0, 1])
    out = analysis.ensemble_accuracy([logits], labels)
    assert out["top1"] == pytest.approx(2 / 3)
    assert out["top5"] == 1.0                           # 3 classes: every label is in the top 5


def test_ensemble_specs_of_rco_and_baseline_plans_are_empty():
    for method in ("baseline", "rco"):
        c = default_config()
        c.method, c.num_epochs = method, 160
        assert analysis.ensemble_specs(plans.build(c)) == []


def _evaluation(plan, logits, labels):
    return analysis.Evaluation("test", plan, logits, None, labels, None, "", ("a", "b", "c"))


def test_workdir_ensembles_name_every_prefix():
    c = default_config()
    c.method, c.generations = "born_again", 3
    plan = plans.build(c)
    rng = np.random.default_rng(1)
    logits = {p.name: rng.normal(size=(12, 3)) for p in plan}
    labels = rng.integers(0, 3, 12)
    out = analysis.workdir_ensembles(_evaluation(plan, logits, labels))
    assert list(out) == ["bane[gen1..gen2]", "bane[gen1..gen3]"]
    assert out["bane[gen1..gen3]"]["members"] == ["gen1", "gen2", "gen3"]
    direct = analysis.ensemble_accuracy([logits["gen1"], logits["gen2"]], labels)
    assert out["bane[gen1..gen2]"]["top1"] == direct["top1"]
    # A member without a checkpoint (an unfinished run): that ensemble is skipped.
    del logits["gen3"]
    assert analysis.workdir_ensembles(_evaluation(plan, logits, labels)) == {}
