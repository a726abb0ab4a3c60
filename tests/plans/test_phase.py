"""jaxkd.plans.phase: `TeacherRef` (and how logs describe it), and every phase its own
data: continued phases carry on the run's epochs, fresh ones draw new.

Before, each phase replayed epochs 0.. of the seed's stream: SD mini-generations 2..K saw
mini-generation 1's exact batches and every BAN student its teacher's ([SD] Algorithm 1 is
one run of L iterations; [BAN]/[TT] students use "a different random seed").
"""
import hashlib

import numpy as np
import pytest

from jaxkd import plans, run as run_lib
from jaxkd.config import default_config
from jaxkd.data import pipeline as pipeline_lib
from jaxkd.plans import phase as phase_lib
from tests.helpers import crash_after, tiny_config, write_tiny_npz
from tests.plans.test_plans import _config
from tests.test_run import _assert_same_tree, _final_params


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _plan(method, **changes):
    return plans.build(_config(method, **changes))


def test_phases_draw_consecutive_epochs_of_the_run():
    sd = _plan("snapshot_distillation", num_epochs=8, **{"snapshot.cycles": 4})
    assert [p.data_epoch_offset for p in sd] == [0, 2, 4, 6]
    ban = _plan("born_again", num_epochs=3, generations=2)
    assert [p.data_epoch_offset for p in ban] == [0, 3, 6]
    rco = _plan("rco", num_epochs=21, **{"rco.teacher_epochs": 30,
                                         "rco.anchor_every_epochs": 10})
    offsets = [p.data_epoch_offset for p in rco]
    assert offsets[0] == 0 and offsets[1] == 30
    assert all(b - a == p.num_epochs for a, b, p in zip(offsets, offsets[1:], rco))
    # Fresh phases draw distinct init keys (RCO's student no longer shares its teacher's).
    assert len({p.seed_index for p in rco}) == len(rco)


def test_adding_generations_keeps_earlier_streams():
    two = _plan("born_again", num_epochs=3, generations=1)
    three = _plan("born_again", num_epochs=3, generations=2)
    assert three[:2] == two


def _record_first_batches(monkeypatch):
    """Records (data epoch, digest of the first batch's images) of every epoch drawn."""
    seen, real = [], pipeline_lib.DevicePipeline.train_batches

    def recording(self, epoch, start_step=0):
        for i, batch in enumerate(real(self, epoch, start_step)):
            if i == 0:
                digest = hashlib.sha256(np.asarray(batch["image"]).tobytes()).hexdigest()
                seen.append((epoch, start_step, digest))
            yield batch
    monkeypatch.setattr(pipeline_lib.DevicePipeline, "train_batches", recording)
    return seen


def test_generations_draw_their_own_batches(npz, tmp_path, monkeypatch):
    seen = _record_first_batches(monkeypatch)
    run_lib.run(tiny_config(npz, "born_again", generations=1), tmp_path)
    assert [e for e, _, _ in seen] == [0, 1, 2, 3]      # gen0: epochs 0-1, gen1: 2-3
    assert len({d for _, _, d in seen}) == 4            # no epoch repeats another's batches


def test_snapshot_cycles_equal_one_continuous_schedule(npz, tmp_path, caplog):
    """K snapshot cycles (no teacher) = one baseline run of the same cyclic cosine, bit-exact.

    The continued cycles keep weights, BatchNorm statistics and momentum; with the data
    now continuing too, nothing distinguishes them from one uninterrupted run.
    """
    caplog.set_level("INFO", logger="jaxkd.engine.loop")
    cycles = run_lib.run(tiny_config(npz, "snapshot_ensemble", num_epochs=4,
                                     **{"snapshot.cycles": 2, "schedule.base_lr": 0.05}),
                         tmp_path / "sd")
    one = run_lib.run(tiny_config(npz, "baseline", num_epochs=4,
                                  **{"schedule.name": "cyclic_cosine", "schedule.cycles": 2,
                                     "schedule.base_lr": 0.05}), tmp_path / "one")
    _assert_same_tree(_final_params(tmp_path / "sd", "cycle2"),
                      _final_params(tmp_path / "one", "baseline"))
    # The evaluations at every epoch agree as well (cycle 2's epochs are the run's 3 and 4).
    sd_hist = [r["top1"] for p in cycles["phases"] for r in p["history"]]
    assert sd_hist == [r["top1"] for r in one["phases"][0]["history"]]


