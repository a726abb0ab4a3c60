"""Corrupt, partial, missing and foreign checkpoints: detected, skipped with a warning, or a
clear error; a phase never silently starts over a workdir that holds its progress.

One reference run of a tiny baseline (8 steps, a checkpoint every 2), and one copy of it
that crashed after step 7 (periodic checkpoints 2, 4 and 6, no final). Each test damages a
copy of the crashed workdir and resumes it.
"""

import logging
import re
import shutil

import jax
import numpy as np
import pytest

from jaxkd import checkpoints, run as run_lib
from jaxkd.engine import step as step_lib
from tests.chaos.conftest import reference_config
from tests.helpers import crash_after, write_tiny_npz

CRASH_AFTER = 7


def _config(npz, **changes):
    return reference_config(npz, **changes)


def _final(workdir, phase="baseline"):
    path = workdir / "phases" / phase / "final"
    step = max(int(p.name) for p in path.iterdir() if p.name.isdigit())
    import orbax.checkpoint as ocp
    with ocp.StandardCheckpointer() as ckptr:
        return ckptr.restore(path / str(step) / "state")


def _same(a, b):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(leaves_a, leaves_b))


def _largest_file(directory):
    return max((p for p in directory.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.fixture(scope="module")
def runs(reference_run, tmp_path_factory):
    """(npz, reference workdir, crashed workdir with periodic checkpoints 2, 4, 6)."""
    npz, reference = reference_run
    base = tmp_path_factory.mktemp("ckpt")
    with pytest.MonkeyPatch.context() as m:
        crash_after(m, CRASH_AFTER)
        with pytest.raises(KeyboardInterrupt):
            run_lib.run(_config(npz), base / "crashed")
    steps = sorted(int(p.name) for p in (base / "crashed/phases/baseline/ckpt").iterdir())
    assert steps == [2, 4, 6]
    return npz, reference, base / "crashed"


def _copy(runs, tmp_path):
    shutil.copytree(runs[2], tmp_path / "w")
    return tmp_path / "w", tmp_path / "w/phases/baseline/ckpt"


def test_damaged_newest_checkpoints_are_skipped_with_a_warning(runs, tmp_path, caplog):
    npz, reference, _ = runs
    workdir, ckpt = _copy(runs, tmp_path)
    big = _largest_file(ckpt / "6" / "state")
    big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])     # truncated file
    shutil.rmtree(ckpt / "4" / "state")                               # missing directory
    with caplog.at_level(logging.INFO, logger="jaxkd"):
        run_lib.run(_config(npz), workdir)
    skipped = [r.getMessage() for r in caplog.records if "skipping checkpoint" in r.getMessage()]
    assert len(skipped) == 2
    assert str(ckpt / "6") in skipped[0] and str(ckpt / "4") in skipped[1]
    assert any("resumed at step 2" in r.getMessage() for r in caplog.records)
    assert _same(_final(workdir), _final(reference))       # bit for bit, from step 2
    moved = sorted(p.name.split("-")[1] for p in (workdir / "phases/baseline/damaged").iterdir())
    assert moved == ["4", "6"]                              # kept for inspection


def test_every_checkpoint_damaged_is_a_clear_error_and_nothing_is_overwritten(
        runs, tmp_path):
    npz, _, _ = runs
    workdir, ckpt = _copy(runs, tmp_path)
    for step in ("2", "4", "6"):
        big = _largest_file(ckpt / step / "state")
        big.write_bytes(b"")
    def snapshot():
        return (sorted(str(p) for p in (workdir / "phases").rglob("*")),
                (workdir / "metrics.jsonl").read_text())
    before = snapshot()
    with pytest.raises(checkpoints.CheckpointError, match="no usable checkpoint") as info:
        run_lib.run(_config(npz), workdir)
    for step in ("2", "4", "6"):
        assert str(ckpt / step) in str(info.value)
    assert not (workdir / "phases/baseline/final").exists() or \
        not any((workdir / "phases/baseline/final").iterdir())
    assert snapshot() == before          # no checkpoint written, moved or deleted


def test_checkpoint_of_another_model_is_refused(runs, tmp_path):
    npz, _, _ = runs
    workdir, _ = _copy(runs, tmp_path)
    other = _config(npz, model="resnet14", allow_config_change=True)
    with pytest.raises(checkpoints.CheckpointError, match="no usable checkpoint"):
        run_lib.run(other, workdir)


def test_deleted_ckpt_dir_restarts_the_phase_with_a_warning(runs, tmp_path, caplog):
    """Decided: the phase restarts from its first step (deterministic: the same result),
    saying so and naming how far metrics.jsonl had got; the stale records are dropped."""
    npz, reference, _ = runs
    workdir, ckpt = _copy(runs, tmp_path)
    shutil.rmtree(ckpt)
    with caplog.at_level(logging.INFO, logger="jaxkd"):
        run_lib.run(_config(npz), workdir)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("progress up to step 6" in w and "restarting the phase" in w for w in warnings)
    assert any(re.search(r"workdir .* holds [0-9.]+ MB", r.getMessage())
               for r in caplog.records)               # disk usage, at the end of the phase
    assert _same(_final(workdir), _final(reference))
    ref_lines = (reference / "metrics.jsonl").read_text().count("\n")
    assert (workdir / "metrics.jsonl").read_text().count("\n") == ref_lines


