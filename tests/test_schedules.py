"""Tests for jaxkd.schedules: values at step 0, at every boundary and at the end."""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxkd import schedules


def values(schedule, steps):
    """The schedule at ``steps``, evaluated under jit with int32 steps (as in a train step)."""
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps, jnp.int32)))


def sd_eqn5(step, peaks, lengths):
    """SD Eqn 5 written out: restart to alpha_k at L'_{k-1}, cosine down over L_k steps."""
    start = 0
    for peak, length in zip(peaks, lengths):
        if step < start + length:
            return 0.5 * peak * (1 + math.cos(math.pi * (step - start) / length))
        start += length
    return 0.0


def test_step_decay_at_boundaries():
    sched = schedules.step_decay(0.1, boundaries_epochs=[82, 123], steps_per_epoch=10)
    steps = [0, 819, 820, 821, 1229, 1230, 1639, 5000]
    expected = [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001]
    np.testing.assert_allclose(values(sched, steps), expected, rtol=1e-6)


def test_step_decay_factor_and_fractional_epochs():
    sched = schedules.step_decay(0.05, boundaries_epochs=[1.5, 3], steps_per_epoch=4,
                                 factor=0.5)
    np.testing.assert_allclose(values(sched, [0, 5, 6, 11, 12, 100]),
                               [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125], rtol=1e-6)


def test_cosine_start_middle_end():
    sched = schedules.cosine(0.1, total_steps=100, final_lr=0.01)
    steps = np.arange(0, 131)
    expected = [0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * min(s, 100) / 100)) for s in steps]
    got = values(sched, steps)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got[[0, 50, 100, 130]], [0.1, 0.055, 0.01, 0.01], rtol=1e-5)
    np.testing.assert_allclose(values(schedules.cosine(0.2, total_steps=10), [0, 10, 11]),
                               [0.2, 0.0, 0.0], atol=1e-8)


def test_cyclic_cosine_follows_sd_eqn5():
    peaks, lengths = [0.1, 0.05, 0.2], [10, 20, 5]
    sched = schedules.cyclic_cosine(peaks, lengths)
    steps = np.arange(0, 50)
    expected = [sd_eqn5(s, peaks, lengths) for s in steps]
    got = values(sched, steps)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)
    # Restarts exactly at the first step of each mini-generation; 0 after the last one.
    np.testing.assert_allclose(got[[0, 10, 30]], peaks, rtol=1e-6)
    for start, end in [(0, 10), (10, 30), (30, 35)]:
        assert np.all(np.diff(got[start:end]) < 0)  # Decreasing inside a cycle ...
        assert got[end] > got[end - 1] or end == 35  # ... then jumps up at the restart.
    np.testing.assert_allclose(got[35:], 0.0, atol=1e-8)


def test_cyclic_cosine_validates():
    with pytest.raises(ValueError, match="equal length, got 2 and 1"):
        schedules.cyclic_cosine([0.1, 0.1], [10])
    with pytest.raises(ValueError, match="non-empty"):
        schedules.cyclic_cosine([], [])
    with pytest.raises(ValueError, match=r"peak_lrs\[1\] must be a finite number > 0, got -0.1"):
        schedules.cyclic_cosine([0.1, -0.1], [10, 10])
    with pytest.raises(ValueError, match=r"cycle_steps\[0\] must be an integer >= 1, got 0"):
        schedules.cyclic_cosine([0.1], [0])


def test_warmup_ramps_to_the_unshifted_schedule():
    base = schedules.step_decay(0.1, boundaries_epochs=[2, 4], steps_per_epoch=5)
    sched = schedules.warmup(base, warmup_steps=4, init_lr=0.02)
    steps = [0, 1, 2, 3, 4, 9, 10, 19, 20, 30]
    expected = [0.02, 0.04, 0.06, 0.08, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    np.testing.assert_allclose(values(sched, steps), expected, rtol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: schedules.cosine(0.1, total_steps=50),
    lambda: schedules.cyclic_cosine([0.1, 0.1], [25, 25]),
    lambda: schedules.step_decay(0.1, boundaries_epochs=[5], steps_per_epoch=5),
], ids=["cosine", "cyclic_cosine", "step"])
def test_warmup_composes(make):
    base = make()
    sched = schedules.warmup(base, warmup_steps=10)
    steps = np.arange(0, 60)
    got, reference = values(sched, steps), values(base, steps)
    np.testing.assert_allclose(got[:10], reference[10] * steps[:10] / 10, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got[10:], reference[10:], rtol=1e-6)
    assert schedules.warmup(base, warmup_steps=0) is base


def test_warmup_validates():
    with pytest.raises(ValueError, match="warmup_steps must be an integer >= 0, got -1"):
        schedules.warmup(schedules.cosine(0.1, total_steps=5), warmup_steps=-1)


def test_build_constant():
    sched = schedules.build({"name": "constant", "base_lr": 0.05}, steps_per_epoch=7,
                            num_epochs=3)
    np.testing.assert_allclose(values(sched, [0, 10, 20, 21, 100]), 0.05, rtol=1e-6)


