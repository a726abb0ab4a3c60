"""The streaming pipeline: examples decoded on the host, batches sharded over 4 devices."""
import numpy as np
import pytest
import tensorflow_datasets as tfds
from jax.sharding import PartitionSpec as P

from jaxkd import data
from jaxkd.data import streaming
from jaxkd.data.dataset import Splits, StreamingDataset


def test_tfds_imagenet_streams_with_masked_eval(mesh):
    with tfds.testing.mock_data(num_examples=20):
        s = data.load_splits(dict(source="tfds", name="imagenet2012", image_size=16), seed=0)
        assert s.streaming and s.num_classes == 1000 and s.image_shape == (16, 16, 3)
        p = data.make_pipeline(s, mesh=mesh, batch_size=8, eval_batch_size=12,
                               augment_cfg=dict(kind="imagenet"), seed=0)
        train = list(p.train_batches(0))
        evals = list(p.eval_batches("test"))
    assert len(train) == p.steps_per_epoch == 2
    assert train[0]["image"].shape == (8, 16, 16, 3)
    assert train[0]["image"].sharding.spec == P("data")
    assert sum(int(b["mask"].sum()) for b in evals) == 20 and len(evals) == 2
    np.testing.assert_allclose(s.mean, data.dataset.IMAGENET_MEAN)


# -- new: a synthetic stream (no TFDS) --------------------------------------------------------

def _stream(n, num_classes=3, side=12, bad_label=None):
    """Examples of varying size; pixel (0, 0) of image i holds i, label i % num_classes."""
    def read(indices):
        out = []
        for i in indices:
            image = np.full((side + i % 3, side, 3), 100, np.uint8)
            image[0, 0, 0] = i
            label = bad_label if bad_label is not None and i == 1 else i % num_classes
            out.append((image, label))
        return out
    return StreamingDataset(read, n, "synthetic stream", np.arange(n) % num_classes)


def _stream_splits(n_train=16, n_test=10, **kwargs):
    return Splits(train=_stream(n_train, **kwargs), test=_stream(n_test, **kwargs),
                  heldout=None, num_classes=3, class_names=("a", "b", "c"),
                  coarse_class_names=None, mean=np.zeros(3, np.float32),
                  std=np.ones(3, np.float32) / 255, image_size=8)


def test_host_crops_depend_on_seed_epoch_and_index_not_on_threads(mesh):
    kwargs = dict(mesh=mesh, batch_size=8, eval_batch_size=8,
                  augment_cfg=dict(kind="imagenet"), seed=1)
    one = streaming.StreamingPipeline(_stream_splits(), num_threads=1, **kwargs)
    many = streaming.StreamingPipeline(_stream_splits(), num_threads=4, **kwargs)
    a, b = list(one.train_batches(0)), list(many.train_batches(0))
    assert len(a) == one.steps_per_epoch == 2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["label"], y["label"])
    assert a[0]["image"].shape == (8, 8, 8, 3) and a[0]["image"].sharding.spec == P("data")
    other = list(one.train_batches(1))
    assert not np.array_equal(np.asarray(a[0]["image"]), np.asarray(other[0]["image"]))


def test_streamed_eval_covers_every_example_once_with_a_center_crop(mesh):
    p = streaming.StreamingPipeline(_stream_splits(n_test=10), mesh=mesh, batch_size=8,
                                    eval_batch_size=8, augment_cfg=dict(kind="none"), seed=0)
    batches = list(p.eval_batches("test"))
    assert len(batches) == p.eval_steps("test") == 2
    mask = np.concatenate([np.asarray(b["mask"]) for b in batches])
    labels = np.concatenate([np.asarray(b["label"]) for b in batches])[mask]
    np.testing.assert_array_equal(labels, np.arange(10) % 3)
    images = np.concatenate([np.asarray(b["image"]) for b in batches])[mask]
    assert images.shape == (10, 8, 8, 3)
    np.testing.assert_allclose(images[:, 4, 4, :], 100, atol=1e-3)   # std 1/255: raw pixels


def test_streamed_label_out_of_range_names_the_stream(mesh):
    p = streaming.StreamingPipeline(_stream_splits(bad_label=7), mesh=mesh, batch_size=8,
                                    eval_batch_size=8, augment_cfg=dict(kind="none"), seed=0)
    with pytest.raises(ValueError, match=r"synthetic stream: labels out of range: found "
                                         r"\[0, 7\] but there are 3 classes"):
        list(p.eval_batches("test"))


def test_prefetch_keeps_the_order_and_runs_every_task():
    ran = []

    def task(i):
        def run():
            ran.append(i)
            return i * i
        return run
    assert list(streaming._prefetch((task(i) for i in range(7)), depth=2)) == \
        [i * i for i in range(7)]
    assert sorted(ran) == list(range(7))
    assert list(streaming._prefetch(iter(()))) == []
