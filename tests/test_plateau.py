"""[BAN] Sec. 4.2's adaptive learning rate: the rule by hand, the update scale inside the
optimiser state, bad fields, and a real run whose rate is cut on its held-out split."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxkd import plateau, schedules
from jaxkd import run as run_lib
from jaxkd import workdir as workdir_lib
from jaxkd.engine.writer import read_records
from jaxkd.workspace import Workspace
from tests.helpers import tiny_config, write_tiny_npz

RULE = plateau.Plateau(factor=0.25, threshold=0.0, monitor="perplexity")


def test_the_scale_is_cut_whenever_the_metric_is_not_below_the_best_by_hand():
    """Perplexities 100, 90, 95, 91, 80: the rate is cut after 95 (not below 90) and after
    91 (still not below the best, 90), never when a new best comes."""
    state = plateau.scale_by_plateau().init(None)
    scales = []
    for value in (100.0, 90.0, 95.0, 91.0, 80.0):
        state = plateau.decide(state, value, RULE)
        scales.append(float(state.plateau_scale))
    assert scales == [1.0, 1.0, 0.25, 0.0625, 0.0625]
    assert float(state.plateau_best) == 80.0


def test_a_threshold_asks_for_a_decrease_of_at_least_that_much():
    """The CNN-LSTM's rule ([BAN] Sec. 4.2): x0.5 unless perplexity drops by >= 0.5."""
    rule = plateau.Plateau(factor=0.5, threshold=0.5)
    state = plateau.scale_by_plateau().init(None)
    scales = []
    for value in (100.0, 99.6, 99.0, 98.4):
        state = plateau.decide(state, value, rule)
        scales.append(float(state.plateau_scale))
    assert scales == [1.0, 0.5, 0.5, 0.5]   # 99.6: 0.4 better (cut); 99.0, 98.4: >= 0.5


def test_packed_runs_each_follow_their_own_metric():
    state = plateau.PlateauState(jnp.ones([3]), jnp.array([10.0, 10.0, 3e38]))
    state = plateau.decide(state, np.array([9.0, 11.0, 50.0]), RULE)
    np.testing.assert_array_equal(state.plateau_scale, [1.0, 0.25, 1.0])
    np.testing.assert_array_equal(state.plateau_best, [9.0, 10.0, 50.0])


def test_the_scale_multiplies_the_whole_optimiser_update_and_lives_in_its_state():
    """SGD with momentum then the plateau scale: a cut scale is a cut learning rate, and
    `update` finds the scale inside a chain (tree_get by field name)."""
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.25])}
    tx = plateau.with_plateau(optax.sgd(0.1, momentum=0.9))
    opt_state = tx.init(params)
    assert float(plateau.scale_of(opt_state)) == 1.0
    full, _ = tx.update(grads, opt_state, params)

    class State:   # the TrainState's `replace(opt_state=...)`
        def __init__(self, opt_state):
            self.opt_state = opt_state

        def replace(self, opt_state):
            return State(opt_state)

    cut = plateau.update(State(tx.init(params)), [5.0], RULE)       # best: 5
    cut = plateau.update(cut, [7.0], RULE)                          # not better: x0.25
    assert float(plateau.scale_of(cut.opt_state)) == 0.25
    small, _ = tx.update(grads, cut.opt_state, params)
    np.testing.assert_allclose(small["w"], 0.25 * full["w"], rtol=1e-6)
    np.testing.assert_allclose(full["w"], [-0.05, -0.025], rtol=1e-6)
    assert plateau.scale_of(optax.sgd(0.1).init(params)) is None


def test_monitor_perplexity_is_exp_of_the_loss_and_loss_is_itself():
    np.testing.assert_allclose(RULE.metric([1.0, 2.0]), [math.e, math.e ** 2])
    np.testing.assert_allclose(plateau.Plateau(0.1, monitor="loss").metric([1.5]), [1.5])


@pytest.mark.parametrize("field, value, words", [
    ("factor", 1.0, "config.schedule.factor"),
    ("plateau_threshold", -1.0, "config.schedule.plateau_threshold"),
    ("plateau_monitor", "accuracy", "config.schedule.plateau_monitor"),
])
def test_bad_fields_are_named(field, value, words):
    cfg = {"name": "plateau", "base_lr": 1.0, "factor": 0.25, field: value}
    with pytest.raises(ValueError, match=words):
        schedules.build(cfg, steps_per_epoch=10, num_epochs=2)


def test_other_schedules_have_no_plateau_and_plateau_steps_are_constant():
    assert plateau.from_schedule({"name": "cosine", "base_lr": 0.1}) is None
    sched = schedules.build({"name": "plateau", "base_lr": 2.0}, steps_per_epoch=3,
                            num_epochs=2)
    assert [float(sched(s)) for s in (0, 5, 100)] == [2.0, 2.0, 2.0]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _plateau_config(npz, **changes):
    """Cut after every epoch but the first (the first value is always a new best): no
    held-out loss is below the best by 1e9."""
    return tiny_config(npz, "baseline", **{
        "num_epochs": 3, "schedule.name": "plateau", "schedule.base_lr": 0.05,
        "schedule.factor": 0.5, "schedule.plateau_threshold": 1e9, "schedule.plateau_monitor": "loss",
        "data.heldout_size": 16, "log_every_steps": 3, **changes})


def test_a_run_evaluates_its_heldout_split_each_epoch_and_cuts_the_rate(npz, tmp_path):
    results = run_lib.run(_plateau_config(npz), tmp_path)
    records = [r for _, r in read_records(workdir_lib.metrics_path(tmp_path))]
    heldout = [r for r in records if r["kind"] == "heldout"]
    assert [r["epoch"] for r in heldout] == [1, 2, 3]
    assert all(r["count"] == 16 for r in heldout)
    # 48 training images (16 held out), batch 16: 3 steps per epoch, one record each
    lrs = [r["lr"] for r in records if r["kind"] == "train"]
    assert lrs == pytest.approx([0.05, 0.05, 0.025])
    phase = results["phases"][0]
    assert phase["last_heldout_loss"] == pytest.approx(heldout[-1]["loss"])
    assert phase["best_heldout_perplexity"] == pytest.approx(
        math.exp(min(r["loss"] for r in heldout)))
    final = Workspace.from_workdir(tmp_path).final_state(0)
    assert float(plateau.scale_of(jax.device_get(final.opt_state))) == 0.25


def test_packed_runs_cut_and_record_their_own_rates(npz, tmp_path):
    results = run_lib.run(_plateau_config(npz, num_seeds=2, num_epochs=2), tmp_path)
    for seed, per_seed in zip((0, 1), results["per_seed"], strict=True):
        seed_dir = workdir_lib.seed_workdir(tmp_path, seed)
        records = [r for _, r in read_records(workdir_lib.metrics_path(seed_dir))]
        heldout = [r for r in records if r["kind"] == "heldout"]
        assert [r["epoch"] for r in heldout] == [1, 2]
        assert [r["lr"] for r in records if r["kind"] == "train"] == pytest.approx(
            [0.05, 0.05])
        assert per_seed["phases"][0]["last_heldout_loss"] == pytest.approx(
            heldout[-1]["loss"])


def test_plateau_without_a_validation_split_is_refused_naming_the_field(npz, tmp_path):
    with pytest.raises(ValueError, match="config.data.heldout_size"):
        run_lib.run(_plateau_config(npz, **{"data.heldout_size": 0}), tmp_path)
