"""Host-side image operations (numpy + Pillow): RGB conversion, resizes and ImageNet crops."""
import numpy as np
import pytest

from jaxkd.data import host_ops


def test_to_rgb_repeats_grey_and_drops_alpha():
    grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgb = host_ops.to_rgb(grey)
    assert rgb.shape == (2, 3, 3) and (rgb == grey[..., None]).all()
    np.testing.assert_array_equal(host_ops.to_rgb(grey[..., None]), rgb)
    rgba = np.random.default_rng(0).integers(0, 256, (2, 3, 4), dtype=np.uint8)
    np.testing.assert_array_equal(host_ops.to_rgb(rgba), rgba[..., :3])


def test_resize_square_keeps_size_dtype_and_channels():
    image = np.full((5, 9, 1), 40, np.uint8)
    out = host_ops.resize_square(image, 4)
    assert out.shape == (4, 4, 1) and out.dtype == np.uint8 and (out == 40).all()
    same = np.zeros((4, 4, 3), np.uint8)
    assert host_ops.resize_square(same, 4) is same


def test_center_crop_takes_the_central_square_of_the_shorter_side():
    image = np.zeros((8, 12, 3), np.uint8)
    image[2:6, 4:8] = 200                      # the central 4x4 of the 8-pixel side
    out = host_ops.center_crop(image, 4, fraction=0.5)
    assert out.shape == (4, 4, 3)
    assert (out == 200).all(), out[..., 0]
    default = host_ops.center_crop(np.zeros((10, 20, 3), np.uint8), 6)
    assert default.shape == (6, 6, 3)


def test_random_resized_crop_box_bounds_and_fallback():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = host_ops.random_resized_crop_box(30, 40, rng)
        assert 0 <= top and top + h <= 30 and 0 <= left and left + w <= 40
        assert 0.08 * 1200 * 0.5 <= h * w <= 1200      # rounding aside, the area fraction
        assert 3 / 4 * 0.7 <= w / h <= 4 / 3 * 1.3
    # No crop of 10x the area fits: after 10 tries, the central square.
    assert host_ops.random_resized_crop_box(10, 20, rng, scale=(10, 10)) == (0, 5, 10, 10)


def test_random_resized_crop_is_reproducible_from_the_generator():
    image = np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    a = host_ops.random_resized_crop(image, 8, np.random.default_rng(5))
    b = host_ops.random_resized_crop(image, 8, np.random.default_rng(5))
    assert a.shape == (8, 8, 3) and a.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(a, b)
    flips = [host_ops.random_resized_crop(image, 8, np.random.default_rng(s), flip=False)
             for s in range(3)]
    assert len({f.tobytes() for f in flips}) == 3


@pytest.mark.parametrize("channels", [1, 3])
def test_grey_and_colour_images_keep_their_channels(channels):
    image = np.full((6, 6, channels), 9, np.uint8)
    assert host_ops.center_crop(image, 3).shape == (3, 3, channels)
    assert host_ops.random_resized_crop(image, 3, np.random.default_rng(0)).shape == \
        (3, 3, channels)
