"""Data sources, splits and the sharded batch pipeline (4 fake CPU devices, see conftest)."""
import io
import os
import tarfile

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from PIL import Image

from jaxkd import data
from jaxkd.data import batching, cifar_binary, sample

CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
CLASSES3 = ("airplane", "cat", "ship")


@pytest.fixture(scope="module")
def mesh():
    assert len(jax.devices()) == 4, "conftest sets 4 fake CPU devices"
    return Mesh(np.array(jax.devices()), ("data",))


# -- real data -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cifar100(shared_data):
    cfg = dict(source="cifar_binary", path=str(shared_data / "cifar100/cifar-100-binary.tar.gz"),
               heldout_size=10000)
    return data.load_splits(cfg, seed=0)


def test_cifar100_binary_counts_classes_and_stats(cifar100):
    s = cifar100
    assert len(s.train) + len(s.heldout) == 50000 and len(s.test) == 10000
    full = np.concatenate([s.train.labels, s.heldout.labels])
    assert (np.bincount(full, minlength=100) == 500).all()
    assert (np.bincount(s.test.labels, minlength=100) == 100).all()
    assert (np.bincount(s.heldout.labels, minlength=100) == 100).all(), "stratified heldout"
    assert s.num_classes == 100 and len(s.class_names) == 100 and len(s.coarse_class_names) == 20
    assert s.train.images.shape[1:] == (32, 32, 3) and s.train.images.dtype == np.uint8
    np.testing.assert_allclose(s.mean, CIFAR100_MEAN, atol=2e-3)
    np.testing.assert_allclose(s.std, CIFAR100_STD, atol=2e-3)


def test_cifar100_coarse_labels_follow_a_fine_to_coarse_map(cifar100):
    s = cifar100
    fine = np.concatenate([s.train.labels, s.heldout.labels, s.test.labels])
    coarse = np.concatenate([s.train.coarse_labels, s.heldout.coarse_labels,
                             s.test.coarse_labels])
    pairs = np.unique(np.stack([fine, coarse], 1), axis=0)
    assert len(pairs) == 100, "each fine class maps to exactly one coarse class"
    assert (np.bincount(pairs[:, 1], minlength=20) == 5).all(), "5 fine classes per coarse"
    assert s.class_names[pairs[0, 0]] == "apple"
    assert s.coarse_class_names[pairs[0, 1]] == "fruit_and_vegetables"


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


# -- synthetic archives ------------------------------------------------------------------------

def _records(labels, label_bytes, rng):
    labels = np.asarray(labels, np.uint8).reshape(len(labels), label_bytes)
    pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    return np.concatenate([labels, pixels], 1).tobytes(), pixels


