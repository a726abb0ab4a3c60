"""Writes the notebooks of this folder from the cell sources below (no outputs).

    python notebooks/build_notebooks.py

Every notebook has a `parameters` cell (tagged for papermill and for tests/test_notebooks.py,
which injects `TINY = True` and a temporary `WORKDIR` right after it). With `TINY` a notebook
runs on CPU in about a minute: the bundled CIFAR-10 sample, ResNet-8, 1-2 epochs per phase,
batch 32. The notebooks only call the library (`jaxkd.run.run`, `jaxkd.report`,
`jaxkd.analysis`) and the repository's config files; edit them here, not in Jupyter.
"""

from __future__ import annotations

import pathlib

import nbformat
from nbformat import v4

HERE = pathlib.Path(__file__).resolve().parent

# The first lines of every parameters cell: where to install jaxkd from when it is not
# importable (a fresh Colab runtime). The repository's public URL is not fixed here: the
# user sets it (or the JAXKD_REPO_URL environment variable) and the install cell stops with
# a clear message when it is needed and unset.
REPO_URL_PARAM = '''# >>> SET ME on Colab: the git URL of the jaxkd repository (or set the JAXKD_REPO_URL
# environment variable). Not needed in a local checkout with jaxkd installed.
REPO_URL = ""'''

INSTALL = '''import importlib.util
import os
import pathlib
import subprocess
import sys

REPO_URL = REPO_URL or os.environ.get("JAXKD_REPO_URL", "")


def _need_repo_url(what):
    if not REPO_URL:
        raise RuntimeError(
            f"{what} needs the jaxkd repository's git URL: set REPO_URL in the first code "
            f"cell (parameters) or the JAXKD_REPO_URL environment variable, then rerun.")


if importlib.util.find_spec("jaxkd") is None:   # e.g. a fresh Colab runtime
    _need_repo_url("Installing jaxkd (it is not importable here)")
    # Keep the runtime's jax/jaxlib (its TPU/GPU build): pinned as constraints, pip either
    # installs jaxkd beside them (jaxkd declares ranges) or stops with a conflict.
    import importlib.metadata as metadata
    keep = []
    for dist in ("jax", "jaxlib"):
        try:
            keep.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    constraints = pathlib.Path("jaxkd_keep_runtime.txt")
    constraints.write_text("\\n".join(keep) + "\\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints),
                    f"jaxkd[tfds] @ git+{REPO_URL}"], check=True)
# configs/ (the papers' settings) is not part of the package: use the checkout this notebook
# lives in, else clone one.
REPO_DIR = next((d for d in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
                 if (d / "configs" / "quickstart.py").is_file()), None)
if REPO_DIR is None:
    REPO_DIR = pathlib.Path("jaxkd_src").absolute()
    if not REPO_DIR.exists():
        _need_repo_url("Cloning the configs/ folder")
        subprocess.run(["git", "clone", "--depth=1", REPO_URL, str(REPO_DIR)], check=True)
print("configs from", REPO_DIR / "configs")

# Per-epoch lines (test accuracy, img/s) in the cell output: the kernel has no logging
# set up, and jaxkd logs through the 'jaxkd' logger. One handler, also on a rerun.
import logging

_log = logging.getLogger("jaxkd")
_log.setLevel(logging.INFO)
_log.propagate = False
if not any(getattr(h, "_jaxkd_notebook", False) for h in _log.handlers):
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    _handler._jaxkd_notebook = True
    _log.addHandler(_handler)'''

INSTALL_NOTE = """## Install

Skipped when `jaxkd` is importable (a local checkout installed with `pip install -e .`).
On Colab it installs the library from git (set `REPO_URL` in the first code cell, or the
`JAXKD_REPO_URL` environment variable, to where this repository lives; the cell stops with
a message saying so when it is unset) with the `tfds` extra, keeping the runtime's own `jax` and `jaxlib` (its
TPU or GPU build): they are passed to pip as constraints, so pip installs jaxkd beside them
or, if the runtime's jax is outside jaxkd's supported range (jax 0.10.2 to 0.12.x, see
`pyproject.toml`), stops with a version conflict instead of replacing it. The cell also
sends jaxkd's log lines (one per epoch: test accuracy, throughput) to the cell output;
training runs with `config.progress_bar = False`, since tqdm bars flood a saved notebook."""

