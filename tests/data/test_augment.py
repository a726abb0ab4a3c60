"""Device-side augmentation: the papers' pad-4 random crop + flip, normalisation, eval."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd.data import augment

KEYS = jax.random.split(jax.random.key(0), 2000)


def _image(seed=0, size=32):
    return jnp.asarray(np.random.default_rng(seed).integers(1, 256, (size, size, 3)), jnp.uint8)


def _batched(fn, image, keys):
    return jax.jit(jax.vmap(fn, in_axes=(None, 0)))(image, keys)


def _runs(flags):
    """Lengths of the runs of True at the start and at the end of a 1-D bool array."""
    flags = list(flags)
    lead = next((i for i, f in enumerate(flags) if not f), len(flags))
    trail = next((i for i, f in enumerate(reversed(flags)) if not f), len(flags))
    return lead, trail


def test_crop_of_constant_image_has_only_a_thin_zero_border():
    image = jnp.full((32, 32, 3), 200, jnp.uint8)
    crops = np.asarray(_batched(lambda x, k: augment.pad_and_crop(x, k, 4), image, KEYS[:300]))
    assert set(np.unique(crops)) <= {0, 200}
    for crop in crops:
        zero = crop[..., 0] == 0
        rows, cols = zero.all(axis=1), zero.all(axis=0)
        top, bottom = _runs(rows)
        left, right = _runs(cols)
        assert min(top, bottom) == 0 and max(top, bottom) <= 4
        assert min(left, right) == 0 and max(left, right) <= 4
        inner = crop[top:32 - bottom, left:32 - right]
        assert (inner == 200).all(), "zeros only in a contiguous border"
        assert zero.sum() == 32 * 32 - inner[..., 0].size


def test_crop_is_a_window_of_the_padded_image_and_offsets_cover_all_81():
    image = _image(1)
    padded = np.pad(np.asarray(image), ((4, 4), (4, 4), (0, 0)))
    crops = np.asarray(_batched(lambda x, k: augment.pad_and_crop(x, k, 4), image, KEYS))
    windows = {padded[y:y + 32, x:x + 32].tobytes(): (y, x) for y in range(9) for x in range(9)}
    assert len(windows) == 81
    seen = [windows.get(crop.tobytes()) for crop in crops]
    assert None not in seen, "every crop is one of the 81 windows"
    assert len(set(seen)) == 81


def test_reflect_padding_adds_no_zeros():
    image = _image(2)
    crops = _batched(lambda x, k: augment.pad_and_crop(x, k, 4, "reflect"), image, KEYS[:200])
    assert int(jnp.min(crops)) >= 1


def test_flip_probability_is_about_half():
    image = _image(3)
    out = np.asarray(_batched(lambda x, k: augment.cifar_augment(x, k, padding=0), image, KEYS))
    same = np.array([np.array_equal(o, image) for o in out])
    mirrored = np.array([np.array_equal(o, np.asarray(image)[:, ::-1]) for o in out])
    assert (same ^ mirrored).all()
    assert 0.45 < mirrored.mean() < 0.55


def test_flip_can_be_turned_off():
    image = _image(4)
    out = _batched(lambda x, k: augment.cifar_augment(x, k, padding=0, flip=False), image,
                   KEYS[:50])
    assert (out == image[None]).all()


def test_same_key_same_result_and_keys_per_example():
    fn = jax.jit(augment.make_augment(dict(kind="cifar", crop_padding=4,
                                           pad_mode="constant", flip=True)))
    images = jnp.stack([_image(5)] * 16)
    a, b = fn(images, jax.random.key(7)), fn(images, jax.random.key(7))
    c = fn(images, jax.random.key(8))
    assert a.shape == images.shape and a.dtype == jnp.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len({np.asarray(x).tobytes() for x in a}) > 8, "identical inputs, different crops"


def test_kind_none_is_identity_and_imagenet_kind_keeps_shape_and_range():
    images = jnp.stack([_image(6), _image(7)])
    none = augment.make_augment(dict(kind="none"))
    np.testing.assert_array_equal(none(images, jax.random.key(0)), images)
    crop = jax.jit(augment.make_augment(dict(kind="imagenet")))(images, jax.random.key(0))
    assert crop.shape == images.shape
    assert float(crop.min()) >= -1e-3 and float(crop.max()) <= 255 + 1e-3
    assert not np.allclose(crop, images)


def test_normalize_per_channel():
    images = jnp.asarray([[[[0, 51, 255]]]], jnp.uint8)
    mean, std = np.array([0.5, 0.2, 1.0]), np.array([0.25, 0.5, 2.0])
    out = augment.normalize(images, mean, std)
    np.testing.assert_allclose(out[0, 0, 0], [(0 - 0.5) / 0.25, 0.0, 0.0], atol=1e-6)
    assert out.dtype == jnp.float32


@pytest.mark.parametrize("cfg, message", [
    (dict(kind="mixup"), "config.data.augment.kind"),
    (dict(pad_mode="edge"), "config.data.augment.pad_mode"),
    (dict(crop_padding=-1), "config.data.augment.crop_padding"),
])
def test_bad_augment_config_names_the_field(cfg, message):
    with pytest.raises(ValueError, match=message):
        augment.make_augment(cfg)