def _tar_gz(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _cifar10_files(rng, n=4, bad_label=None):
    files, pixels = {}, {}
    for i in range(1, 6):
        labels = (np.arange(n) + i) % 10
        if bad_label is not None and i == 2:
            labels[0] = bad_label
        files[f"cifar-10-batches-bin/data_batch_{i}.bin"], pixels[i] = _records(labels, 1, rng)
    files["cifar-10-batches-bin/test_batch.bin"], pixels[0] = _records(np.arange(n), 1, rng)
    names = "\n".join(f"class{i}" for i in range(10)) + "\n\n"
    files["cifar-10-batches-bin/batches.meta.txt"] = names.encode()
    return files, pixels


def test_cifar10_binary_synthetic_archive(tmp_path):
    files, pixels = _cifar10_files(np.random.default_rng(0))
    s = data.load_splits(dict(source="cifar_binary",
                              path=str(_tar_gz(tmp_path / "c10.tar.gz", files))), seed=0)
    assert len(s.train) == 20 and len(s.test) == 4 and s.num_classes == 10
    assert s.class_names[3] == "class3" and s.coarse_class_names is None
    np.testing.assert_array_equal(s.train.labels[:4], [1, 2, 3, 4])
    red, green = pixels[1][0, :1024].reshape(32, 32), pixels[1][0, 1024:2048].reshape(32, 32)
    np.testing.assert_array_equal(s.train.images[0, ..., 0], red)
    np.testing.assert_array_equal(s.train.images[0, ..., 1], green)
    folder = tmp_path / "extracted"
    for name, payload in files.items():
        (folder / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(payload)
    t = data.load_splits(dict(source="cifar_binary", path=str(folder)), seed=0)
    np.testing.assert_array_equal(t.train.images, s.train.images)


def test_cifar_binary_wrong_record_size_names_the_file(tmp_path):
    files, _ = _cifar10_files(np.random.default_rng(0))
    files["cifar-10-batches-bin/data_batch_3.bin"] += b"\x00"
    path = _tar_gz(tmp_path / "c10.tar.gz", files)
    with pytest.raises(ValueError, match=r"data_batch_3\.bin.*3073-byte records"):
        data.load_splits(dict(source="cifar_binary", path=str(path)), seed=0)


def test_cifar_binary_label_out_of_range_names_the_file(tmp_path):
    files, _ = _cifar10_files(np.random.default_rng(0), bad_label=10)
    path = _tar_gz(tmp_path / "c10.tar.gz", files)
    with pytest.raises(ValueError, match=r"data_batch_2\.bin.*out of range"):
        data.load_splits(dict(source="cifar_binary", path=str(path)), seed=0)


def test_cifar100_binary_synthetic_coarse_label_key(tmp_path):
    rng = np.random.default_rng(1)
    train, _ = _records(np.stack([np.arange(6) % 20, np.arange(6) * 7], 1), 2, rng)
    test, _ = _records(np.array([[3, 99]]), 2, rng)
    path = _tar_gz(tmp_path / "c100.tar.gz", {"cifar-100-binary/train.bin": train,
                                               "cifar-100-binary/test.bin": test})
    s = cifar_binary.load(str(path), "coarse_label")
    np.testing.assert_array_equal(s.train.labels, np.arange(6))
    assert len(s.class_names) == 20


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


def test_npz_both_namings_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    np.savez(tmp_path / "a.npz", x_train=x, y_train=y[:, None], x_test=x[:4], y_test=y[:4],
             class_names=np.array(["u", "v", "w"]))
    s = data.load_splits(dict(source="npz", path=str(tmp_path / "a.npz"), image_size=8), seed=0)
    assert s.class_names == ("u", "v", "w") and len(s.train) == 12
    np.testing.assert_array_equal(s.train.images, x)
    np.savez(tmp_path / "b.npz", train_images=x, train_labels=y, test_images=x[:2],
             test_labels=np.array([0, 3]), class_names=np.array(["u", "v", "w"]))
    with pytest.raises(ValueError, match=r"b\.npz \(test labels\).*out of range"):
        data.load_splits(dict(source="npz", path=str(tmp_path / "b.npz"), image_size=8), seed=0)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=y, x_test=x, y_test=np.array([None] * 12))
    with pytest.raises(ValueError, match=r"c\.npz.*pickle"):
        data.load_splits(dict(source="npz", path=str(tmp_path / "c.npz"), image_size=8), seed=0)
    r = data.load_splits(dict(source="npz", path=str(tmp_path / "a.npz"), image_size=4), seed=0)
    assert r.train.images.shape == (12, 4, 4, 3)


@pytest.mark.parametrize("cfg, message", [
    (dict(source="csv"), "config.data.source must be one of"),
    (dict(source="npz"), "config.data.path must be set"),
    (dict(source="sample", heldout_size=-1), "config.data.heldout_size"),
    (dict(source="sample", label_key="fine"), "config.data.label_key"),
    (dict(source="sample", augment=dict(kind="autoaugment")), "config.data.augment.kind"),
])
def test_config_errors_name_the_field(cfg, message):
    with pytest.raises(ValueError, match=message):
        data.load_splits(cfg, seed=0)


# -- TFDS (mocked, no TensorFlow, no network) --------------------------------------------------

def test_tfds_cifar100_fine_and_coarse_under_mock_data():
    with tfds.testing.mock_data(num_examples=24):
        fine = data.load_splits(dict(source="tfds", name="cifar100"), seed=0)
        coarse = data.load_splits(dict(source="tfds", name="cifar100",
                                       label_key="coarse_label"), seed=0)
        with pytest.raises(ValueError, match="config.data.name='no_such_dataset'"):
            data.load_splits(dict(source="tfds", name="no_such_dataset"), seed=0)
        with pytest.raises(ValueError, match="config.data.label_key='colour'"):
            data.load_splits(dict(source="tfds", name="cifar10", label_key="colour"), seed=0)
    assert fine.train.images.shape == (24, 32, 32, 3) and fine.num_classes == 100
    assert len(fine.class_names) == 100 and len(fine.coarse_class_names) == 20
    assert coarse.num_classes == 20
    np.testing.assert_array_equal(coarse.train.labels, fine.train.coarse_labels)


def test_tfds_imagenet_streams_with_masked_eval(mesh):
    with tfds.testing.mock_data(num_examples=20):
        s = data.load_splits(dict(source="tfds", name="imagenet2012", image_size=16), seed=0)
        assert s.streaming and s.num_classes == 1000 and s.image_shape == (16, 16, 3)
        p = data.make_pipeline(s, mesh=mesh, batch_size=8, eval_batch_size=12,
                               augment_cfg=dict(kind="imagenet"), seed=0)
        train = list(p.train_batches(0))
        evals = list(p.eval_batches("test"))
    assert len(train) == p.steps_per_epoch == 2
    assert train[0]["image"].shape == (8, 16, 16, 3)
    assert train[0]["image"].sharding.spec == P("data")
    assert sum(int(b["mask"].sum()) for b in evals) == 20 and len(evals) == 2
    np.testing.assert_allclose(s.mean, data.dataset.IMAGENET_MEAN)


# -- bundled sample ----------------------------------------------------------------------------

def test_bundled_sample_is_balanced_real_cifar10():
    s = data.load_splits(dict(source="sample"), seed=0)
    assert s.train.images.shape == (10 * sample.TRAIN_PER_CLASS, 32, 32, 3)
    assert (np.bincount(s.train.labels) == sample.TRAIN_PER_CLASS).all()
    assert (np.bincount(s.test.labels) == sample.TEST_PER_CLASS).all()
    assert s.class_names[:3] == ("airplane", "automobile", "bird") and s.num_classes == 10
    assert 0.4 < float(s.mean[0]) < 0.6 and 0.15 < float(s.std[0]) < 0.35
    assert os.path.getsize(sample.SAMPLE_ARCHIVE) < 12 * 2 ** 20


# -- splits ------------------------------------------------------------------------------------

def _indexed(n, num_classes, size=4):
    """uint8 images whose first pixels encode their index; labels i % num_classes."""
    images = np.zeros((n, size, size, 3), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return data.ArrayDataset(images, (np.arange(n) % num_classes).astype(np.int32))


def _ids(images):
    images = np.rint(np.asarray(images, np.float64)).astype(int)
    return images[:, 0, 0, 0] + 256 * images[:, 0, 0, 1]


def _npz(tmp_path, n=600, num_classes=6):
    train, test = _indexed(n, num_classes), _indexed(60, num_classes)
    path = tmp_path / "indexed.npz"
    np.savez(path, x_train=train.images, y_train=train.labels, x_test=test.images,
             y_test=test.labels)
    return dict(source="npz", path=str(path), image_size=4)


def test_heldout_is_disjoint_stratified_and_reproducible(tmp_path):
    cfg = dict(_npz(tmp_path), heldout_size=60)
    a, b = data.load_splits(cfg, seed=3), data.load_splits(cfg, seed=3)
    c = data.load_splits(cfg, seed=4)
    held, train = _ids(a.heldout.images), _ids(a.train.images)
    assert len(held) == 60 and not set(held) & set(train)
    assert sorted(set(held) | set(train)) == list(range(600))
    assert (np.bincount(a.heldout.labels) == 10).all()
    np.testing.assert_array_equal(held, _ids(b.heldout.images))
    assert set(held) != set(_ids(c.heldout.images))
    sub = data.load_splits(dict(cfg, train_per_class=20), seed=3)
    np.testing.assert_array_equal(_ids(sub.heldout.images), held)  # independent of subset
    assert (np.bincount(sub.train.labels) == 20).all()
    assert not set(_ids(sub.train.images)) & set(held)
    with pytest.raises(ValueError, match="config.data.train_per_class=200"):
        data.load_splits(dict(cfg, train_per_class=200), seed=3)
    with pytest.raises(ValueError, match="config.data.heldout_size=600"):
        data.load_splits(dict(cfg, heldout_size=600), seed=3)


# -- pipeline ----------------------------------------------------------------------------------

def _splits(n_train=100, n_test=37):
    train, test = _indexed(n_train, 5), _indexed(n_test, 5)
    return data.Splits(train=train, test=test, heldout=None, num_classes=5,
                       class_names=tuple("abcde"), coarse_class_names=None,
                       mean=np.zeros(3, np.float32), std=np.ones(3, np.float32) / 255,
                       image_size=4)


NO_AUG = dict(kind="none")


def test_train_batches_are_sharded_and_cover_an_epoch(mesh):
    p = data.make_pipeline(_splits(), mesh=mesh, batch_size=16, eval_batch_size=8,
                           augment_cfg=NO_AUG, seed=0)
    batches = list(p.train_batches(0))
    assert p.steps_per_epoch == len(batches) == 6 and p.num_train == 100
    batch = batches[0]
    assert batch["image"].shape == (16, 4, 4, 3) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32
    for value in batch.values():
        assert value.sharding == NamedSharding(mesh, P("data"))
        assert len(value.addressable_shards) == 4
        assert value.addressable_shards[0].data.shape[0] == 4
    ids = np.concatenate([_ids(b["image"]) for b in batches])
    assert len(set(ids)) == 96, "no repeats within an epoch (last partial batch dropped)"
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]), ids % 5)
    other = np.concatenate([_ids(b["image"]) for b in p.train_batches(1)])
    assert not np.array_equal(ids, other), "each epoch has its own order"