DATA_NOTE = """## Data (`DATA_SOURCE`)

- `"tfds"`: the paper's data set through TensorFlow Datasets (the paper default; needs the
  `jaxkd[tfds]` extra, which the install cell adds, and downloads and prepares it once,
  which needs `tensorflow-cpu`).
- `"cifar_binary"` with `DATA_PATH`: offline, the official binary archive, e.g.
  `cifar-100-binary.tar.gz` from https://www.cs.toronto.edu/~kriz/cifar.html (upload it, or
  put it on Google Drive, and set `DATA_PATH` to it).
- `"sample"`: the CIFAR-10 sample bundled with the package (no download; what `TINY = True`
  and CPU runs use: ResNet-8, 16 images per class, 1-2 epochs per phase)."""

RUNTIME = '''import jax

print("jax", jax.__version__, "| backend:", jax.default_backend())
print("devices:", jax.devices())
ACCELERATOR = jax.default_backend() in ("tpu", "gpu")
if not ACCELERATOR:
    print("CPU only: fine for TINY = True; a paper-sized run needs a GPU or TPU runtime.")'''

LOAD_CONFIG = '''import importlib.util

from jaxkd import analysis, report, run


def load_config(name):
    """get_config() of configs/<name>.py of the checkout (as `--config=configs/<name>.py`)."""
    spec = importlib.util.spec_from_file_location(f"config_{name}",
                                                  REPO_DIR / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()'''

TINY_CONFIG = '''if TINY:   # CPU smoke test: bundled sample, ResNet-8, 160 images, batch 32
    config.model = "resnet8"
    config.data.source, config.data.name = "sample", ""
    config.data.train_per_class = 16
    config.batch_size, config.eval_batch_size = 32, 200
    config.schedule.boundaries = ()
    config.log_every_steps = 5
config.dtype = "bfloat16" if ACCELERATOR and BFLOAT16 and not TINY else "float32"
config.progress_bar = False   # per-epoch log lines instead: tqdm bars flood a saved notebook
# Batches split evenly over the devices (e.g. 8 TPU cores): round the eval batch up.
config.eval_batch_size = -(-config.eval_batch_size // jax.device_count()) * jax.device_count()'''

SHOW_REPORT = '''from IPython.display import Image, Markdown, display

run_dir = pathlib.Path(WORKDIR) / f"seed{SEEDS[0]}"
text = (run_dir / "report.md").read_text()
display(Markdown(text.split("## Figures")[0]))   # the tables; the figures follow
for png in ("accuracy.png", "curves.png", "second_class.png"):
    if (run_dir / png).exists():
        display(Image(filename=str(run_dir / png)))'''

RUN_SEEDS = '''workdirs = []
for seed in SEEDS:   # one workdir per seed; rerunning this cell resumes where it stopped
    config.seed = seed
    workdirs.append(pathlib.Path(WORKDIR) / f"seed{seed}")
    results = run.run(config, workdirs[-1])   # also writes report.md + figures (write_report)
if len(workdirs) > 1:   # mean ± std over the seeds
    print(report.aggregate_report(workdirs, pathlib.Path(WORKDIR)).read_text())'''


def _code(source: str, tags: tuple = ()) -> nbformat.NotebookNode:
    cell = v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _common(params: str, data_note: bool = True) -> list:
    cells = [_code(REPO_URL_PARAM + "\n" + params, ("parameters",))]
    cells += [v4.new_markdown_cell(DATA_NOTE)] if data_note else []
    return cells + [v4.new_markdown_cell(INSTALL_NOTE), _code(INSTALL),
                    v4.new_markdown_cell("## Runtime"), _code(RUNTIME), _code(LOAD_CONFIG)]