def test_build_step_papers_schedule():
    cfg = ml_collections.ConfigDict(
        {"name": "step", "base_lr": 0.1, "boundaries": (82, 123), "warmup_epochs": 0})
    sched = schedules.build(cfg, steps_per_epoch=3, num_epochs=164)
    steps = [0, 245, 246, 368, 369, 491]
    np.testing.assert_allclose(values(sched, steps), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001],
                               rtol=1e-6)
    rco = schedules.build({"name": "step", "base_lr": 0.05, "boundaries": [150, 180, 210],
                           "factor": 0.2}, steps_per_epoch=1, num_epochs=240)
    np.testing.assert_allclose(values(rco, [149, 150, 179, 180, 209, 210, 239]),
                               [0.05, 0.01, 0.01, 0.002, 0.002, 0.0004, 0.0004], rtol=1e-5)


def test_build_cosine():
    sched = schedules.build({"name": "cosine", "base_lr": 0.1}, steps_per_epoch=4,
                            num_epochs=5)
    np.testing.assert_allclose(values(sched, [0, 10, 20]), [0.1, 0.05, 0.0], atol=1e-7)


def test_build_cyclic_cosine_restarts_at_mini_generations():
    sched = schedules.build({"name": "cyclic_cosine", "base_lr": 0.1, "cycles": 4},
                            steps_per_epoch=2, num_epochs=164)
    starts = [0, 82, 164, 246]  # epochs 0/41/82/123 at 2 steps per epoch.
    steps = np.arange(0, 330)
    expected = [sd_eqn5(s, [0.1] * 4, [82] * 4) for s in steps]
    got = values(sched, steps)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got[starts], 0.1, rtol=1e-6)
    assert np.all(got[np.array(starts[1:]) - 1] < 1e-4) and got[327] < 1e-4
    uneven = schedules.build({"name": "cyclic_cosine", "base_lr": 0.1, "cycles": 3},
                             steps_per_epoch=1, num_epochs=10)
    np.testing.assert_allclose(values(uneven, [0, 3, 6]), 0.1, rtol=1e-6)


def test_build_with_warmup():
    sched = schedules.build({"name": "cosine", "base_lr": 0.1, "warmup_epochs": 1},
                            steps_per_epoch=10, num_epochs=10)
    target = 0.05 * (1 + math.cos(math.pi * 10 / 100))
    np.testing.assert_allclose(values(sched, [0, 5, 10, 50, 100]),
                               [0.0, target / 2, target, 0.05, 0.0], rtol=1e-5, atol=1e-8)


def test_build_ignores_fields_of_other_schedules():
    sched = schedules.build({"name": "constant", "base_lr": 0.1, "boundaries": (1, 2),
                             "cycles": 4, "factor": 0.1}, steps_per_epoch=1, num_epochs=5)
    np.testing.assert_allclose(values(sched, [0, 4]), 0.1, rtol=1e-6)


@pytest.mark.parametrize("cfg,match", [
    ({"name": "linear", "base_lr": 0.1}, r"config\.schedule\.name must be one of .*'step'"),
    ({"base_lr": 0.1}, r"config\.schedule\.name must be one of"),
    ({"name": "cosine"}, r"config\.schedule\.base_lr is required"),
    ({"name": "cosine", "base_lr": -0.1}, r"config\.schedule\.base_lr must be .* got -0.1"),
    ({"name": "cosine", "base_lr": float("inf")},
     r"config\.schedule\.base_lr must be a finite number > 0, got inf"),
    ({"name": "cosine", "base_lr": 0.1, "lr": 1}, r"config\.schedule\.lr is not a schedule"),
    ({"name": "step", "base_lr": 0.1}, r"config\.schedule\.boundaries must be .* got None"),
    ({"name": "step", "base_lr": 0.1, "boundaries": (123, 82)},
     r"config\.schedule\.boundaries must be strictly increasing"),
    ({"name": "step", "base_lr": 0.1, "boundaries": (82, 164)},
     r"config\.schedule\.boundaries .*num_epochs=164"),
    ({"name": "step", "base_lr": 0.1, "boundaries": (82,), "factor": -1},
     r"config\.schedule\.factor must be a finite number >= 0, got -1"),
    ({"name": "cosine", "base_lr": 0.1, "final_lr": 0.2}, r"config\.schedule\.final_lr"),
    ({"name": "cyclic_cosine", "base_lr": 0.1}, r"config\.schedule\.cycles .* got None"),
    ({"name": "cyclic_cosine", "base_lr": 0.1, "cycles": 0}, r"config\.schedule\.cycles"),
    ({"name": "cyclic_cosine", "base_lr": 0.1, "cycles": 2.5}, r"config\.schedule\.cycles"),
    ({"name": "constant", "base_lr": 0.1, "warmup_epochs": 164},
     r"config\.schedule\.warmup_epochs must be < num_epochs \(164\), got 164"),
    ({"name": "constant", "base_lr": 0.1, "warmup_epochs": -1},
     r"config\.schedule\.warmup_epochs .* got -1"),
])
def test_build_errors_name_the_field(cfg, match):
    with pytest.raises(ValueError, match=match):
        schedules.build(cfg, steps_per_epoch=2, num_epochs=164)


def test_build_validates_its_arguments():
    with pytest.raises(ValueError, match="steps_per_epoch must be an integer >= 1, got 0"):
        schedules.build({"name": "constant", "base_lr": 0.1}, steps_per_epoch=0, num_epochs=1)
    with pytest.raises(ValueError, match="num_epochs must be an integer >= 1, got 0"):
        schedules.build({"name": "constant", "base_lr": 0.1}, steps_per_epoch=1, num_epochs=0)
