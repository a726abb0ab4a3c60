"""Data parallelism: the ('data',) mesh, batch and replicated shardings, CPU splitting."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxkd.engine import sharding


def test_batch_not_divisible_by_devices_is_a_clear_error():
    with pytest.raises(ValueError, match="config.batch_size=6 is not divisible"):
        sharding.check_batch_size(6, sharding.make_mesh(4))


# -- new -------------------------------------------------------------------------------------

def test_make_mesh_takes_the_first_devices_and_names_num_devices():
    assert sharding.make_mesh().devices.size == 4
    two = sharding.make_mesh(2)
    assert two.axis_names == (sharding.DATA_AXIS,) == ("data",)
    assert list(two.devices) == jax.devices()[:2]
    with pytest.raises(ValueError, match="config.num_devices=5 but only 4 devices"):
        sharding.make_mesh(5)


def test_check_batch_size_names_the_field_it_is_given():
    mesh = sharding.make_mesh(4)
    sharding.check_batch_size(12, mesh)
    with pytest.raises(ValueError, match=r"config.eval_batch_size=6 is not divisible by the 4 "
                                         r"devices of the mesh; use a multiple of 4"):
        sharding.check_batch_size(6, mesh, "config.eval_batch_size")


def test_replicate_puts_a_tree_on_all_four_devices():
    mesh = sharding.make_mesh(4)
    tree = {"w": np.arange(6.0).reshape(2, 3), "b": jnp.ones(3), "step": 0}
    out = sharding.replicate(tree, mesh)
    for leaf in jax.tree_util.tree_leaves(out):
        assert leaf.sharding == sharding.replicated(mesh)
        assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4
        assert len(leaf.addressable_shards) == 4
    np.testing.assert_array_equal(out["w"].addressable_shards[3].data, tree["w"])
    batch = jax.device_put(np.zeros((8, 2)), sharding.batch_sharding(mesh))
    assert [s.data.shape for s in batch.addressable_shards] == [(2, 2)] * 4


def test_host_cpu_devices_divides_every_batch():
    assert sharding.host_cpu_devices((128, 100), cores=8) == 4
    assert sharding.host_cpu_devices((96, 96), cores=8) == 8
    assert sharding.host_cpu_devices((7, 14), cores=2) == 1
    assert sharding.host_cpu_devices((6,), cores=16) == 6          # never above the batch
    assert sharding.host_cpu_devices((7,), cores=2, requested=3) == 3


def test_split_host_cpu_leaves_a_preset_device_count_alone(monkeypatch):
    config = ml_collections.ConfigDict(dict(batch_size=8, eval_batch_size=8, num_devices=0))
    calls = []
    monkeypatch.setattr(jax.config, "update", lambda *a: calls.append(a))
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    assert sharding.split_host_cpu(config, cores=2) == 0
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("JAXKD_COORDINATOR", "localhost:1234")
    assert sharding.split_host_cpu(config, cores=2) == 0
    monkeypatch.delenv("JAXKD_COORDINATOR")
    monkeypatch.delenv("JAXKD_DISTRIBUTED", raising=False)
    assert sharding.split_host_cpu(config, cores=2) == 2
    assert calls == [("jax_num_cpu_devices", 2)]


def test_initialize_distributed_without_a_described_run_does_nothing(monkeypatch):
    for name in ("JAXKD_COORDINATOR", "JAXKD_DISTRIBUTED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(jax.distributed, "initialize",
                        lambda *a, **k: pytest.fail("must not initialise"))
    assert sharding.initialize_distributed() is False