def test_resumed_continued_phase_equals_uninterrupted(npz, tmp_path, monkeypatch):
    config = tiny_config(npz, "snapshot_distillation", num_epochs=4, checkpoint_every_steps=3,
                         **{"snapshot.cycles": 2, "schedule.base_lr": 0.05})
    run_lib.run(config, tmp_path / "full")
    with monkeypatch.context() as m:
        crash_after(m, 10)                       # cycle1 has 8 steps: crash inside cycle2
        with pytest.raises(KeyboardInterrupt):
            run_lib.run(config, tmp_path / "crashed")
    run_lib.run(config, tmp_path / "crashed")
    for phase in ("cycle1", "cycle2"):
        _assert_same_tree(_final_params(tmp_path / "full", phase),
                          _final_params(tmp_path / "crashed", phase))


# -- TeacherRef.describe ------------------------------------------------------------------
@pytest.mark.parametrize("ref, text", [
    (plans.TeacherRef(phases=("gen1",)), "gen1"),
    (plans.TeacherRef(phases=("gen1", "gen2")), "gen1+gen2"),
    (plans.TeacherRef(phases=("teacher",), anchor=20), "teacher anchor 20"),
    (plans.TeacherRef(phases=("teacher",), anchor=30, select="greedy", route=(10, 20, 30)),
     "greedy anchor of teacher"),
    (plans.TeacherRef(checkpoint="runs/t/phases/teacher", model="resnet56"),
     "runs/t/phases/teacher"),
    (plans.TeacherRef(checkpoint="runs/t/phases/teacher", anchor=10),
     "runs/t/phases/teacher anchor 10"),
    (plans.TeacherRef(checkpoint="runs/t/phases/teacher", select="greedy", route=(10, 20)),
     "greedy anchor of runs/t/phases/teacher"),
])
def test_teacher_ref_describe(ref, text):
    assert ref.describe() == text
    assert plans.describe_teacher(ref) == text


def test_describe_teacher_of_no_teacher_is_none():
    assert plans.describe_teacher(None) == "none"


def test_describe_of_the_plans_teachers():
    sd = plans.build(_config("snapshot_distillation", num_epochs=4, **{"snapshot.cycles": 2}))
    assert [plans.describe_teacher(p.teacher) for p in sd] == ["none", "cycle1"]
    rco = plans.build(_config("rco", num_epochs=20, **{
        "rco.anchor_every_epochs": 10, "rco.teacher_epochs": 20}))
    assert [plans.describe_teacher(p.teacher) for p in rco] == [
        "none", "teacher anchor 10", "teacher anchor 20"]


# -- the helpers plans build phases with -------------------------------------------------
def test_with_data_streams_offsets_by_the_epochs_before():
    config = default_config()
    plan = [phase_lib.make_phase(config, name, "x", num_epochs=n, seed_index=7,
                                 data_epoch_offset=99)
            for name, n in (("a", 3), ("b", 5), ("c", 2))]
    out = plans.with_data_streams(plan)
    assert [(p.data_epoch_offset, p.seed_index) for p in out] == [(0, 0), (3, 1), (8, 2)]
    assert [p.data_epoch_offset for p in plan] == [99] * 3         # the input is unchanged


def test_make_phase_takes_the_configs_fields_by_default():
    config = default_config()
    config.model, config.model_overrides = "resnet8", {"width": 2}
    phase = phase_lib.make_phase(config, "p", "baseline")
    assert (phase.model, phase.model_overrides, phase.init, phase.teacher) == (
        "resnet8", (("width", 2),), "fresh", None)
    assert (phase.loss, phase.num_epochs) == ("cross_entropy", config.num_epochs)
    assert dict(phase.schedule)["boundaries"] == (82, 123)
    assert phase.schedule == tuple(sorted(phase.schedule))         # items, sorted by name


def test_schedule_items_apply_changes_and_keep_boundaries_a_tuple():
    config = default_config()
    items = dict(phase_lib.schedule_items(config, name="cosine", boundaries=[5, 6]))
    assert (items["name"], items["boundaries"]) == ("cosine", (5, 6))
    assert items["base_lr"] == config.schedule.base_lr
    assert dict(phase_lib.schedule_items(config))["name"] == config.schedule.name


def test_rest_of_schedule_of_an_init_epoch():
    config = default_config()
    assert phase_lib.rest_of_schedule(config) == {}
    config.num_epochs, config.init.epoch = 300, 150
    assert phase_lib.rest_of_schedule(config) == dict(
        num_epochs=150, schedule_start_epoch=150, schedule_num_epochs=300)