def test_resumed_epoch_matches_uninterrupted_tail(mesh):
    kwargs = dict(mesh=mesh, batch_size=8, eval_batch_size=8, seed=5,
                  augment_cfg=dict(kind="cifar", crop_padding=2))
    full = list(data.make_pipeline(_splits(), **kwargs).train_batches(2))
    resumed = list(data.make_pipeline(_splits(), **kwargs).train_batches(2, start_step=7))
    assert len(resumed) == len(full) - 7
    for a, b in zip(full[7:], resumed):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    assert not np.array_equal(full[7]["image"], full[8]["image"])


def test_eval_counts_every_example_once_with_padding_masked(mesh):
    s = _splits(n_test=37)
    p = data.make_pipeline(s, mesh=mesh, batch_size=8, eval_batch_size=8,
                           augment_cfg=dict(kind="cifar"), seed=0)
    batches = list(p.eval_batches("test"))
    assert len(batches) == p.eval_steps("test") == 5 and p.num_eval("test") == 37
    mask = np.concatenate([b["mask"] for b in batches])
    assert mask.sum() == 37 and mask[:37].all()
    ids = np.concatenate([_ids(b["image"]) for b in batches])[mask]
    np.testing.assert_array_equal(np.sort(ids), np.arange(37))
    assert batches[-1]["mask"].sharding.spec == P("data")
    images = np.concatenate([b["image"] for b in batches])[mask]
    np.testing.assert_allclose(images, s.test.images, atol=1e-3, err_msg="not augmented")
    with pytest.raises(ValueError, match="heldout_size"):
        list(p.eval_batches("heldout"))


