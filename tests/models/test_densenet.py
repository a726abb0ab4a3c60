"""DenseNet-BC (Huang et al. 2017) and the born-again DenseNets (Furlanello et al. 2018)."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import models
from jaxkd.models import densenet
from tests.models.zoo import KEY, count_params, param_shapes, synthetic_variables

BAN_DENSENETS = {"densenet_112_33": (6_987_916, 6.3e6), "densenet_90_60": (15_189_100, 16.1e6),
                 "densenet_80_80": (21_104_180, 22.4e6), "densenet_80_120": (47_277_820, 50.4e6)}


@pytest.mark.parametrize("name", sorted(BAN_DENSENETS))
def test_born_again_densenet_counts(name):
    ours, paper = BAN_DENSENETS[name]
    assert count_params(name, 100) == ours
    assert ours == pytest.approx(paper, rel=0.11)


def test_ban_112_33_paper_count_is_a_106_33_densenet_bc():
    model = densenet.DenseNet(num_classes=100, layers_per_block=(106 - 4) // 6, growth_rate=33)
    count = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(param_shapes(model, 32)))
    assert count == pytest.approx(6.3e6, rel=0.01)


def test_densenet_remat_changes_neither_parameters_nor_gradients():
    x = jax.random.normal(KEY, (2, 8, 8, 3))
    plain = densenet.DenseNet(num_classes=3, layers_per_block=1, growth_rate=4)
    remat = plain.clone(remat=True)
    variables = synthetic_variables(plain, x)
    assert (jax.tree.structure(jax.eval_shape(functools.partial(remat.init, train=False), KEY, x))
            == jax.tree.structure(variables))

    def grads(params, model):
        def loss(params):
            logits, state = model.apply({**variables, "params": params}, x, train=True,
                                        mutable=["batch_stats"])
            return jnp.sum(logits ** 2), state
        return jax.grad(loss, has_aux=True)(params)

    both = jax.jit(lambda params: [grads(params, model) for model in (plain, remat)])
    for a, b in zip(*(jax.tree.leaves(out) for out in both(variables["params"]))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# -- new -------------------------------------------------------------------------------------

def test_densenet_bc_widths_follow_growth_and_compression():
    # densenet_bc_16_8: 2 layers of growth 8 per block, a 2k = 16 stem, transitions halve.
    shapes = param_shapes(models.get_model("densenet_bc_16_8", num_classes=10), 32)
    assert shapes["Conv_0"]["kernel"].shape == (3, 3, 3, 16)
    # block 1: 16 + 2 * 8 = 32, halved to 16; block 2 the same; block 3: 16 + 2 * 8 = 32.
    assert shapes["head"]["kernel"].shape == ((16 + 2 * 8) // 2 + 2 * 8, 10)
    plain = densenet.DenseNet(num_classes=10, layers_per_block=2, growth_rate=8,
                              bottleneck=False, compression=1.0)
    assert param_shapes(plain, 32)["Conv_0"]["kernel"].shape == (3, 3, 3, 16)
    assert param_shapes(plain, 32)["head"]["kernel"].shape == (16 + 3 * 2 * 8, 10)


@pytest.mark.parametrize("overrides, match", [
    ({"compression": 0.0}, "model override compression"),
    ({"layers_per_block": 0}, "model override layers_per_block"),
    ({"bottleneck": 1}, "model override bottleneck"),
    ({"stem_features": -1}, "model override stem_features"),
])
def test_architecture_overrides_are_checked(overrides, match):
    with pytest.raises(ValueError, match=match):
        models.get_model("densenet_bc_16_8", num_classes=10, **overrides)


def test_a_born_again_variant_is_derived_from_a_named_network():
    ours = count_params("densenet_90_60", 100, layers_per_block=28, growth_rate=30,
                        stem_features=120)
    assert ours < count_params("densenet_90_60", 100)
    assert models.model_overrides("densenet_90_60")["layers_per_block"] == (90 - 4) // 6


# -- BAN Table 4: DenseNet-90-60 variants by model overrides ----------------------------


def test_densenet_architecture_is_overridable():
    defaults = models.model_overrides("densenet_90_60")
    assert (defaults["layers_per_block"], defaults["growth_rate"]) == (14, 60)
    assert (defaults["compression"], defaults["bottleneck"]) == (0.5, True)
    model = models.get_model("densenet_90_60", num_classes=100, layers_per_block=7,
                             growth_rate=120, stem_features=120)
    assert (model.layers_per_block, model.growth_rate, model.stem_features) == (7, 120, 120)


@pytest.mark.parametrize("override, match", [
    ({"layers_per_block": 0}, "layers_per_block"),
    ({"growth_rate": 2.5}, "growth_rate"),
    ({"compression": 0.0}, "compression"),
    ({"compression": 1.5}, "compression"),
    ({"stem_features": -1}, "stem_features"),
    ({"bottleneck": 1}, "bottleneck"),
])
def test_densenet_overrides_are_validated(override, match):
    with pytest.raises(ValueError, match=match):
        models.get_model("densenet_90_60", num_classes=100, **override)


def test_stem_features_sets_the_first_convolution():
    import jax
    import jax.numpy as jnp
    model = models.get_model("densenet_bc_16_8", num_classes=10, stem_features=24)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
    assert shapes["params"]["Conv_0"]["kernel"].shape == (3, 3, 3, 24)
