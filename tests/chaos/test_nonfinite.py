"""Non-finite loss or gradients: the run stops naming the step, the phase and the last good
checkpoint (or skips the step with config.nonfinite='skip'); no NaN state is ever saved.

A NaN is injected into one pixel of the batch of step 6 (epoch 1, step 1): the forward
pass, and so the loss and every gradient, become NaN at that step only.
"""

import json
import logging

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxkd import run as run_lib
from jaxkd.data import pipeline as pipeline_lib
from jaxkd.engine import loop
from tests.helpers import tiny_config, write_tiny_npz

BAD_EPOCH, BAD_STEP = 1, 1          # 4 steps per epoch: global step 6


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("nan") / "tiny.npz")


@pytest.fixture
def poisoned(monkeypatch):
    """Step 6's batch carries a NaN pixel."""
    real = pipeline_lib.DevicePipeline.train_batches

    def train_batches(self, epoch, start_step=0):
        for step, batch in enumerate(real(self, epoch, start_step), start_step):
            if (epoch, step) == (BAD_EPOCH, BAD_STEP):
                image = batch["image"]
                batch = dict(batch, image=jax.device_put(
                    image.at[0, 0, 0, 0].set(jnp.nan), image.sharding))
            yield batch

    monkeypatch.setattr(pipeline_lib.DevicePipeline, "train_batches", train_batches)


def _restore(path):
    with ocp.StandardCheckpointer() as ckptr:
        return ckptr.restore(path / "state")


def _all_finite(tree):
    return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(tree)
               if np.issubdtype(np.asarray(x).dtype, np.floating))


def test_nonfinite_step_stops_the_run_naming_step_phase_and_checkpoint(npz, tmp_path,
                                                                       poisoned, caplog):
    config = tiny_config(npz, checkpoint_every_steps=1, log_every_steps=4)
    with pytest.raises(loop.NonFiniteError) as info:
        run_lib.run(config, tmp_path)
    ckpt = tmp_path / "phases/baseline/ckpt"
    message = str(info.value)
    assert "step 6 of phase 'baseline'" in message
    assert f"Last good checkpoint: {ckpt / '5'}" in message
    steps = sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
    assert steps == [3, 4, 5]     # keep_checkpoints=3, and nothing after the bad step
    assert not list((tmp_path / "phases/baseline/final").glob("*"))
    for step in steps:
        assert _all_finite(_restore(ckpt / str(step)))

    # Rerun with 'skip' (a resume-safe change): resumes at step 5 and skips step 6.
    config.nonfinite = "skip"
    with caplog.at_level(logging.WARNING, logger="jaxkd"):
        results = run_lib.run(config, tmp_path)
    assert results["phases"][0]["epochs"] == 2
    assert any("skipped 1 non-finite steps" in r.getMessage() for r in caplog.records)
    records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    skipped = [r for r in records if r["kind"] == "train" and r["skipped"]]
    assert [(r["step"], r["skipped"]) for r in skipped] == [(8, 1)]   # window 5..8
    assert np.isfinite(skipped[0]["loss"])        # the window's mean over good steps
    state = _restore(next((tmp_path / "phases/baseline/final").iterdir()))
    assert _all_finite(state) and int(state["step"]) == 8



@pytest.fixture
def overflow_at_step_3(monkeypatch):
    """The learning rate is inf at optimizer step 3 only: the loss and gradients of that
    step are finite, its update is not (as an overflowing lr or weight decay gives)."""
    from jaxkd import schedules
    real = schedules.build

    def build(*args, **kwargs):
        sched = real(*args, **kwargs)
        return lambda count: jnp.where(count == 2, jnp.inf, sched(count))
    monkeypatch.setattr(schedules, "build", build)


def test_nonfinite_update_never_lands_nor_is_called_last_good(npz, tmp_path,
                                                              overflow_at_step_3):
    config = tiny_config(npz, checkpoint_every_steps=1, log_every_steps=4)
    with pytest.raises(loop.NonFiniteError) as info:
        run_lib.run(config, tmp_path)
    ckpt = tmp_path / "phases/baseline/ckpt"
    assert "step 3 of phase 'baseline'" in str(info.value)
    assert f"Last good checkpoint: {ckpt / '2'}" in str(info.value)
    steps = sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
    assert steps == [1, 2]                   # nothing at or after the bad update
    for step in steps:
        assert _all_finite(_restore(ckpt / str(step)))


def test_skip_stops_when_a_whole_epoch_is_skipped(npz, tmp_path, monkeypatch):
    """config.nonfinite='skip' with every step non-finite (a learning rate that overflows
    the parameters) stops instead of ending the phase untrained with exit 0."""
    from jaxkd import schedules
    real = schedules.build
    monkeypatch.setattr(schedules, "build", lambda *a, **k: (
        lambda count, s=real(*a, **k): jnp.inf * s(count)))
    config = tiny_config(npz, nonfinite="skip")
    with pytest.raises(loop.NonFiniteError, match="every one of the 4 steps of epoch 1"):
        run_lib.run(config, tmp_path)
    assert not list((tmp_path / "phases/baseline/final").glob("*"))
