"""Use what you trained (issue 20): the README's train -> evaluate -> export -> predict path
run as written through the real `jaxkd` entry point in subprocesses, `jaxkd.load_model`,
`jaxkd --help`, `jaxkd show-config` and the configs shipped in the package."""

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
README_PREFIX = "/tmp/jaxkd_use"
SAMPLE_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                  "ship", "truck"]


def _env() -> dict:
    # As a user runs it: no test XLA_FLAGS (the CLI splits the CPU host itself).
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    return env


def cli(*args, check: bool = True) -> subprocess.CompletedProcess:
    """`jaxkd ARGS` as `python -m jaxkd.main ARGS` (the console script's function)."""
    return _run([sys.executable, "-m", "jaxkd.main", *args], check=check)


def _run(argv, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=300)
    if check:
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-3000:])
    return done


def readme_commands() -> list[list[str]]:
    """The bash block of the README's "Use what you trained" section, one argv a line."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Use what you trained", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.strip().splitlines()]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Runs the README's commands as written, /tmp/jaxkd_use* moved under a tmp folder."""
    root = tmp_path_factory.mktemp("use")
    outputs = {}
    for argv in readme_commands():
        argv = [a.replace(README_PREFIX, str(root / "jaxkd_use")) for a in argv]
        if argv[0] == "jaxkd":
            done = cli(*argv[1:])
        else:
            assert argv[:2] == ["python", "-m"], argv
            done = _run([sys.executable, *argv[1:]])
        outputs[argv[1] if argv[0] == "jaxkd" else argv[2]] = done.stdout
    return root, outputs


def test_readme_path_is_the_four_commands():
    commands = readme_commands()
    assert [c[1] for c in commands if c[0] == "jaxkd"] == \
        ["train", "evaluate", "export", "predict"]
    assert "--config=configs/quickstart.py" in commands[0]
    assert {"--config.num_epochs=1", "--config.generations=0"} <= set(commands[0])


def test_evaluate_reports_the_runs_own_top1(readme_run):
    root, out = readme_run
    workdir = root / "jaxkd_use"
    results = json.loads((workdir / "results.json").read_text())
    last = results["phases"][-1]
    assert last["name"] == "gen0"
    table = out["evaluate"]
    assert re.search(rf"top-1\s+{last['last_top1']:.4f}", table), table
    assert "top-5" in table and "ECE" in table and "gen0" in table
    # The same through a checkpoint path, as JSON: exactly the run's last evaluation.
    done = cli("evaluate", f"--checkpoint={workdir}/phases/gen0/final", "--json")
    report = json.loads(done.stdout)
    assert report["phase"] == "gen0" and report["num_examples"] == 1000
    assert report["top1"] == pytest.approx(last["last_top1"], abs=1e-6)
    assert report["top5"] == pytest.approx(last["last_top5"], abs=1e-6)
    assert 0.0 <= report["ece"] <= 1.0
    assert not (workdir / "evaluation.json").exists()


def test_report_is_the_command_of_jaxkd_report(readme_run):
    """`jaxkd report` writes what `python -m jaxkd.report` writes and prints its path."""
    root, _ = readme_run
    workdir = root / "jaxkd_use"
    done = cli("report", f"--workdir={workdir}", "--noevaluate")
    assert done.stdout.split() == [str(workdir / "report.md")]
    assert "gen0" in (workdir / "report.md").read_text()
    missing = cli("report", check=False)
    assert missing.returncode == 1 and "--workdir" in missing.stderr


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


def test_help_lists_commands_methods_models_and_configs():
    from jaxkd import models, plans
    from jaxkd.cli import configs
    for args in (("--help",), ()):
        done = cli(*args)
        text = " ".join(done.stdout.split())
        for word in ["train", "grid", "report", "evaluate", "export", "predict",
                     "show-config",
                     *plans.PLANS, *models.list_models(), *configs.names()]:
            assert re.search(rf"(^|[\s,]){re.escape(word)}([\s,]|$)", text), word
    assert "sd_resnet56" in configs.names() and "quickstart" in configs.names()
    unknown = cli("frobnicate", check=False)
    assert unknown.returncode == 2 and "show-config" in unknown.stderr


def test_show_config_by_path_and_by_name():
    by_path = cli("show-config", "configs/sd_resnet56.py").stdout
    by_name = cli("show-config", "sd_resnet56", "--config.num_epochs=8").stdout
    assert "model = 'resnet56'" in by_path and "num_epochs = 8" in by_name
    assert "plan (snapshot_distillation" in by_path and "cycle1" in by_path
    assert by_path.splitlines()[2:6] == by_name.splitlines()[2:6]
    missing = cli("show-config", "no_such_config", check=False)
    assert missing.returncode == 2 and "sd_resnet56" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_config_names_resolve_without_a_checkout(tmp_path, monkeypatch):
    from jaxkd.cli import configs
    assert configs.resolve_config_flag(["--config=quickstart", "--workdir=w"]) == \
        [f"--config={REPO / 'configs' / 'quickstart.py'}", "--workdir=w"]
    monkeypatch.chdir(tmp_path)                  # no ./configs: the package's copy
    assert configs.resolve("sd_resnet56") == str(configs.PACKAGE_CONFIGS / "sd_resnet56.py")
    assert configs.resolve("configs/sd_resnet56.py") == \
        str(configs.PACKAGE_CONFIGS / "sd_resnet56.py")
    assert configs.resolve("no_such_config") is None


def test_the_wheel_ships_the_top_level_configs(tmp_path):
    """A built wheel holds configs/*.py as jaxkd/configs/ (one copy in the repository)."""
    import subprocess
    import sys
    import zipfile
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode:      # no `wheel` package for --no-build-isolation: with isolation
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                               "-w", str(tmp_path), str(REPO)],
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("jaxkd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {f"jaxkd/configs/{p.name}" for p in (REPO / "configs").glob("*.py")}
    assert top <= names and "jaxkd/cli/__init__.py" in names
    # Every package of the source tree (pyproject lists them one by one) and every module.
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "jaxkd").rglob("*.py")}
    assert source <= names, sorted(source - names)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'jaxkd = "jaxkd.main:run_main"' in pyproject
