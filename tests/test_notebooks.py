"""Every notebook runs end to end on CPU with TINY = True (nbclient), and is kept clean."""

import os
import pathlib

import nbformat
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _inject_tiny(nb, workdir: pathlib.Path):
    """Inserts `TINY = True` and `WORKDIR` right after the cell tagged `parameters`."""
    index = next(i for i, c in enumerate(nb.cells)
                 if "parameters" in c.metadata.get("tags", []))
    cell = nbformat.v4.new_code_cell(f"TINY = True\nWORKDIR = {str(workdir)!r}")
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)
    return nb


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """The kernels' environment: the repo importable, one JAX compilation cache shared by
    the notebooks (they compile the same ResNet-8 programs), the test session's devices."""
    cache = tmp_path_factory.mktemp("jax_cache")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def test_there_are_three_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["quickstart.ipynb",
                                           "snapshot_distillation_tpu.ipynb",
                                           "tolerant_teacher_generations.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_and_has_parameters(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    (params,) = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    for name in ("TINY = False", "WORKDIR =", "NUM_EPOCHS =", "DATA_SOURCE ="):
        assert name in params.source


def test_notebooks_match_their_generator():
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_notebooks",
                                                  REPO / "notebooks" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in NOTEBOOKS:
        built = module.build(path.name)
        stored = nbformat.read(path, as_version=4)
        assert [c.source for c in built.cells] == [c.source for c in stored.cells], path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_tiny(path, tmp_path, kernel_env):
    from nbclient import NotebookClient
    nb = _inject_tiny(nbformat.read(path, as_version=4), tmp_path / "run")
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=kernel_env)
    report_md = tmp_path / "run" / "seed0" / "report.md"
    assert report_md.is_file()
    assert (tmp_path / "run" / "seed0" / "curves.png").is_file()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)   # figures displayed
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "epoch 1/" in text and "test top-1" in text      # per-epoch lines (logging set up)
    assert "it/s]" not in text and "\r" not in text         # no tqdm bars in the saved cells


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_settings_for_colab(path):
    """REPO_URL is a marked setting of the first code cell (or JAXKD_REPO_URL), never a
    placeholder; progress bars are off; the data options are spelled out."""
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code[0].startswith("# >>> SET ME on Colab") and 'REPO_URL = ""' in code[0]
    assert "YOUR_ORG" not in "".join(code)
    install = next(c for c in code if "JAXKD_REPO_URL" in c and "pip" in c)
    assert "needs the jaxkd repository's git URL" in install
    assert 'logging.getLogger("jaxkd")' in install
    assert any("config.progress_bar = False" in c for c in code)
    if "DATA_PATH" in code[0]:
        text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for option in ('"tfds"', '"cifar_binary"', '"sample"'):
            assert option in text


def test_install_cell_fails_clearly_without_a_repo_url(monkeypatch):
    """Where jaxkd is not importable and REPO_URL is unset, one clear error, no pip call."""
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    install = next(c.source for c in nb.cells
                   if c.cell_type == "code" and "JAXKD_REPO_URL" in c.source
                   and "pip" in c.source)
    env = {"REPO_URL": "", "__name__": "__main__"}
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.delenv("JAXKD_REPO_URL", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jaxkd" else real(name, *a))
    with pytest.raises(RuntimeError, match="set REPO_URL in the first code cell"):
        exec(compile(install, "install", "exec"), env)


def test_notebook_runs_are_git_ignored():
    import subprocess
    done = subprocess.run(["git", "check-ignore", "-q", "notebooks/runs/quickstart/x"],
                          cwd=REPO)
    assert done.returncode == 0
