"""jaxkd.cli.sample_images: test JPEGs of the bundled sample, bytes unchanged, to try
`jaxkd predict` on."""

import tarfile

import numpy as np
import pytest
from PIL import Image

from jaxkd.cli import sample_images
from jaxkd.data import sample

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


def test_one_decodable_test_image_per_class(tmp_path):
    paths = sample_images.write_sample_images(tmp_path / "out")
    assert [p.name for p in paths] == [f"{c}_0000.jpg" for c in CLASSES]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]
    with tarfile.open(sample.SAMPLE_ARCHIVE) as tar:
        for path, name in zip(paths, CLASSES):
            assert path.read_bytes() == tar.extractfile(f"test/{name}/0000.jpg").read()
            with Image.open(path) as img:
                assert img.format == "JPEG" and img.size == (32, 32)
                pixels = np.asarray(img.convert("RGB"))
            assert pixels.shape == (32, 32, 3) and pixels.std() > 0   # a picture, not blank


def test_per_class_takes_the_first_images_by_name(tmp_path):
    paths = sample_images.write_sample_images(tmp_path, per_class=3)
    assert len(paths) == 30
    assert [p.name for p in paths[:3]] == ["airplane_0000.jpg", "airplane_0001.jpg",
                                           "airplane_0002.jpg"]
    # Rerunning into the same folder rewrites the same files.
    assert sample_images.write_sample_images(tmp_path, per_class=3) == paths


def test_main_writes_and_reports(tmp_path, capsys):
    assert sample_images.main(["sample_images", f"--out={tmp_path}", "--per_class=2"]) == 0
    assert capsys.readouterr().out == f"wrote 20 images to {tmp_path}\n"
    assert len(list(tmp_path.glob("*.jpg"))) == 20


def test_main_needs_out_and_a_positive_count(tmp_path):
    with pytest.raises(SystemExit) as info:
        sample_images.main(["sample_images"])
    assert info.value.code == 1
    with pytest.raises(SystemExit) as info:
        sample_images.main(["sample_images", f"--out={tmp_path}", "--per_class=0"])
    assert info.value.code == 1
