"""CIFAR ResNets (He et al. 2016a) and pre-activation ResNets (He et al. 2016b)."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import models
from jaxkd.models import resnet_cifar
from tests.models.zoo import KEY, count_params, param_shapes


def test_initialisation_follows_the_papers():
    model = models.get_model("resnet8", num_classes=10, zero_init_residual=True)
    images = jnp.zeros((2, 32, 32, 3))
    # An rbg key: the same initialisers, several times cheaper to compile on CPU than threefry.
    key = jax.random.key(0, impl="rbg")
    variables = jax.jit(functools.partial(model.init, train=False))(key, images)
    params, stats = variables["params"], variables["batch_stats"]
    kernel = params["BasicBlock_2"]["Conv_0"]["kernel"]  # 3x3, 32 -> 64 channels
    assert kernel.shape == (3, 3, 32, 64)
    assert float(jnp.std(kernel)) == pytest.approx(math.sqrt(2.0 / (3 * 3 * 64)), rel=0.05)
    first = params["BasicBlock_0"]
    np.testing.assert_array_equal(first["BatchNorm_0"]["scale"], 1.0)
    np.testing.assert_array_equal(first["BatchNorm_1"]["scale"], 0.0)  # zero_init_residual
    for leaf in jax.tree.leaves(stats):
        assert set(np.unique(leaf)) <= {0.0, 1.0}
    np.testing.assert_array_equal(params["head"]["bias"], 0.0)
    # With the last BN at zero, a block with an identity shortcut starts as ReLU.
    block = resnet_cifar.BasicBlock(16, zero_init_residual=True)
    x = jax.random.normal(KEY, (2, 8, 8, 16))
    out = jax.jit(functools.partial(block.apply, train=False))(
        {"params": first, "batch_stats": stats["BasicBlock_0"]}, x)
    np.testing.assert_array_equal(out, jax.nn.relu(x))


# -- new -------------------------------------------------------------------------------------

def test_option_a_shortcut_subsamples_and_zero_pads_by_hand():
    x = jnp.arange(1 * 4 * 4 * 2, dtype=jnp.float32).reshape(1, 4, 4, 2)
    out = resnet_cifar.zero_pad_identity(x, 4, 2)
    assert out.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(out[..., 1:3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(out[..., 0], 0)
    np.testing.assert_array_equal(out[..., 3], 0)
    odd = resnet_cifar.zero_pad_identity(x, 5, 1)           # 3 extra: 1 in front, 2 behind
    np.testing.assert_array_equal(odd[..., 1:3], x)
    assert odd.shape[-1] == 5 and float(jnp.abs(odd[..., 3:]).max()) == 0


@pytest.mark.parametrize("name, blocks", [("resnet8", 1), ("resnet20", 3), ("resnet56", 9)])
def test_cifar_resnets_have_6n_plus_2_layers_and_no_projection(name, blocks):
    params = param_shapes(models.get_model(name, num_classes=10), 32)
    assert len([k for k in params if k.startswith("BasicBlock_")]) == 3 * blocks
    convs = 1 + 2 * 3 * blocks
    leaves = jax.tree_util.tree_leaves_with_path(params)
    assert sum(1 for path, leaf in leaves if len(leaf.shape) == 4) == convs
    assert 6 * blocks + 2 == convs + 1                       # + the classifier
    assert not any("proj" in jax.tree_util.keystr(path) for path, _ in leaves)
    assert params["head"]["kernel"].shape == (64, 10)


def test_preact_bottleneck_164_uses_projections_and_four_times_the_width():
    params = param_shapes(models.get_model("preact_resnet164", num_classes=10), 32)
    assert params["head"]["kernel"].shape == (256, 10)
    assert count_params("preact_resnet164", 100) == pytest.approx(1.7e6, rel=0.03)
    bad = resnet_cifar.CifarResNet(num_classes=10, blocks_per_stage=1, shortcut="C")
    with pytest.raises(ValueError, match="shortcut"):
        param_shapes(bad, 32)
