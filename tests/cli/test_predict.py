"""jaxkd.cli.predict (`jaxkd predict`): class names and probabilities of images with an
exported model (the README's run, `readme_run`), and how it finds and reads images."""

import json
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from jaxkd.cli import predict, sample_images
from tests.cli.helpers import SAMPLE_CLASSES, cli


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory):
    """The sample's first test JPEG of each class as files (`jaxkd.cli.sample_images`)."""
    return sample_images.write_sample_images(tmp_path_factory.mktemp("images"))


def test_predict_sample_names_the_classes_and_scores_them(readme_run):
    _, out = readme_run
    text = out["predict"]
    blocks = re.findall(r"^sample:test/(\w+)/(\d+)\.jpg  \(true class: (\w+)\)\n"
                        r"((?:  +\S+  \S+\n)+)", text, re.M)
    assert [(b[0], b[1], b[2]) for b in blocks] == [(c, "0000", c) for c in SAMPLE_CLASSES]
    hits = 0
    for label, _, _, rows in blocks:
        rows = [r.split() for r in rows.strip().splitlines()]
        assert len(rows) == 5 and all(name in SAMPLE_CLASSES for _, name in rows)
        probs = [float(p) for p, _ in rows]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-3
        hits += rows[0][1] == label
    assert text.rstrip().splitlines()[-1] == \
        f"top-1 on the 10 sample images: {hits}/10 ({10 * hits:.1f}%)"


def test_predict_files_equal_the_sample_and_the_model(readme_run, sample_files):
    import jaxkd
    root, _ = readme_run
    model = f"--model={root / 'jaxkd_use_model.msgpack'}"
    done = cli("predict", model, "--top=3", "--json", str(sample_files[0]),
               str(sample_files[1]))
    predictions = json.loads(done.stdout)
    assert [len(p["top"]) for p in predictions] == [3, 3]
    assert all("true_class" not in p for p in predictions)
    apply_fn, variables, meta = jaxkd.load_model(root / "jaxkd_use_model.msgpack")
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sample_files[:2]])
    expected = np.asarray(apply_fn(variables, pixels)).argmax(-1)
    assert [p["top"][0]["class"] for p in predictions] == \
        [meta["class_names"][i] for i in expected]
    # the same JPEG bytes in memory (--sample) and as files: the same probabilities
    both = json.loads(cli("predict", model, "--top=3", "--json", "--sample=1",
                          str(sample_files[0])).stdout)
    assert both[0]["top"] == predictions[0]["top"]
    assert [p["path"] for p in both[1:3]] == ["sample:test/airplane/0000.jpg",
                                              "sample:test/automobile/0000.jpg"]
    assert both[1]["true_class"] == "airplane" and both[1]["top"] == predictions[0]["top"]
    assert both[2]["top"] == predictions[1]["top"] and len(both) == 11
    bad = cli("predict", model, str(root / "missing"), check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_predict_in_process_sorts_and_batches(readme_run, sample_files):
    root, _ = readme_run
    model = root / "jaxkd_use_model.msgpack"
    paths = predict.image_paths([str(sample_files[0].parent)])
    whole = predict.predict(model, paths, top=20)
    assert [len(r["top"]) for r in whole] == [10] * 10      # at most every class
    for r in whole:
        probs = [t["probability"] for t in r["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, 1e-5)
        assert {t["class"] for t in r["top"]} == set(SAMPLE_CLASSES)
    batched = predict.predict(model, paths, top=2, batch_size=3)
    assert [[t["index"] for t in r["top"]] for r in batched] == \
        [[t["index"] for t in r["top"][:2]] for r in whole]


def test_image_paths_of_files_and_folders(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.png", "d/sub/a.JPG", "d/notes.txt", "c.jpeg"):
        (tmp_path / name).write_bytes(b"")
    got = predict.image_paths([str(tmp_path / "c.jpeg"), str(tmp_path / "d")])
    assert got == [tmp_path / "c.jpeg", tmp_path / "d" / "b.png", tmp_path / "d/sub/a.JPG"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: no image files \(.png"):
        predict.image_paths([str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="missing.png: no such image file or folder"):
        predict.image_paths([str(tmp_path / "missing.png")])


def test_load_image_converts_and_resizes(tmp_path):
    Image.new("RGB", (64, 48), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (32, 32), 100).save(tmp_path / "grey.png")
    red = predict.load_image(tmp_path / "red.png", (32, 32, 3))
    assert red.shape == (32, 32, 3) and red.dtype == np.uint8
    assert (red[..., 0] == 255).all() and (red[..., 1:] == 0).all()
    grey = predict.load_image(tmp_path / "grey.png", (16, 16, 1))
    assert grey.shape == (16, 16, 1) and (grey == 100).all()
    assert (predict.load_image(tmp_path / "grey.png", (32, 32, 3)) == 100).all()
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(ValueError, match="fake.png: not an image Pillow can read"):
        predict.load_image(tmp_path / "fake.png", (32, 32, 3))


def test_format_text_is_a_path_then_its_classes():
    results = [{"path": "a.png", "top": [{"class": "cat", "index": 3, "probability": 0.75},
                                         {"class": "dog", "index": 5, "probability": 0.125}]}]
    assert predict.format_text(results) == "a.png\n   0.7500  cat\n   0.1250  dog"
    known = [dict(results[0], true_class="dog"), dict(results[0], path="b.png",
                                                      true_class="cat")]
    assert predict.format_text(known).splitlines()[0] == "a.png  (true class: dog)"
    assert predict.format_text(known).splitlines()[-1] == \
        "top-1 on the 2 sample images: 1/2 (50.0%)"


def test_predict_without_images_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        predict.run(["jaxkd predict", f"--model={tmp_path / 'm.msgpack'}"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("FATAL name at least one image file or folder")
    with pytest.raises(SystemExit) as info:
        predict.run(["jaxkd predict", f"--model={tmp_path / 'm.msgpack'}", "--sample=-1"])
    assert info.value.code != 0