def quickstart() -> list:
    intro = """# jaxkd quickstart: a teacher and a born-again student

**Runtime:** any; a CPU runtime is enough (the measured time of this run is in the
README, "Two commands"; `TINY`: about a minute).

Trains a ResNet-8 teacher and a born-again ResNet-8 student on the CIFAR-10 sample shipped
with the package (no download) with `configs/quickstart.py`, then shows the run's report:
accuracy per phase, training curves, secondary information (Yang et al. 2018, Table 1 and
Figure 1), student-teacher agreement."""
    params = '''TINY = False               # True: 1 epoch per phase on 160 images (tests)
WORKDIR = "runs/quickstart"  # checkpoints, metrics, results.json, report.md, figures
CONFIG = "quickstart"        # configs/quickstart.py
NUM_EPOCHS = 8
DATA_SOURCE = "sample"       # the bundled CIFAR-10 sample (no download, CPU is enough)
SEEDS = (0,)
BFLOAT16 = False'''
    tiny = '''if TINY:
    NUM_EPOCHS, SEEDS = 1, (0,)'''
    config = f'''config = load_config(CONFIG)
config.num_epochs = NUM_EPOCHS
config.data.source = DATA_SOURCE
{TINY_CONFIG}
print(config)'''
    return ([v4.new_markdown_cell(intro)] + _common(params, data_note=False) + [
        _code(tiny), v4.new_markdown_cell("## Config and training"), _code(config),
        _code(RUN_SEEDS), v4.new_markdown_cell("## Report"), _code(SHOW_REPORT)])


def snapshot_distillation() -> list:
    intro = """# Snapshot distillation on CIFAR-100 (Colab TPU / GPU)

**Runtime:** a Colab TPU (v2-8 or newer; the batch splits over its 8 cores) or a GPU
runtime for the paper-sized run; `TINY = True` runs on CPU.

Yang et al., *Snapshot Distillation: Teacher-Student Optimization in One Generation*,
CVPR 2019. One run of `NUM_EPOCHS` split into `CYCLES` mini-generations; the learning rate
restarts a cosine in each (Eqn 5) and the snapshot at the end of mini-generation k-1 teaches
mini-generation k with `(1 + 1/T) CE + KL(softmax(t/T) || softmax(z))` (Eqn 3). The report
gives the paper's Table 3 row: error at the end of each mini-generation, best, and the
ensembles (snapshot ensemble; SD ensemble with the k-th snapshot's logits scaled by
T^(k-1)). Defaults: `configs/sd_resnet56.py`, CIFAR-100 through TFDS, 164 epochs (about
30-45 min on an A100-class GPU). Put `WORKDIR` on Google Drive to keep it across sessions;
rerunning resumes."""
    params = '''TINY = False                     # True: CPU smoke test (bundled sample, ResNet-8)
WORKDIR = "runs/sd_resnet56_cifar100"
CONFIG = "sd_resnet56"             # configs/sd_resnet56.py: the paper's CIFAR setting
NUM_EPOCHS = 164
CYCLES = 4                         # mini-generations (must divide NUM_EPOCHS)
TEMPERATURE = 2.0                  # T of Eqn 3 (the paper uses 2 or 3)
DATA_SOURCE = "tfds"               # "tfds" (paper default), "cifar_binary" + DATA_PATH
DATA_PATH = ""                     # (offline archive) or "sample" (CPU): see "Data" below
SEEDS = (0,)                       # several seeds: an aggregate with mean ± std
BFLOAT16 = True                    # bfloat16 activations on TPU / GPU'''
    tiny = '''if TINY:   # CPU: the bundled sample, whatever DATA_SOURCE says
    NUM_EPOCHS, CYCLES, DATA_SOURCE, SEEDS = 2, 2, "sample", (0,)
print("data source:", DATA_SOURCE, DATA_PATH)'''
    config = f'''config = load_config(CONFIG)
config.num_epochs = NUM_EPOCHS
config.snapshot.cycles = CYCLES
config.snapshot.temperature = TEMPERATURE
config.data.source, config.data.path = DATA_SOURCE, DATA_PATH
{TINY_CONFIG}
print(config)'''
    sd_table = '''# The snapshot-distillation table of the first seed (also in report.md).
records = analysis.load_results(run_dir)["phases"]
display(Markdown(report.sd_section(records, analysis.load_results(run_dir))))'''
    return ([v4.new_markdown_cell(intro)] + _common(params) + [
        _code(tiny), v4.new_markdown_cell("## Config and training"), _code(config),
        _code(RUN_SEEDS), v4.new_markdown_cell("## Report"), _code(SHOW_REPORT),
        _code(sd_table)])


