"""experiments/parity: the PyTorch side of the jaxkd-vs-PyTorch training parity study.

The PyTorch side must be jaxkd's recipe, so each piece is checked against jaxkd's own:
the weight port (same logits), the KD loss (same values), the augmentation (a crop of the
zero-padded image, maybe flipped), the schedule and step count, and the summary's
statistics (hand-computed).
"""

import json

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs the "
                            "'bench' extra: torch==2.13.0, constraints/ci-py311.txt)")

from experiments.parity import run as parity_run  # noqa: E402
from experiments.parity import torch_port, torch_train  # noqa: E402
from jaxkd import losses, models  # noqa: E402
from jaxkd.engine import state as state_lib  # noqa: E402
from tests.helpers import tiny_config, write_tiny_npz  # noqa: E402


def _random_variables(name, num_classes, seed):
    """A jaxkd network's variables with every leaf random (BatchNorm statistics too), so
    a transposed kernel or a swapped scale/mean shows in the logits."""
    net = models.get_model(name, num_classes=num_classes)
    variables = jax.device_get(state_lib.init_variables(net, jax.random.key(seed),
                                                        (32, 32, 3)))
    rng = np.random.default_rng(seed)

    def perturb(path, x):
        leaf = path[-1].key
        if leaf == "var":
            return rng.uniform(0.5, 2.0, x.shape).astype(np.float32)
        if leaf in ("mean", "bias"):
            return rng.normal(0, 0.1, x.shape).astype(np.float32)
        if leaf == "scale":
            return rng.uniform(0.5, 1.5, x.shape).astype(np.float32)
        return np.asarray(x)
    return net, jax.tree_util.tree_map_with_path(perturb, variables)


@pytest.mark.parametrize("name", ["resnet8", "resnet20"])
def test_ported_weights_give_the_same_logits(name):
    net, variables = _random_variables(name, 10, seed=3)
    ported = torch_port.torch_model(name, variables, 10)
    images = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype(np.float32)
    diff = torch_port.check_port(net, variables, ported, images)
    assert diff < 1e-4
    # The check can fail: a wrong BatchNorm statistic moves the logits.
    variables["batch_stats"]["BatchNorm_0"]["mean"] += 0.5
    assert torch_port.check_port(net, variables, ported, images) > 1e-2


def test_kd_loss_equals_jaxkd_kd():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(2, 16, 10)).astype(np.float32) * 3
    y = rng.integers(0, 10, 16)
    want = float(np.mean(losses.kd_loss(s, t, y, temperature=4.0)))
    got = float(torch_train.kd_loss(torch.from_numpy(s), torch.from_numpy(t),
                                    torch.from_numpy(y), 4.0))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_augmentation_is_a_crop_of_the_zero_padded_image_maybe_flipped():
    rng = np.random.default_rng(2)
    images = rng.integers(1, 256, (64, 8, 8, 3), dtype=np.uint8)   # no zero pixel
    out = torch_train._augment(torch.from_numpy(images), torch.Generator().manual_seed(0),
                               padding=2).numpy()
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    offsets, flipped = set(), 0
    for i in range(len(images)):
        windows = [(top, left, f) for top in range(5) for left in range(5) for f in (0, 1)
                   if np.array_equal(out[i], padded[i, top:top + 8, left:left + 8]
                                     [:, ::-1 if f else 1])]
        assert windows, f"image {i} is not a (flipped) crop of its padded image"
        offsets.add(windows[0][:2])
        flipped += windows[0][2]
    assert len(offsets) > 10 and 16 < flipped < 48   # random offsets, about half flipped


def test_torch_training_follows_the_config(tmp_path):
    npz = write_tiny_npz(tmp_path / "tiny.npz")
    config = tiny_config(npz, num_epochs=2, **{"schedule.name": "cosine"})
    r = torch_train.train(config, 0, threads=1)
    from jaxkd import data
    n = len(data.load_splits(config.data, seed=0).train.images)
    assert r["steps"] == 2 * (n // config.batch_size)
    assert 0.0 <= r["top1"] <= 1.0 and len(r["history"]) == 2
    with pytest.raises(ValueError, match="cosine"):
        torch_train.train(tiny_config(npz, **{"schedule.name": "step"}), 0)


def test_summary_is_mean_sample_std_and_paired_difference():
    results = {"jaxkd_baseline": [{"seed": 0, "top1": 0.5}, {"seed": 1, "top1": 0.7}],
               "torch_baseline": [{"seed": 0, "top1": 0.4}, {"seed": 1, "top1": 0.8}]}
    s = parity_run.summarize(results)
    assert s["jaxkd_baseline"] == {"mean": pytest.approx(0.6), "n": 2,
                                   "std": pytest.approx(0.2 / np.sqrt(2))}
    # paired differences 0.1 and -0.1: mean 0, sample std 0.1 * sqrt(2), se 0.1
    assert s["difference_baseline"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert s["difference_baseline"]["se"] == pytest.approx(0.1)
    json.dumps(s)
