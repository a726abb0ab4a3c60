"""ImageNet ResNets in the torchvision layout, and their CIFAR stem ([RCO]'s teacher)."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import models
from jaxkd.models import resnet_imagenet
from tests.models.zoo import KEY, count_params, param_shapes


def test_cifar_stem_resnet50_is_rco_teacher_size():
    # torchvision's ResNet-50, a 100-class head and a 3x3 instead of a 7x7 stem.
    expected = 25_557_032 - 900 * (2048 + 1) - (7 * 7 - 3 * 3) * 3 * 64
    assert count_params("resnet50", 100, 32, cifar_stem=True) == expected


# -- new -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, width", [("resnet18", 512), ("resnet50", 2048)])
def test_the_head_reads_the_last_stage(name, width):
    params = param_shapes(models.get_model(name, num_classes=1000), 64)
    assert params["head"]["kernel"].shape == (width, 1000)
    assert params["Conv_0"]["kernel"].shape == (7, 7, 3, 64)
    cifar = param_shapes(models.get_model(name, num_classes=10, cifar_stem=True), 32)
    assert cifar["Conv_0"]["kernel"].shape == (3, 3, 3, 64)


def test_bottleneck_expands_four_times_with_a_projection_where_the_shape_changes():
    block = resnet_imagenet.Bottleneck(8, strides=2, zero_init_residual=True)
    x = jnp.ones((1, 8, 8, 16))
    variables = block.init(KEY, x, train=False)
    out = block.apply(variables, x, train=False)
    assert out.shape == (1, 4, 4, 32)
    assert {"proj_conv", "proj_bn"} <= set(variables["params"])
    assert variables["params"]["Conv_1"]["kernel"].shape == (3, 3, 8, 8)   # stride on the 3x3
    np.testing.assert_array_equal(variables["params"]["BatchNorm_2"]["scale"], 0.0)
    same = resnet_imagenet.Bottleneck(4).init(KEY, x, train=False)
    assert "proj_conv" not in same["params"]                  # 16 = 4 * 4 channels, stride 1