def _ban_over_reference(runs, tmp_path):
    """A born-again workdir whose gen0 is the reference run's (same hyper-parameters)."""
    npz, reference, _ = runs
    workdir = tmp_path / "ban"
    shutil.copytree(reference / "phases/baseline", workdir / "phases/gen0")
    return npz, workdir, workdir / "phases/gen0/final"


@pytest.fixture
def no_compile(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a train step was built: the error came too late")
    monkeypatch.setattr(step_lib, "make_train_step", fail)


@pytest.mark.parametrize("damage", ["state", "meta"])
def test_damaged_final_checkpoint_is_a_clear_error(runs, tmp_path, damage, no_compile):
    npz, workdir, final = _ban_over_reference(runs, tmp_path)
    step_dir = next(final.iterdir())
    if damage == "state":
        big = _largest_file(step_dir / "state")
        big.write_bytes(big.read_bytes()[:100])
    else:
        (step_dir / "meta" / "metadata").write_text("{not json")
    config = _config(npz, method="born_again", generations=1)
    with pytest.raises(checkpoints.CheckpointError, match="unreadable") as info:
        run_lib.run(config, workdir)
    assert str(step_dir) in str(info.value) and "delete" in str(info.value)
    assert not [p for p in (workdir / "phases/gen1").rglob("*") if p.is_file()]


def _teacher_workdir(runs, tmp_path, epochs=(2,)):
    """An RCO teacher workdir whose anchors are the reference run's final state."""
    _, reference, _ = runs
    final = next((reference / "phases/baseline/final").iterdir())
    teacher = tmp_path / "teacher"
    for epoch in epochs:
        shutil.copytree(final, teacher / f"phases/teacher/anchors/{epoch}")
    return teacher


def _kd_config(npz, teacher, **changes):
    return _config(npz, method="rco", **{"rco.mode": "kd", "rco.anchor_every_epochs": 1,
                                         "rco.teacher_epochs": 2,
                                         "rco.teacher_workdir": str(teacher), **changes})


@pytest.mark.parametrize("case", ["missing", "truncated", "other_model", "other_classes"])
def test_bad_teacher_checkpoint_is_a_clear_error_before_compiling(runs, tmp_path, case,
                                                                 no_compile):
    npz, _, _ = runs
    teacher = _teacher_workdir(runs, tmp_path)
    anchor = teacher / "phases/teacher/anchors/2"
    changes = {}
    if case == "missing":
        shutil.rmtree(teacher)
    elif case == "truncated":
        big = _largest_file(anchor / "state")
        big.write_bytes(big.read_bytes()[:10])
    elif case == "other_model":
        changes["teacher.model"] = "resnet14"
    else:   # the student's data has 5 classes, the teacher was trained on 4
        npz = write_tiny_npz(tmp_path / "five.npz")
        arrays = dict(np.load(npz))
        arrays["class_names"] = np.array(["a", "b", "c", "d", "e"])
        np.savez(npz, **arrays)
    with pytest.raises(checkpoints.CheckpointError) as info:
        run_lib.run(_kd_config(npz, teacher, **changes), tmp_path / "student")
    assert str(anchor) in str(info.value)


def test_valid_teacher_checkpoint_passes_the_same_checks(runs, tmp_path, no_compile):
    """Control: the intact anchor loads and the run goes on to build its train step."""
    npz, _, _ = runs
    teacher = _teacher_workdir(runs, tmp_path)
    with pytest.raises(AssertionError, match="a train step was built"):
        run_lib.run(_kd_config(npz, teacher), tmp_path / "student")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # orbax
def test_each_damaged_file_is_detected_or_harmless(runs, tmp_path):
    """Every file of a periodic checkpoint, truncated, emptied or deleted in turn: the
    restore either raises CheckpointError or returns exactly the saved values (the file was
    not needed), never other values."""
    _, reference, _ = runs
    source = reference / "phases/baseline/ckpt/6"
    intact = checkpoints.PhaseCheckpoints(reference / "phases/baseline")
    saved = intact._periodic.restore(6, args=checkpoints._restore_args(None)).state
    intact.close()
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=jax.sharding.
                                       SingleDeviceSharding(jax.devices()[0])), saved)
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    outcomes = {"detected": 0, "harmless": 0}
    for mode in ("truncate", "empty", "delete"):
        for i, name in enumerate(files):
            case = tmp_path / f"{mode}-{i}"
            shutil.copytree(source, case / "ckpt/6")
            target = case / "ckpt/6" / name
            if mode == "delete":
                target.unlink()
            else:
                data = target.read_bytes()
                target.write_bytes(data[:len(data) // 2] if mode == "truncate" else b"")
            ckpts = checkpoints.PhaseCheckpoints(case)
            try:
                restored = ckpts.restore_latest(abstract)
                assert restored is not None and _same(restored[0], saved), f"{mode} {name}"
                outcomes["harmless"] += 1
            except checkpoints.CheckpointError:
                outcomes["detected"] += 1
            finally:
                ckpts.close()
    print(f"\ndamaged checkpoint files ({len(files)} files x 3 kinds of damage): {outcomes}")
    assert outcomes["detected"] > 0