def tolerant_teacher() -> list:
    intro = """# Tolerant teachers: knowledge distillation in generations (Colab TPU / GPU)

**Runtime:** a GPU runtime (or a Colab TPU) for the paper-sized run; `TINY = True` runs on
CPU.

Yang et al., *Knowledge Distillation in Generations: More Tolerant Teachers Educate Better
Students*. A patriarch is trained with `eta CE + (1 - eta) TSD` (top score difference over
the K = 5 highest scores, Eqn 3; u = 0.6), then each generation learns from the previous
one with `lambda CE + (1 - lambda) KL` (Eqn 2; lambda = 0.6): the process D(0.6, 0.6). The
report shows each generation's best / last accuracy and the ensembles of generations 1..m
(Figure 2), the top-1..top-4 confidences on the training set (Table 1), the (true class,
2nd class) matrices (Figure 1) and Dist^C / Dist^S on penultimate features (Eqn 4, Table 2;
CIFAR-100 superclasses). Defaults: `configs/tt_resnet110.py` with 5 students, CIFAR-100
through TFDS, 164 epochs per generation (about 0.5-1 h per generation on an A100-class
GPU). Put `WORKDIR` on Google Drive to keep it across sessions; rerunning resumes, and
`GENERATIONS` may be raised later on the same workdir."""
    params = '''TINY = False                     # True: CPU smoke test (bundled sample, ResNet-8)
WORKDIR = "runs/tt_resnet110_cifar100"
CONFIG = "tt_resnet110"            # configs/tt_resnet110.py: D(0.6, 0.6), ResNet-110
NUM_EPOCHS = 164                   # per generation
GENERATIONS = 5                    # students after the patriarch
U, LABEL_WEIGHT = 0.6, 0.6         # D(u, lambda)
DATA_SOURCE = "tfds"               # "tfds" (paper default), "cifar_binary" + DATA_PATH
DATA_PATH = ""                     # (offline archive) or "sample" (CPU): see "Data" below
SEEDS = (0,)                       # several seeds: an aggregate with mean ± std
BFLOAT16 = True                    # bfloat16 activations on TPU / GPU'''
    tiny = '''if TINY:   # CPU: the bundled sample, whatever DATA_SOURCE says
    NUM_EPOCHS, GENERATIONS, DATA_SOURCE, SEEDS = 1, 1, "sample", (0,)
print("data source:", DATA_SOURCE, DATA_PATH)'''
    config = f'''config = load_config(CONFIG)
config.num_epochs = NUM_EPOCHS
config.generations = GENERATIONS
config.tolerant_teacher.u = U
config.tolerant_teacher.label_weight = LABEL_WEIGHT
config.data.source, config.data.path = DATA_SOURCE, DATA_PATH
{TINY_CONFIG}
print(config)'''
    secondary = '''# Secondary information passed on: how often each generation keeps its teacher's
# 2nd-highest class on the training set (Figure 1's similarity, as one number).
train = analysis.evaluate_workdir(run_dir, "train")
for teacher, student in zip(train.names, train.names[1:]):
    same = analysis.second_class_agreement(train.logits[teacher], train.logits[student])
    conf = analysis.topk_confidences(train.logits[student], 4)
    print(f"{teacher} -> {student}: 2nd-class agreement {100 * same:.1f}%, "
          f"top-1..4 confidence {', '.join(f'{100 * c:.1f}' for c in conf)}")'''
    return ([v4.new_markdown_cell(intro)] + _common(params) + [
        _code(tiny), v4.new_markdown_cell("## Config and training"), _code(config),
        _code(RUN_SEEDS), v4.new_markdown_cell("## Report"), _code(SHOW_REPORT),
        v4.new_markdown_cell("## Secondary information, by hand"), _code(secondary)])


NOTEBOOKS = {
    "quickstart.ipynb": quickstart,
    "snapshot_distillation_tpu.ipynb": snapshot_distillation,
    "tolerant_teacher_generations.ipynb": tolerant_teacher,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook `name` (a key of NOTEBOOKS), without outputs."""
    nb = v4.new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["accelerator"] = "TPU" if "tpu" in name else "GPU"
    nb.metadata["colab"] = {"provenance": []}
    for i, cell in enumerate(nb.cells):   # stable ids: rebuilding gives the same files
        cell["id"] = f"{pathlib.Path(name).stem[:20]}-{i:02d}"
    nbformat.validate(nb)
    return nb


def main() -> None:
    for name in NOTEBOOKS:
        nbformat.write(build(name), HERE / name)
        print(HERE / name)


if __name__ == "__main__":
    main()
