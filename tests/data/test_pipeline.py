"""The device-resident pipeline: sharded batches over 4 fake CPU devices (see conftest)."""
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxkd import data
from jaxkd.data import pipeline
from tests.data.synthetic import NO_AUG, _ids, _splits


def test_train_batches_are_sharded_and_cover_an_epoch(mesh):
    p = data.make_pipeline(_splits(), mesh=mesh, batch_size=16, eval_batch_size=8,
                           augment_cfg=NO_AUG, seed=0)
    batches = list(p.train_batches(0))
    assert p.steps_per_epoch == len(batches) == 6 and p.num_train == 100
    batch = batches[0]
    assert batch["image"].shape == (16, 4, 4, 3) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32
    for value in batch.values():
        assert value.sharding == NamedSharding(mesh, P("data"))
        assert len(value.addressable_shards) == 4
        assert value.addressable_shards[0].data.shape[0] == 4
    ids = np.concatenate([_ids(b["image"]) for b in batches])
    assert len(set(ids)) == 96, "no repeats within an epoch (last partial batch dropped)"
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]), ids % 5)
    other = np.concatenate([_ids(b["image"]) for b in p.train_batches(1)])
    assert not np.array_equal(ids, other), "each epoch has its own order"


def test_resumed_epoch_matches_uninterrupted_tail(mesh):
    kwargs = dict(mesh=mesh, batch_size=8, eval_batch_size=8, seed=5,
                  augment_cfg=dict(kind="cifar", crop_padding=2))
    full = list(data.make_pipeline(_splits(), **kwargs).train_batches(2))
    resumed = list(data.make_pipeline(_splits(), **kwargs).train_batches(2, start_step=7))
    assert len(resumed) == len(full) - 7
    for a, b in zip(full[7:], resumed):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    assert not np.array_equal(full[7]["image"], full[8]["image"])


def test_eval_counts_every_example_once_with_padding_masked(mesh):
    s = _splits(n_test=37)
    p = data.make_pipeline(s, mesh=mesh, batch_size=8, eval_batch_size=8,
                           augment_cfg=dict(kind="cifar"), seed=0)
    batches = list(p.eval_batches("test"))
    assert len(batches) == p.eval_steps("test") == 5 and p.num_eval("test") == 37
    mask = np.concatenate([b["mask"] for b in batches])
    assert mask.sum() == 37 and mask[:37].all()
    ids = np.concatenate([_ids(b["image"]) for b in batches])[mask]
    np.testing.assert_array_equal(np.sort(ids), np.arange(37))
    assert batches[-1]["mask"].sharding.spec == P("data")
    images = np.concatenate([b["image"] for b in batches])[mask]
    np.testing.assert_allclose(images, s.test.images, atol=1e-3, err_msg="not augmented")
    with pytest.raises(ValueError, match="heldout_size"):
        list(p.eval_batches("heldout"))


# -- new -------------------------------------------------------------------------------------

def test_global_array_places_host_values_with_the_sharding(mesh):
    values = np.arange(8 * 3).reshape(8, 3).astype(np.int32)
    split = pipeline.global_array(values, NamedSharding(mesh, P("data")))
    assert [s.data.shape for s in split.addressable_shards] == [(2, 3)] * 4
    np.testing.assert_array_equal(split.addressable_shards[1].data, values[2:4])
    whole = pipeline.global_array(values, NamedSharding(mesh, P()))
    assert whole.sharding.is_fully_replicated
    np.testing.assert_array_equal(jax.device_get(whole), values)


def test_same_seed_same_batches_other_seed_other_order(mesh):
    kwargs = dict(mesh=mesh, batch_size=16, eval_batch_size=8, augment_cfg=NO_AUG)
    a = [_ids(b["image"]) for b in data.make_pipeline(_splits(), seed=2, **kwargs)
         .train_batches(0)]
    b = [_ids(b["image"]) for b in data.make_pipeline(_splits(), seed=2, **kwargs)
         .train_batches(0)]
    c = [_ids(b["image"]) for b in data.make_pipeline(_splits(), seed=3, **kwargs)
         .train_batches(0)]
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    order = data.epoch_permutation(2, 0, 100)[:16]
    np.testing.assert_array_equal(a[0], order)      # the documented order, step 0's rows