def test_batch_size_not_divisible_by_devices_names_the_field(mesh):
    with pytest.raises(ValueError, match="config.batch_size=10"):
        data.make_pipeline(_splits(), mesh=mesh, batch_size=10, eval_batch_size=8,
                           augment_cfg=NO_AUG, seed=0)
    with pytest.raises(ValueError, match="config.eval_batch_size=6"):
        data.make_pipeline(_splits(), mesh=mesh, batch_size=8, eval_batch_size=6,
                           augment_cfg=NO_AUG, seed=0)


# -- the Pipeline contract and the helpers both pipelines share --------------------------------

def test_both_pipelines_satisfy_the_pipeline_protocol(mesh):
    device = data.make_pipeline(_splits(), mesh=mesh, batch_size=8, eval_batch_size=8,
                                augment_cfg=NO_AUG, seed=0)
    with tfds.testing.mock_data(num_examples=20):
        s = data.load_splits(dict(source="tfds", name="imagenet2012", image_size=16), seed=0)
        streaming = data.make_pipeline(s, mesh=mesh, batch_size=8, eval_batch_size=12,
                                       augment_cfg=dict(kind="imagenet"), seed=0)
    assert type(device) is data.DevicePipeline and type(streaming) is data.StreamingPipeline
    for p in (device, streaming):
        assert isinstance(p, data.Pipeline) and isinstance(p, batching.PipelineBase)
    assert (streaming.num_eval("test"), streaming.eval_batch("test"),
            streaming.eval_steps("test")) == (20, 12, 2)

    class NoEvalSteps:
        steps_per_epoch, num_train = 1, 1

        def train_batches(self, epoch, start_step=0):
            return iter(())

        def eval_batches(self, split="test"):
            return iter(())
    assert not isinstance(NoEvalSteps(), data.Pipeline)


