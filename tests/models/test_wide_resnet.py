"""Wide Residual Networks WRN-d-k (Zagoruyko & Komodakis 2016)."""
import jax
import pytest

from jaxkd import models
from jaxkd.models import wide_resnet
from tests.models.zoo import count_params, param_shapes


def test_depth_must_be_6n_plus_4():
    with pytest.raises(ValueError, match="WRN depth must be 6n \\+ 4, got 27"):
        wide_resnet.wide_resnet(27, 2)
    s = wide_resnet.wide_resnet(22, 3)
    assert s.kwargs["blocks_per_stage"] == 3 and s.kwargs["widths"] == (48, 96, 192)
    assert s.kwargs["block"] == "preact" and s.kwargs["shortcut"] == "B"
    assert s.overrides == {"dropout_rate": 0.0}


def test_registered_names_and_the_widths_of_wrn_16_2():
    assert {"wrn_10_1", "wrn_16_1", "wrn_16_2", "wrn_28_10"} <= set(wide_resnet.MODELS)
    params = param_shapes(models.get_model("wrn_16_2", num_classes=10), 32)
    blocks = sorted(k for k in params if k.startswith("PreActBlock_"))
    assert len(blocks) == 3 * 2
    assert params["Conv_0"]["kernel"].shape == (3, 3, 3, 16)
    assert params["head"]["kernel"].shape == (128, 10)
    # A projection where the width changes (16 -> 32 already in the first block).
    leaves = jax.tree_util.tree_leaves_with_path(params[blocks[0]])
    kernels = sorted(leaf.shape for path, leaf in leaves if len(leaf.shape) == 4)
    assert (1, 1, 16, 32) in kernels
    assert not any(len(leaf.shape) == 4 and leaf.shape[:2] == (1, 1)
                   for _, leaf in jax.tree_util.tree_leaves_with_path(params[blocks[1]]))


def test_width_multiplies_the_parameters_about_k_squared():
    one, two = count_params("wrn_16_1", 10), count_params("wrn_16_2", 10)
    assert 3.3 < two / one < 4.1


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_dropout_rate_must_be_in_0_1(rate):
    with pytest.raises(ValueError, match="model override dropout_rate"):
        models.get_model("wrn_16_1", num_classes=10, dropout_rate=rate)
