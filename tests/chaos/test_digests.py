"""Silent bit flips: every checkpoint carries a manifest of SHA-256 digests (`digests.json`,
written once orbax has committed the step) and every restore checks it.

Orbax stores no checksums: without the manifest a flipped bit in an array file restores
silently (`test_without_the_manifest_a_flip_restores_silently` shows it). With it, a flipped
periodic checkpoint is skipped like an unreadable one, a flipped final checkpoint or teacher
is a clear `CheckpointError`, and a checkpoint written before the digests (no manifest)
still restores. Same tiny baseline as `test_checkpoints.py` (checkpoints 2, 4, 6, final 8).
"""

import logging
import random
import shutil

import jax
import numpy as np
import pytest

from jaxkd import checkpoints, run as run_lib
from tests.chaos.test_checkpoints import (  # noqa: F401  (runs, no_compile: fixtures)
    _config, _copy, _final, _kd_config, _largest_file, _same, _teacher_workdir, no_compile,
    runs)

TRIALS = 20


def _flip(path, byte: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[byte] ^= 1 << bit
    path.write_bytes(bytes(data))


def _data_file(step_dir):
    """The largest array data file of a step folder (OCDBT)."""
    return _largest_file(step_dir / "state")


def _flip_data(step_dir) -> str:
    """Flips the top exponent bit of a float32 in the middle of the largest data file."""
    target = _data_file(step_dir)
    size = target.stat().st_size
    _flip(target, (size // 2) // 4 * 4 + 3, 6)    # little-endian float32: exponent bits
    return target.relative_to(step_dir).as_posix()


def _abstract(tree):
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), tree)


def _saved(step_dir):
    import orbax.checkpoint as ocp
    with ocp.StandardCheckpointer() as ckptr:
        return ckptr.restore(step_dir / "state")


def test_every_checkpoint_has_a_manifest_of_its_files(runs):
    _, reference, _ = runs
    phase = reference / "phases/baseline"
    for step_dir in [phase / "ckpt" / s for s in ("2", "4", "6")] + [phase / "final/8"]:
        assert checkpoints.verify_manifest(step_dir) is True
        files = checkpoints._read_manifest(step_dir, str(step_dir))
        assert sorted(files) == checkpoints._step_files(step_dir)
        assert any(name.startswith("state/") for name in files)


def test_without_the_manifest_a_flip_restores_silently(runs, tmp_path):
    """Why the manifest: orbax itself restores the flipped file, with another value."""
    _, reference, _ = runs
    step_dir = tmp_path / "6"
    shutil.copytree(reference / "phases/baseline/ckpt/6", step_dir)
    intact = _saved(step_dir)
    _flip_data(step_dir)
    (step_dir / "digests.json").unlink(missing_ok=True)
    flipped = _saved(step_dir)                      # no error
    assert not _same(intact, flipped)


def test_flipped_newest_checkpoint_falls_back_warns_and_is_set_aside(runs, tmp_path, caplog):
    npz, reference, _ = runs
    workdir, ckpt = _copy(runs, tmp_path)
    name = _flip_data(ckpt / "6")
    with caplog.at_level(logging.INFO, logger="jaxkd"):
        run_lib.run(_config(npz), workdir)
    skipped = [r.getMessage() for r in caplog.records if "skipping checkpoint" in r.getMessage()]
    assert len(skipped) == 1
    assert str(ckpt / "6") in skipped[0] and name in skipped[0]
    assert any("resumed at step 4" in r.getMessage() for r in caplog.records)
    moved = [p.name for p in (workdir / "phases/baseline/damaged").iterdir()]
    assert len(moved) == 1 and moved[0].startswith("ckpt-6-")
    assert _same(_final(workdir), _final(reference))       # bit for bit, from step 4
    # the redone step 6 was saved again, with its manifest
    assert checkpoints.verify_manifest(ckpt / "6") is True


def test_checkpoint_without_manifest_restores_unverified_with_a_warning(runs, tmp_path,
                                                                        caplog):
    """Decided: a step whose process stopped between orbax's commit and the manifest (or
    written by an older jaxkd) is restored unverified, with a warning; nothing is
    written into it."""
    npz, reference, _ = runs
    workdir, ckpt = _copy(runs, tmp_path)
    (ckpt / "6" / checkpoints.MANIFEST).unlink()
    with caplog.at_level(logging.INFO, logger="jaxkd"):
        run_lib.run(_config(npz), workdir)
    messages = [r.getMessage() for r in caplog.records]
    assert any(str(ckpt / "6") in m and "unverified" in m for m in messages)
    assert any("resumed at step 6" in m for m in messages)
    assert _same(_final(workdir), _final(reference))
    assert not (ckpt / "6" / checkpoints.MANIFEST).exists()


def test_flipped_final_of_a_finished_phase_is_an_error_on_rerun(runs, tmp_path, no_compile):
    npz, reference, _ = runs
    workdir = tmp_path / "w"
    shutil.copytree(reference, workdir)
    final = workdir / "phases/baseline/final/8"
    name = _flip_data(final)
    with pytest.raises(checkpoints.CheckpointError) as info:
        run_lib.run(_config(npz), workdir)
    message = str(info.value)
    assert str(final) in message and name in message
    assert "move" in message and str(workdir / "phases/baseline/ckpt") in message
    assert not (workdir / "phases/baseline/damaged").exists()   # a final is never moved


def test_flipped_teacher_checkpoint_is_a_clear_error(runs, tmp_path, no_compile):
    npz, _, _ = runs
    teacher = _teacher_workdir(runs, tmp_path)
    anchor = teacher / "phases/teacher/anchors/2"
    name = _flip_data(anchor)
    with pytest.raises(checkpoints.CheckpointError) as info:
        run_lib.run(_kd_config(npz, teacher), tmp_path / "student")
    assert str(anchor) in str(info.value) and name in str(info.value)


def test_the_old_fixture_without_manifest_still_loads():
    """Backward compatible: tests/fixtures/ckpt_v1 (jaxkd before the digests)."""
    from tests.fixtures.make_checkpoint_fixture import FIXTURE
    step_dir = FIXTURE / "final/2"
    assert not (step_dir / checkpoints.MANIFEST).exists()
    assert checkpoints.verify_manifest(step_dir) is False
    ckpts = checkpoints.PhaseCheckpoints(FIXTURE)
    try:
        assert ckpts.has_final() and ckpts.final_meta()["record"]["name"] == "baseline"
    finally:
        ckpts.close()
    saved, _ = checkpoints.load_saved_variables(FIXTURE)
    assert "params" in saved
    assert not (step_dir / checkpoints.MANIFEST).exists()   # never written on read


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # orbax
def test_random_bit_flips_are_all_detected(runs, tmp_path):
    """TRIALS flips, each of one random bit of one random file (any file, the manifest
    included) of one random checkpoint (periodic 2, 4, 6 or the final 8)."""
    _, reference, _ = runs
    phase = reference / "phases/baseline"
    sources = [("ckpt", phase / "ckpt" / s) for s in ("2", "4", "6")] + \
        [("final", phase / "final/8")]
    saved = _saved(phase / "ckpt/6")
    abstract = _abstract(jax.tree_util.tree_map(np.asarray, saved))
    rng = random.Random(0)
    detected, where = 0, []
    for trial in range(TRIALS):
        kind, source = rng.choice(sources)
        case = tmp_path / f"trial-{trial}"
        shutil.copytree(source, case / kind / source.name)
        step_dir = case / kind / source.name
        files = sorted(p for p in step_dir.rglob("*") if p.is_file() and p.stat().st_size)
        target = rng.choice(files)
        byte, bit = rng.randrange(target.stat().st_size), rng.randrange(8)
        _flip(target, byte, bit)
        where.append(f"{kind}/{source.name}/{target.relative_to(step_dir)}@{byte}.{bit}")
        ckpts = checkpoints.PhaseCheckpoints(case)
        try:
            if kind == "ckpt":
                ckpts.restore_latest(abstract)
            else:
                ckpts.has_final()
        except checkpoints.CheckpointError:
            detected += 1
        finally:
            ckpts.close()
    print(f"\nbit flips detected {detected}/{TRIALS}: " + ", ".join(where))
    assert detected == TRIALS