def test_epoch_order_and_step_keys_are_pinned():
    np.testing.assert_array_equal(batching.epoch_permutation(0, 0, 10),
                                  [2, 7, 8, 3, 4, 9, 1, 6, 5, 0])
    np.testing.assert_array_equal(batching.epoch_permutation(5, 2, 10),
                                  [5, 7, 1, 6, 9, 0, 2, 8, 4, 3])
    assert data.epoch_permutation is batching.epoch_permutation
    want = jax.random.fold_in(jax.random.fold_in(jax.random.key(3), 2), 7)
    np.testing.assert_array_equal(jax.random.key_data(batching.step_key(3, 2, 7)),
                                  jax.random.key_data(want))


def test_eval_plan_pads_and_masks_the_last_batch():
    plan = list(batching.eval_plan(10, 4))
    assert len(plan) == 3 and all(i.dtype == np.int32 for i, _ in plan)
    np.testing.assert_array_equal(plan[1][0], [4, 5, 6, 7])
    np.testing.assert_array_equal(plan[2][0], [8, 9, 0, 0])
    np.testing.assert_array_equal(plan[2][1], [True, True, False, False])
    assert list(batching.eval_plan(0, 4)) == []


def test_eval_batch_sizes_clamp_to_the_split_with_one_warning(caplog):
    s = _splits(n_train=100, n_test=37)
    assert batching.eval_batch_sizes(s, 8, 4) == {"train": 8, "test": 8}
    assert not caplog.records
    with caplog.at_level("WARNING"):
        sizes = batching.eval_batch_sizes(s, 4000, 4)
    assert sizes == {"train": 100, "test": 40}
    assert len(caplog.records) == 1 and "config.eval_batch_size=4000" in caplog.text


def test_pipeline_base_steps_rows_and_start_step(mesh):
    p = batching.PipelineBase(_splits(), mesh=mesh, batch_size=16, eval_batch_size=8, seed=0)
    assert (p.num_train, p.steps_per_epoch, p.batch_size) == (100, 6, 16)
    assert p.sharding == NamedSharding(mesh, P("data"))
    np.testing.assert_array_equal(p._step_rows(np.arange(100), 2), np.arange(32, 48))
    assert p._train_steps(4) == range(4, 6) and p._train_steps(6) == range(6, 6)
    with pytest.raises(ValueError, match=r"start_step=7 must be in \[0, 6\]"):
        p._train_steps(7)
    with pytest.raises(ValueError, match="heldout_size"):
        p.eval_batch("heldout")
    with pytest.raises(ValueError, match="config.batch_size=128 is larger than the 100"):
        batching.PipelineBase(_splits(), mesh=mesh, batch_size=128, eval_batch_size=8, seed=0)
