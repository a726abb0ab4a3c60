"""Building the bundled sample: per-class selection and a byte-reproducible tar."""
import hashlib
import io
import tarfile

import pytest

from jaxkd.data import make_sample


def _archive(path, layout):
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in layout.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _jpeg_tree(split, per_class):
    return {f"{split}/{c}/{i:04d}.jpg": f"{split}-{c}-{i}".encode()
            for c in ("cat", "dog") for i in range(per_class)}


def test_select_takes_the_first_files_of_each_class_by_name(tmp_path):
    layout = _jpeg_tree("train", 4)
    layout["train/readme.txt"] = b"not in a class folder"
    chosen = make_sample.select(str(_archive(tmp_path / "train.tar.gz", layout)), 2)
    assert sorted(chosen) == ["train/cat/0000.jpg", "train/cat/0001.jpg",
                              "train/dog/0000.jpg", "train/dog/0001.jpg"]
    assert chosen["train/dog/0001.jpg"] == b"train-dog-1"       # original bytes
    with pytest.raises(ValueError, match=r"class cat has 4 < 5 files"):
        make_sample.select(str(tmp_path / "train.tar.gz"), 5)


def test_write_is_byte_reproducible_with_fixed_metadata(tmp_path):
    files = {"test/b/1.jpg": b"bb", "train/a/0.jpg": b"a", "test/a/0.jpg": b"aaa"}
    digest = make_sample.write(files, str(tmp_path / "one" / "s.tar"))
    again = make_sample.write(dict(reversed(list(files.items()))), str(tmp_path / "s2.tar"))
    first = (tmp_path / "one" / "s.tar").read_bytes()
    assert digest == again == hashlib.sha256(first).hexdigest()
    assert first == (tmp_path / "s2.tar").read_bytes()
    with tarfile.open(tmp_path / "s2.tar") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == sorted(files)
        assert {(m.mtime, m.mode, m.uid, m.uname) for m in members} == {(0, 0o644, 0, "root")}
        assert tar.extractfile("test/a/0.jpg").read() == b"aaa"


def test_make_writes_train_and_test_images_and_prints_the_digest(tmp_path, capsys):
    _archive(tmp_path / "train.tar.gz", _jpeg_tree("train", 3))
    _archive(tmp_path / "test.tar.gz", _jpeg_tree("test", 2))
    out = tmp_path / "sample.tar"
    make_sample.make(str(tmp_path), str(out), train_per_class=2, test_per_class=1)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert names == ["test/cat/0000.jpg", "test/dog/0000.jpg", "train/cat/0000.jpg",
                     "train/cat/0001.jpg", "train/dog/0000.jpg", "train/dog/0001.jpg"]
    printed = capsys.readouterr().out
    assert "wrote 6 images" in printed
    assert f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}" in printed
