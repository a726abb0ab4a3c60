"""jaxkd.cli.export (`jaxkd export`): one self-contained file of a trained phase, from the
README's run (`readme_run`)."""

import json

import numpy as np
import pytest

from jaxkd.cli import export
from tests.cli.helpers import SAMPLE_CLASSES


def test_export_is_self_contained_and_matches_the_workdir_model(readme_run):
    import jaxkd
    from jaxkd import analysis, exported
    from jaxkd.cli import evaluate
    root, _ = readme_run
    workdir, model_file = root / "jaxkd_use", root / "jaxkd_use_model.msgpack"
    meta = json.loads(model_file.with_name(model_file.name + ".json").read_text())
    assert meta["model"] == "resnet8" and meta["num_classes"] == 10
    assert meta["class_names"] == SAMPLE_CLASSES
    assert meta["image_shape"] == [32, 32, 3] and meta["phase"] == "gen0"
    assert meta["jaxkd_version"] == jaxkd.__version__
    assert len(meta["mean"]) == len(meta["std"]) == 3
    # Only the file is needed: a copy elsewhere loads alone.
    copy = root / "elsewhere" / "model.msgpack"
    copy.parent.mkdir()
    copy.write_bytes(model_file.read_bytes())
    apply_fn, variables, loaded = jaxkd.load_model(copy)
    assert {k: v for k, v in loaded.items()} == meta
    ws = evaluate.make_workspace(workdir)      # the workdir's model and data
    ev = analysis.evaluate_workdir(workdir, workspace=ws)
    images = ws.splits.test.images
    logits = np.asarray(apply_fn(variables, images))
    np.testing.assert_allclose(logits, ev.logits["gen0"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(apply_fn(variables, images[:4] / 255.0)),
                               logits[:4], rtol=1e-4, atol=1e-4)   # float in [0, 1]
    np.testing.assert_allclose(np.asarray(ws.splits.mean), meta["mean"], rtol=1e-6)
    with pytest.raises(ValueError, match="not an exported jaxkd model"):
        exported.read(workdir / "config.json")


def test_export_in_process_of_a_named_phase_and_of_a_checkpoint(readme_run, tmp_path):
    import jax
    import jaxkd
    root, _ = readme_run
    workdir = root / "jaxkd_use"
    results = json.loads((workdir / "results.json").read_text())
    meta = export.export(workdir, tmp_path / "m.msgpack", phase="gen0")
    assert (meta["phase"], meta["role"], meta["method"]) == ("gen0", "teacher", "born_again")
    assert meta["data_stats"] == "results.json"          # the run recorded its data
    assert meta["last_top1"] == results["phases"][0]["last_top1"]
    assert meta["checkpoint"] == str(workdir / "phases" / "gen0")
    assert json.loads((tmp_path / "m.msgpack.json").read_text()) == meta
    final = workdir / "phases" / "gen0" / "final"
    by_ckpt = export.export(workdir, tmp_path / "c.msgpack", checkpoint=str(final))
    assert by_ckpt["phase"] == "gen0" and by_ckpt["last_top1"] is None
    assert by_ckpt["checkpoint"] == str(final)
    _, a, _ = jaxkd.load_model(tmp_path / "m.msgpack")
    _, b, _ = jaxkd.load_model(tmp_path / "c.msgpack")
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))   # the same final weights


def test_export_of_an_unknown_phase_is_one_line(readme_run, tmp_path, capsys):
    root, _ = readme_run
    with pytest.raises(SystemExit) as info:
        export.export(root / "jaxkd_use", tmp_path / "m.msgpack", phase="gen5")
    assert info.value.code == 2
    assert "--phase=gen5: the run has no such phase; its phases: gen0" in \
        capsys.readouterr().err
    assert not (tmp_path / "m.msgpack").exists()


def test_export_needs_workdir_and_out(capsys):
    with pytest.raises(SystemExit) as info:
        export.run(["jaxkd export", "--workdir=/tmp/w"])
    assert info.value.code == 1 and "--out" in capsys.readouterr().err
