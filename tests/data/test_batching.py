"""What both pipelines share: the Pipeline contract, epoch order, step keys, eval plans."""
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxkd import data
from jaxkd.data import batching
from tests.data.synthetic import NO_AUG, _splits


def test_batch_size_not_divisible_by_devices_names_the_field(mesh):
    with pytest.raises(ValueError, match="config.batch_size=10"):
        data.make_pipeline(_splits(), mesh=mesh, batch_size=10, eval_batch_size=8,
                           augment_cfg=NO_AUG, seed=0)
    with pytest.raises(ValueError, match="config.eval_batch_size=6"):
        data.make_pipeline(_splits(), mesh=mesh, batch_size=8, eval_batch_size=6,
                           augment_cfg=NO_AUG, seed=0)


def test_both_pipelines_satisfy_the_pipeline_protocol(mesh):
    device = data.make_pipeline(_splits(), mesh=mesh, batch_size=8, eval_batch_size=8,
                                augment_cfg=NO_AUG, seed=0)
    with tfds.testing.mock_data(num_examples=20):
        s = data.load_splits(dict(source="tfds", name="imagenet2012", image_size=16), seed=0)
        streaming = data.make_pipeline(s, mesh=mesh, batch_size=8, eval_batch_size=12,
                                       augment_cfg=dict(kind="imagenet"), seed=0)
    assert type(device) is data.DevicePipeline and type(streaming) is data.StreamingPipeline
    for p in (device, streaming):
        assert isinstance(p, data.Pipeline) and isinstance(p, batching.PipelineBase)
    assert (streaming.num_eval("test"), streaming.eval_batch("test"),
            streaming.eval_steps("test")) == (20, 12, 2)

    class NoEvalSteps:
        steps_per_epoch, num_train = 1, 1

        def train_batches(self, epoch, start_step=0):
            return iter(())

        def eval_batches(self, split="test"):
            return iter(())
    assert not isinstance(NoEvalSteps(), data.Pipeline)


def test_epoch_order_and_step_keys_are_pinned():
    np.testing.assert_array_equal(batching.epoch_permutation(0, 0, 10),
                                  [2, 7, 8, 3, 4, 9, 1, 6, 5, 0])
    np.testing.assert_array_equal(batching.epoch_permutation(5, 2, 10),
                                  [5, 7, 1, 6, 9, 0, 2, 8, 4, 3])
    assert data.epoch_permutation is batching.epoch_permutation
    want = jax.random.fold_in(jax.random.fold_in(jax.random.key(3), 2), 7)
    np.testing.assert_array_equal(jax.random.key_data(batching.step_key(3, 2, 7)),
                                  jax.random.key_data(want))


def test_eval_plan_pads_and_masks_the_last_batch():
    plan = list(batching.eval_plan(10, 4))
    assert len(plan) == 3 and all(i.dtype == np.int32 for i, _ in plan)
    np.testing.assert_array_equal(plan[1][0], [4, 5, 6, 7])
    np.testing.assert_array_equal(plan[2][0], [8, 9, 0, 0])
    np.testing.assert_array_equal(plan[2][1], [True, True, False, False])
    assert list(batching.eval_plan(0, 4)) == []


def test_eval_batch_sizes_clamp_to_the_split_with_one_warning(caplog):
    s = _splits(n_train=100, n_test=37)
    assert batching.eval_batch_sizes(s, 8, 4) == {"train": 8, "test": 8}
    assert not caplog.records
    with caplog.at_level("WARNING"):
        sizes = batching.eval_batch_sizes(s, 4000, 4)
    assert sizes == {"train": 100, "test": 40}
    assert len(caplog.records) == 1 and "config.eval_batch_size=4000" in caplog.text


def test_pipeline_base_steps_rows_and_start_step(mesh):
    p = batching.PipelineBase(_splits(), mesh=mesh, batch_size=16, eval_batch_size=8, seed=0)
    assert (p.num_train, p.steps_per_epoch, p.batch_size) == (100, 6, 16)
    assert p.sharding == NamedSharding(mesh, P("data"))
    np.testing.assert_array_equal(p._step_rows(np.arange(100), 2), np.arange(32, 48))
    assert p._train_steps(4) == range(4, 6) and p._train_steps(6) == range(6, 6)
    with pytest.raises(ValueError, match=r"start_step=7 must be in \[0, 6\]"):
        p._train_steps(7)
    with pytest.raises(ValueError, match="heldout_size"):
        p.eval_batch("heldout")
    with pytest.raises(ValueError, match="config.batch_size=128 is larger than the 100"):
        batching.PipelineBase(_splits(), mesh=mesh, batch_size=128, eval_batch_size=8, seed=0)


# -- new -------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size, message", [
    (0, "config.batch_size must be a positive integer, got 0"),
    (8.0, "config.batch_size must be a positive integer, got 8.0"),
])
def test_batch_sizes_must_be_positive_integers(mesh, batch_size, message):
    with pytest.raises(ValueError, match=message):
        batching.check_batch_sizes(mesh, batch_size, 8)


def test_to_train_and_eval_batch_normalise_and_keep_the_mask():
    images = np.full((2, 2, 2, 3), 51, np.uint8)
    labels, mask = np.array([1, 2], np.int32), np.array([True, False])
    mean, std = np.full(3, 0.1, np.float32), np.full(3, 0.5, np.float32)
    train = batching.to_train_batch(images, labels, jax.random.key(0),
                                    augment=lambda x, k: x, mean=mean, std=std)
    np.testing.assert_allclose(train["image"], (0.2 - 0.1) / 0.5, rtol=1e-6)
    assert set(train) == {"image", "label"} and train["image"].dtype == np.float32
    evaluated = batching.to_eval_batch(images, labels, mask, mean=mean, std=std)
    np.testing.assert_array_equal(evaluated["mask"], mask)
    np.testing.assert_allclose(evaluated["image"], train["image"])
