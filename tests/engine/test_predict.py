"""Predictions on a whole split: padding removed, equal to `model.apply`, one compiled
program per architecture key."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd.data import make_pipeline
from jaxkd.engine import predict as predict_lib, sharding
from tests.data.synthetic import _splits


class Tiny(nn.Module):
    """A zoo-shaped classifier small enough to compile in a blink."""

    num_classes: int = 5

    @nn.compact
    def __call__(self, x, train=False, return_features=False):
        features = nn.Dense(3, name="body")(x.reshape(x.shape[0], -1) / 255.0)
        logits = nn.Dense(self.num_classes, name="head")(features)
        return (logits, features) if return_features else logits


@pytest.fixture(scope="module")
def setup():
    mesh = sharding.make_mesh(4)
    splits = _splits(n_test=37)
    pipeline = make_pipeline(splits, mesh=mesh, batch_size=16, eval_batch_size=8,
                             augment_cfg=dict(kind="none"), seed=0)
    model = Tiny()
    variables = dict(model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3))))
    variables["batch_stats"] = {}
    return mesh, splits, pipeline, model, variables


def test_predict_split_removes_padding_and_matches_model_apply(setup):
    mesh, splits, pipeline, model, variables = setup
    logits = predict_lib.predict_split(model, variables, pipeline, mesh)
    assert logits.shape == (37, 5) and isinstance(logits, np.ndarray)
    images = splits.test.images.astype(np.float32)       # mean 0, std 1/255: raw pixels
    want = model.apply({"params": variables["params"]}, images)
    np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-5)
    logits2, feats = predict_lib.predict_split(model, variables, pipeline, mesh,
                                               features=True)
    assert feats.shape == (37, 3)
    np.testing.assert_allclose(logits2, logits, rtol=1e-6)
    np.testing.assert_allclose(
        feats, model.apply({"params": variables["params"]}, images, return_features=True)[1],
        rtol=1e-5, atol=1e-5)


def test_split_labels_are_in_evaluation_order_without_padding(setup):
    _, splits, pipeline, _, _ = setup
    labels = predict_lib.split_labels(pipeline)
    np.testing.assert_array_equal(labels, splits.test.labels)


def test_programs_compile_once_per_key(setup):
    mesh, _, pipeline, model, variables = setup
    programs = predict_lib.Programs(mesh)
    first = programs.get("tiny", model)
    assert programs.get("tiny", Tiny()) is first
    assert programs.get("tiny", model, features=True) is not first
    assert programs.get("other", model) is not first
    for _ in range(2):                                    # two "checkpoints" of one model
        predict_lib.predict_split(model, variables, pipeline, mesh, predict=first)
    scaled = jax.tree_util.tree_map(lambda x: 2 * x, variables)
    predict_lib.predict_split(model, scaled, pipeline, mesh, predict=first)
    assert first._cache_size() == 1


def test_progress_shows_a_bar_over_the_batches_and_none_by_default(setup, capfd):
    mesh, _, pipeline, model, variables = setup
    capfd.readouterr()
    quiet = predict_lib.predict_split(model, variables, pipeline, mesh)
    assert capfd.readouterr().err == ""
    shown = predict_lib.predict_split(model, variables, pipeline, mesh,
                                      progress="predicting test")
    err = capfd.readouterr().err
    steps = pipeline.eval_steps("test")                   # 37 examples, batches of 8
    assert steps == 5 and "predicting test:   0%" in err and f"0/{steps} [" in err
    assert err.endswith("\r")                              # the bar cleared (leave=False)
    np.testing.assert_array_equal(shown, quiet)
