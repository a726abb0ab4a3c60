"""jaxkd.cli.predict (`jaxkd predict`): class names and probabilities of images with an
exported model (the README's run, `readme_run`), and how it finds and reads images."""

import json
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from jaxkd.cli import predict
from tests.cli.helpers import SAMPLE_CLASSES, cli


def test_predict_names_the_samples_classes(readme_run):
    import jaxkd
    from PIL import Image
    root, out = readme_run
    images = sorted((root / "jaxkd_use_images").iterdir())
    assert len(images) == 10
    blocks = re.findall(r"^(\S.*)\n((?:\s+\S+\s+\S+\n?)+)", out["predict"], re.M)
    assert [pathlib.Path(b[0]).name for b in blocks] == [p.name for p in images]
    for _, rows in blocks:
        rows = [r.split() for r in rows.strip().splitlines()]
        assert len(rows) == 5 and all(name in SAMPLE_CLASSES for _, name in rows)
        probs = [float(p) for p, _ in rows]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-3
    done = cli("predict", f"--model={root / 'jaxkd_use_model.msgpack'}", "--top=3",
                 "--json", str(images[0]), str(images[1]))
    predictions = json.loads(done.stdout)
    assert [len(p["top"]) for p in predictions] == [3, 3]
    apply_fn, variables, meta = jaxkd.load_model(root / "jaxkd_use_model.msgpack")
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in images[:2]])
    expected = np.asarray(apply_fn(variables, pixels)).argmax(-1)
    assert [p["top"][0]["class"] for p in predictions] == \
        [meta["class_names"][i] for i in expected]
    bad = cli("predict", f"--model={root / 'jaxkd_use_model.msgpack'}",
                str(root / "missing"), check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_predict_in_process_sorts_and_batches(readme_run):
    root, _ = readme_run
    model = root / "jaxkd_use_model.msgpack"
    paths = predict.image_paths([str(root / "jaxkd_use_images")])
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


def test_predict_without_images_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        predict.run(["jaxkd predict", f"--model={tmp_path / 'm.msgpack'}"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("FATAL name at least one image file or folder")
