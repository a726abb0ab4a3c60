"""Image folders (one sub-folder per class), as folders or tar archives: real CIFAR-10 JPEGs
(shared data, skipped when absent) and small synthetic layouts."""
import io
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from jaxkd import data
from jaxkd.data import image_folder

CLASSES3 = ("airplane", "cat", "ship")


def _extract_jpegs(shared_data, root, per_class=3):
    """A few real CIFAR-10 JPEGs: first two per class into train/, the third into test/."""
    counts = {}
    with tarfile.open(shared_data / "cifar10-jpeg/test.tar.gz", "r|gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or parts[1] not in CLASSES3:
                continue
            k = counts.setdefault(parts[1], 0)
            if k < per_class:
                split = "train" if k < per_class - 1 else "test"
                os.makedirs(root / split / parts[1], exist_ok=True)
                (root / split / parts[1] / parts[2]).write_bytes(archive.extractfile(member).read())
                counts[parts[1]] += 1
            if len(counts) == 3 and min(counts.values()) == per_class:
                break
    return root


def test_image_folder_reads_real_jpegs_and_a_tar_of_them(shared_data, tmp_path):
    root = _extract_jpegs(shared_data, tmp_path / "jpegs")
    s = data.load_splits(dict(source="image_folder", path=str(root)), seed=0)
    assert s.class_names == CLASSES3 and len(s.train) == 6 and len(s.test) == 3
    np.testing.assert_array_equal(s.train.labels, [0, 0, 1, 1, 2, 2])
    first = sorted((root / "train/cat").iterdir())[0]
    expected = np.asarray(Image.open(first).convert("RGB"))
    np.testing.assert_array_equal(s.train.images[2], expected)
    archive = tmp_path / "jpegs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="cifar_jpegs")
    t = data.load_splits(dict(source="image_folder", path=str(archive), image_size=16), seed=0)
    assert t.train.images.shape == (6, 16, 16, 3) and t.class_names == CLASSES3


def test_image_folder_class_root_needs_test_path(shared_data, tmp_path):
    root = _extract_jpegs(shared_data, tmp_path / "jpegs")
    cfg = dict(source="image_folder", path=str(root / "train"))
    with pytest.raises(ValueError, match="config.data.test_path"):
        data.load_splits(cfg, seed=0)
    s = data.load_splits(dict(cfg, test_path=str(root / "test")), seed=0)
    assert len(s.train) == 6 and len(s.test) == 3


def _png(color):
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), color, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _folder(root, layout):
    for name, payload in layout.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if payload is not None:
            (root / name).write_bytes(payload)
    return root


def test_corrupt_image_error_names_the_file(tmp_path):
    root = _folder(tmp_path, {"train/a/1.png": _png(10), "train/b/2.png": b"not an image",
                              "test/a/3.png": _png(20)})
    with pytest.raises(ValueError, match=r"train/b/2\.png"):
        data.load_splits(dict(source="image_folder", path=str(root), image_size=8), seed=0)


def test_empty_class_folder_error(tmp_path):
    root = _folder(tmp_path, {"train/a/1.png": _png(10), "test/a/3.png": _png(20)})
    (root / "train" / "empty_class").mkdir()
    with pytest.raises(ValueError, match="empty class folder .*empty_class"):
        data.load_splits(dict(source="image_folder", path=str(root), image_size=8), seed=0)


# -- new: layouts and their errors ------------------------------------------------------------

def test_val_folder_is_the_test_split_and_hidden_files_are_skipped(tmp_path):
    root = _folder(tmp_path / "r", {"train/b/1.png": _png(10), "train/a/2.png": _png(20),
                                    "train/a/.3.png": b"hidden, not an image",
                                    "train/.cache/x.png": b"hidden folder",
                                    "notes.txt": b"not inside a class folder",
                                    "val/b/4.png": _png(30)})
    raw = image_folder.load(str(root), image_size=8)
    assert raw.class_names == ("a", "b")                      # sorted folder names
    np.testing.assert_array_equal(raw.train.labels, [0, 1])
    np.testing.assert_array_equal(raw.test.labels, [1])
    assert raw.train.images.shape == (2, 8, 8, 3) and raw.train.images[0].max() == 20
    assert int(raw.test.images[0, 0, 0, 0]) == 30


def test_tar_with_a_top_folder_and_split_archives_in_a_folder(tmp_path):
    root = _folder(tmp_path / "r", {"train/a/1.png": _png(10), "train/b/2.png": _png(20),
                                    "test/a/3.png": _png(30)})
    archive = tmp_path / "top.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname="some/top")                     # two shared top folders
    raw = image_folder.load(str(archive), image_size=4)
    assert raw.class_names == ("a", "b") and len(raw.train) == 2 and len(raw.test) == 1
    assert raw.train.images.shape == (2, 4, 4, 3)             # resized from 8x8
    split_archives = tmp_path / "archives"
    split_archives.mkdir()
    for split in ("train", "test"):
        with tarfile.open(split_archives / f"{split}.tar.gz", "w:gz") as tar:
            tar.add(root / split, arcname=split)
    again = image_folder.load(str(split_archives), image_size=8)
    assert again.class_names == ("a", "b") and len(again.test) == 1


def test_test_classes_must_be_training_classes_and_missing_paths_are_named(tmp_path):
    root = _folder(tmp_path / "r", {"train/a/1.png": _png(10), "test/z/2.png": _png(20)})
    with pytest.raises(ValueError, match=r"test classes \['z'\] are not training classes"):
        image_folder.load(str(root), image_size=8)
    with pytest.raises(FileNotFoundError, match="no image folder or archive"):
        image_folder.load(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files found"):
        image_folder.load(str(tmp_path / "empty"))


def test_decode_all_converts_grey_to_rgb_and_resizes():
    buffer = io.BytesIO()
    Image.fromarray(np.full((6, 10), 77, np.uint8), mode="L").save(buffer, "PNG")
    out = image_folder.decode_all([(buffer.getvalue(), "grey.png")] * 3, 4, num_threads=2)
    assert out.shape == (3, 4, 4, 3) and out.dtype == np.uint8
    assert (out == 77).all()
