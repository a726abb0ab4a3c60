"""MobileNetV2 (Sandler et al. 2018), and its CIFAR layout of [RCO] Table 3."""
import functools

import jax
import jax.numpy as jnp
import pytest

from jaxkd import models
from jaxkd.models import mobilenet_v2
from tests.models.zoo import KEY, count_params, flops_per_image, param_shapes


def test_mobilenet_width_and_expansion_change_the_size():
    base = count_params("mobilenetv2_cifar", 100)
    assert count_params("mobilenetv2_cifar", 100, width=0.5) < base
    assert count_params("mobilenetv2_cifar", 100, expansion=10) > base
    assert mobilenet_v2.make_divisible(32 * 0.35) == 16  # never below 90% of the value
    assert mobilenet_v2.make_divisible(24 * 0.5) == 16


@pytest.mark.parametrize("expansion,width,mflops", [(4, 0.35, 5.4), (10, 1.0, 72.6)])
def test_cifar_mobilenet_reproduces_rco_table3_flops(expansion, width, mflops):
    model = models.get_model("mobilenetv2_cifar", num_classes=100, width=width,
                             expansion=expansion, round_channels=False)
    assert flops_per_image(model, 32) / 1e6 == pytest.approx(mflops, rel=0.03)


# -- new -------------------------------------------------------------------------------------

def test_make_divisible_and_scale_channels_by_hand():
    assert mobilenet_v2.make_divisible(20) == 24          # nearest multiple of 8, rounding up
    assert mobilenet_v2.make_divisible(3) == 8            # never below the divisor
    assert mobilenet_v2.make_divisible(100) == 104
    assert mobilenet_v2.scale_channels(24, 0.35) == 8
    assert mobilenet_v2.scale_channels(24, 0.35, round_channels=False) == 8
    assert mobilenet_v2.scale_channels(32, 0.35, round_channels=False) == 11   # truncated
    assert mobilenet_v2.scale_channels(2, 0.1, round_channels=False) == 1


def test_the_last_convolution_never_narrows_and_the_head_reads_it():
    narrow = param_shapes(models.get_model("mobilenetv2_cifar", num_classes=7, width=0.5), 32)
    wide = param_shapes(models.get_model("mobilenetv2_cifar", num_classes=7, width=1.4), 32)
    assert narrow["head"]["kernel"].shape == (1280, 7)
    assert wide["head"]["kernel"].shape == (1792, 7)
    assert models.model_overrides("mobilenetv2_cifar")["strides"] == mobilenet_v2.CIFAR_STRIDES
    assert models.model_overrides("mobilenetv2")["strides"] == mobilenet_v2.IMAGENET_STRIDES


def test_cifar_layout_strides_by_16_and_imagenet_by_32():
    def last_feature_map(name, size):
        model = models.get_model(name, num_classes=3, width=0.35)
        images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
        variables = jax.eval_shape(functools.partial(model.init, train=False), KEY, images)
        _, state = jax.eval_shape(lambda v, x: model.apply(
            v, x, capture_intermediates=True, mutable=["intermediates"]), variables, images)
        inter = state["intermediates"]
        last_bn = [k for k in inter if k.startswith("BatchNorm")][-1]   # after the 1x1 conv
        return inter[last_bn]["__call__"][0].shape
    assert last_feature_map("mobilenetv2_cifar", 32) == (1, 2, 2, 1280)
    assert last_feature_map("mobilenetv2", 224) == (1, 7, 7, 1280)
