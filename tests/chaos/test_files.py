"""What a run reads and writes: no pickle from user paths; only the documented files; and
data or workdir files that are damaged or make no sense (empty splits, one class, an
evaluation batch far above the test set, a metrics.jsonl or config.json that jaxkd did not
write) get one clear line naming the field or the file, before anything is compiled.
"""

import contextlib
import io
import json
import logging
import pathlib
import re
import subprocess
import tarfile
import uuid

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from jax.sharding import Mesh
from PIL import Image

from jaxkd import data as data_lib
from jaxkd import run as run_lib
from jaxkd.data import dataset as dataset_lib
from jaxkd.data import splits as splits_lib
from jaxkd.engine import loop
from jaxkd.engine import state as state_lib
from jaxkd.engine import step as step_lib
from jaxkd.engine.writer import MetricWriter
from tests.chaos import kill_driver
from tests.helpers import NUM_CLASSES, tiny_config, write_tiny_npz

JAXKD = pathlib.Path(loop.__file__).resolve().parents[1]

# Top-level entries a workdir may hold (docs/reliability.md, "Files").
WORKDIR_ENTRIES = {"config.json", "metrics.jsonl", "results.json", "rco_route.json",
                   "provenance.jsonl", ".lock",
                   "tensorboard", "phases", "report.md", "analysis.json", "accuracy.png",
                   "curves.png", "second_class.png"}
PHASE_ENTRIES = {"ckpt", "final", "anchors", "damaged"}


def test_no_pickle_is_ever_loaded():
    """No pickle-based reader anywhere in jaxkd; numpy files only with allow_pickle=False."""
    unsafe = re.compile(r"\bimport (c?pickle|dill|joblib|shelve|marshal)\b|"
                        r"\bpickle\.loads?\(|torch\.load\(|yaml\.(unsafe_)?load\(|"
                        r"allow_pickle\s*=\s*True")
    hits, loads = [], []
    for path in sorted(JAXKD.rglob("*.py")):
        text = path.read_text()
        hits += [f"{path}: {m.group(0)}" for m in unsafe.finditer(text)]
        loads += [(path, m.start(), text[m.start():m.start() + 200])
                  for m in re.finditer(r"\bnp\.load\(|\bnumpy\.load\(", text)]
    assert not hits, hits
    for path, _, call in loads:
        assert "allow_pickle=False" in call.split(")")[0] + ")", f"{path}: {call[:80]}"
    assert loads, "expected the npz reader to call np.load(..., allow_pickle=False)"


def test_a_run_writes_only_the_documented_files(reference_run):
    _, workdir = reference_run
    assert {p.name for p in workdir.iterdir()} <= WORKDIR_ENTRIES
    for phase in (workdir / "phases").iterdir():
        assert {p.name for p in phase.iterdir()} <= PHASE_ENTRIES
    # keep_checkpoints=3 periodic checkpoints (every 2 steps of 8: 2, 4, 6) + one final.
    assert sorted(p.name for p in (workdir / "phases/baseline/ckpt").iterdir()) == \
        ["2", "4", "6"]
    assert [p.name for p in (workdir / "phases/baseline/final").iterdir()] == ["8"]
    leftovers = [p for p in workdir.rglob("*") if "tmp" in p.name.lower()]
    assert not leftovers, leftovers          # no temporary file or folder left behind


# ---------------------------------------------------------------------------------------
# Input that makes no sense gets one clear line naming the field or the file, before any
# compile (issue 19, item 4): empty splits, one class (a warning), an evaluation batch far
# above the test set (clamped, a warning), a metrics.jsonl or config.json jaxkd did not
# write. Unit cases first, then the same through the CLI, then a Hypothesis fuzz.
# ---------------------------------------------------------------------------------------

WORKDIR_FILE_EXAMPLES = 100
ONE_CLASS_EXAMPLES = 20
FUZZ_COUNTS = {"workdir files": [0, 0], "one-class data": [0, 0]}   # [drawn, as expected]
GOOD_RECORD = {"phase": "baseline", "kind": "train", "step": 2, "loss": 1.25}
GOOD_LINE = json.dumps(GOOD_RECORD, sort_keys=True).encode()


class Compiled(AssertionError):
    """An input that must be refused got as far as building a model or a jaxkd program."""


@contextlib.contextmanager
def no_compile():
    """Inside: building a train/eval step or initialising a model raises `Compiled`."""
    def trip(name):
        def fail(*args, **kwargs):
            raise Compiled(f"{name} was called: the input got past validation")
        return fail

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(step_lib, "make_train_step", trip("make_train_step"))
        patch.setattr(step_lib, "make_eval_step", trip("make_eval_step"))
        patch.setattr(state_lib, "init_variables", trip("init_variables"))
        yield


@contextlib.contextmanager
def jaxkd_warnings():
    """Collects the messages of the warnings jaxkd's loggers emit inside."""
    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler, logger = Collect(logging.WARNING), logging.getLogger("jaxkd")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def _npz(path: pathlib.Path, *, train=32, test=8, train_labels=None, test_labels=None,
         naming=0) -> pathlib.Path:
    """A tiny 8x8 npz (`naming` 0: x_train..., 1: train_images...)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(max(train, test), 8, 8, 3), dtype=np.uint8)
    y = np.arange(max(train, test)) % NUM_CLASSES
    keys = (("x_train", "y_train", "x_test", "y_test"),
            ("train_images", "train_labels", "test_images", "test_labels"))[naming]
    np.savez(path, **{keys[0]: x[:train],
                      keys[1]: y[:train] if train_labels is None else train_labels,
                      keys[2]: x[:test],
                      keys[3]: y[:test] if test_labels is None else test_labels})
    return path


def _config(path, source="npz", **changes):
    return tiny_config(path, **{"data.source": source, "data.image_size": 8, "batch_size": 4,
                                "eval_batch_size": 4, **changes})


def _png(rng) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _folder_tar(path: pathlib.Path, classes: dict, seed: int = 0) -> pathlib.Path:
    """A tar of `split/<class>/<i>.png`; `classes` maps a split to {class: count} (an
    empty dict: the split's folder alone)."""
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w") as tar:
        for split, counts in classes.items():
            folder = tarfile.TarInfo(split)
            folder.type = tarfile.DIRTYPE
            tar.addfile(folder)
            for name, count in counts.items():
                for i in range(count):
                    data = _png(rng)
                    info = tarfile.TarInfo(f"{split}/{name}/{i}.png")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return path


# -- 1. empty splits: refused when the data is read ----------------------------------------

@pytest.mark.parametrize("naming", [0, 1], ids=["x_train", "train_images"])
@pytest.mark.parametrize("empty", ["train", "test"])
def test_npz_with_an_empty_split_is_refused_before_compiling(tmp_path, empty, naming):
    """Zero test images used to fail only after a whole epoch, at the first evaluation."""
    path = _npz(tmp_path / "data.npz", naming=naming, **{empty: 0})
    key = (f"x_{empty}", f"{empty}_images")[naming]
    with no_compile(), pytest.raises(ValueError) as info:
        run_lib.run(_config(path), tmp_path / "workdir")
    assert f"{path}: '{key}' holds no images" in str(info.value)


def test_image_folder_with_an_empty_test_split_is_refused(tmp_path):
    path = _folder_tar(tmp_path / "data.tar", {"train": {"a": 4, "b": 4}, "test": {}})
    with pytest.raises(ValueError) as info:
        data_lib.load_splits(_config(path, "image_folder").data, seed=0)
    message = str(info.value)
    assert f"config.data.path='{path}'" in message
    assert "the test split holds no examples" in message


def test_an_empty_streamed_split_is_refused():
    """Streamed (TFDS) splits go through the same check, by their length."""
    def read(indices):
        return []

    raw = dataset_lib.RawData(dataset_lib.StreamingDataset(read, 10, "tfds x (train)"),
                              dataset_lib.StreamingDataset(read, 0, "tfds x (validation)"),
                              ("a", "b"), None, origin="tfds x")
    with pytest.raises(ValueError, match=r"^tfds x \(config.data.source='tfds'\): the test "
                                         r"split holds no examples"):
        splits_lib.check_not_empty(raw, {"source": "tfds", "name": "x"})


# -- 2. eval_batch_size far above a split: clamped, with one warning -----------------------

def test_eval_batch_far_above_the_test_set_is_clamped_with_one_warning(tmp_path):
    """eval_batch_size=100000 on 30 test images and 4 devices: one batch of 32, not 100000
    (a run with it on a 500-image test set used to spend minutes evaluating padding)."""
    path = _npz(tmp_path / "data.npz", train=64, test=30)
    cfg = _config(path)
    splits = data_lib.load_splits(cfg.data, seed=0)
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    assert mesh.devices.size == 4

    def pipeline(eval_batch_size):
        return data_lib.make_pipeline(splits, mesh=mesh, batch_size=16,
                                      eval_batch_size=eval_batch_size,
                                      augment_cfg=cfg.data.augment, seed=0)

    with jaxkd_warnings() as warned:
        big = pipeline(100_000)
    named = [m for m in warned if "config.eval_batch_size=100000" in m]
    assert len(named) == 1 and "test: 30 images, batches of 32" in named[0], warned
    assert "train: 64 images, batches of 64" in named[0]
    assert big.eval_steps("test") == 1
    batches = list(big.eval_batches("test"))
    assert [b["mask"].shape for b in batches] == [(32,)]
    assert int(batches[0]["mask"].sum()) == 30
    assert [int(v) for v in batches[0]["label"][:30]] == [int(v) for v in splits.test.labels]

    with jaxkd_warnings() as warned:      # a batch that fits is left alone, silently
        small = pipeline(8)
    assert not [m for m in warned if "eval_batch_size" in m]
    assert small.eval_steps("test") == 4
    assert [b["mask"].shape for b in small.eval_batches("test")] == [(8,)] * 4


# -- 3. one class: a warning, not an error ----------------------------------------------

def test_one_class_data_set_is_warned_about_not_refused(tmp_path):
    path = _npz(tmp_path / "data.npz", train_labels=np.full(32, 2))
    with jaxkd_warnings() as warned:
        splits = data_lib.load_splits(_config(path).data, seed=0)
    named = [m for m in warned if "one-class data set" in m]
    assert len(named) == 1, warned
    assert f"config.data.path='{path}'" in named[0] and "is 2" in named[0]
    assert splits.num_classes == NUM_CLASSES and len(splits.train) == 32

    control = _npz(tmp_path / "control.npz")
    with jaxkd_warnings() as warned:
        data_lib.load_splits(_config(control).data, seed=0)
    assert not [m for m in warned if "one-class" in m]


# -- 4. metrics.jsonl lines jaxkd did not write ---------------------------------------------

BAD_METRICS_LINES = {
    "a number": b"42",
    "step a string": b'{"kind": "train", "phase": "baseline", "step": "x"}',
    "step a float": b'{"kind": "train", "phase": "baseline", "step": 2.5}',
    "no step": b'{"kind": "train", "phase": "baseline"}',
    "phase a number": b'{"kind": "train", "phase": 3, "step": 2}',
    "a list": b"[1, 2]",
    "not JSON": b"loss=0.3",
    "random bytes": bytes(range(128, 192)),
}


@pytest.mark.parametrize("line", BAD_METRICS_LINES.values(), ids=BAD_METRICS_LINES.keys())
def test_a_bad_metrics_line_is_named_with_its_number(tmp_path, line):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(GOOD_LINE + b"\n" + line + b"\n" + GOOD_LINE + b"\n")
    for attempt in ("open", "resume"):
        with pytest.raises(ValueError) as info:
            if attempt == "open":     # a run opens its writer before anything is compiled
                MetricWriter(tmp_path, tensorboard=False)
            else:
                writer = MetricWriter(tmp_path / "elsewhere", tensorboard=False)
                writer.path = path
                writer.drop_after("baseline", 0)
        message = str(info.value)
        assert message.startswith(f"{path}, line 2: ") and "\n" not in message, message
        assert "Move the file away" in message and "final checkpoint" in message


def test_a_metrics_line_cut_by_a_kill_is_still_dropped(tmp_path):
    """The one damage a kill causes (the last line cut in the middle of a write) is not an
    error: resuming drops it, as before."""
    path = tmp_path / "metrics.jsonl"
    later = json.dumps(dict(GOOD_RECORD, step=4), sort_keys=True).encode()
    path.write_bytes(GOOD_LINE + b"\n" + later + b"\n" + later[:17])
    writer = MetricWriter(tmp_path, tensorboard=False)
    assert writer.drop_after("baseline", 2) == 4
    assert path.read_bytes() == GOOD_LINE + b"\n"


# -- 5. config.json that jaxkd did not write -----------------------------------------------

def _config_with(group: str, value) -> bytes:
    tree = json.loads(tiny_config("").to_json())
    tree[group] = value
    return json.dumps(tree).encode()


BAD_CONFIG_FILES = {
    "a list": b"[]",
    "an empty object": b"{}",
    "another object": b'{"learning_rate": 0.1}',
    "a string": b'"baseline"',
    "not JSON": b"method = 'baseline'",
    "random bytes": bytes(range(128, 192)),
    "empty": b"",
    "data not an object": _config_with("data", 5),
}


@pytest.mark.parametrize("content", BAD_CONFIG_FILES.values(), ids=BAD_CONFIG_FILES.keys())
def test_a_config_json_jaxkd_did_not_write_is_named(tmp_path, content):
    data = _npz(tmp_path / "data.npz")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    path = workdir / "config.json"
    path.write_bytes(content)
    with no_compile(), pytest.raises(ValueError) as info:
        run_lib.run(_config(data), workdir)
    message = str(info.value)
    assert message.startswith(f"{path} is not a config jaxkd wrote (") and "\n" not in message
    assert "--config.allow_config_change=True" in message
    assert path.read_bytes() == content                 # left as it was
    # Allowed to change: replaced by the current config (a warning), and the run goes on.
    config = _config(data, allow_config_change=True)
    with jaxkd_warnings() as warned, no_compile(), pytest.raises(Compiled):
        run_lib.run(config, workdir)
    assert any(f"{path} is not a config jaxkd wrote" in m for m in warned), warned
    assert json.loads(path.read_text()) == json.loads(config.to_json())


def test_a_folder_named_config_json_is_named(tmp_path):
    workdir = tmp_path / "workdir"
    (workdir / "config.json").mkdir(parents=True)
    with no_compile(), pytest.raises(ValueError, match="config.json is a folder"):
        run_lib.run(_config(_npz(tmp_path / "data.npz")), workdir)


# -- the same through the command line: exit code 2, the message, no traceback ------------

def _cli(workdir: pathlib.Path, data: pathlib.Path, *flags):
    cmd = kill_driver.command(workdir, data) + ["--config.generations=0", *flags]
    done = subprocess.run(cmd, cwd=kill_driver.REPO, env=kill_driver.subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


CLI_CASES = {
    "npz-without-test-images": ("npz", None, "{data}: 'x_test' holds no images"),
    "metrics-line-42": ("metrics.jsonl", b"42", "{workdir}/metrics.jsonl, line 2: "),
    "metrics-step-x": ("metrics.jsonl",
                       b'{"kind": "train", "phase": "gen0", "step": "x"}',
                       "{workdir}/metrics.jsonl, line 2: 'step' is 'x'"),
    "config-list": ("config.json", b"[]",
                    "{workdir}/config.json is not a config jaxkd wrote (a JSON list)"),
    "config-random-bytes": ("config.json", bytes(range(128, 192)),
                            "{workdir}/config.json is not a config jaxkd wrote (not JSON"),
}


@pytest.mark.parametrize("case", CLI_CASES.values(), ids=CLI_CASES.keys())
def test_cli_names_the_bad_file_and_exits_2_without_a_traceback(tmp_path, case):
    target, content, expected = case
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    data = write_tiny_npz(tmp_path / "tiny.npz", test=0 if target == "npz" else 32)
    if target == "metrics.jsonl":
        content = GOOD_LINE.replace(b"baseline", b"gen0") + b"\n" + content + b"\n"
    if content is not None:
        (workdir / target).write_bytes(content)
    code, out = _cli(workdir, data)
    assert code == 2, out[-3000:]
    assert expected.format(data=data, workdir=workdir) in out, out[-3000:]
    assert "Traceback" not in out


# -- Hypothesis: fuzzed workdir files and one-class data sets ------------------------------

@pytest.fixture(scope="module")
def fuzz_scratch(tmp_path_factory):
    base = tmp_path_factory.mktemp("files_fuzz")
    yield base, _npz(base / "data.npz")
    for kind, (drawn, expected) in FUZZ_COUNTS.items():
        print(f"\nfuzz {kind}: {drawn} cases drawn, {expected} as expected")


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() |
                     st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3) |
                     st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=6)
_NOT_A_STRING = st.none() | st.booleans() | st.integers() | st.floats() | \
    st.lists(st.text(max_size=2), max_size=2)
_BAD_STEP = st.text(max_size=4) | st.floats() | st.booleans() | st.none() | \
    st.integers(max_value=-1) | st.lists(st.integers(), max_size=2)
_RANDOM_LINE = st.binary(min_size=1, max_size=200).map(
    lambda b: b.replace(b"\n", b" ")).filter(lambda b: b.strip())


def _json(value) -> bytes:
    return json.dumps(value).encode()


_BAD_RECORD_LINE = st.one_of(
    _JSON.filter(lambda v: not (isinstance(v, dict) and {"phase", "kind", "step"} <= set(v)))
    .map(_json),
    _BAD_STEP.map(lambda v: _json(dict(GOOD_RECORD, step=v))),
    st.tuples(st.sampled_from(["phase", "kind"]), _NOT_A_STRING).map(
        lambda kv: _json(dict(GOOD_RECORD, **{kv[0]: kv[1]}))),
    st.sampled_from(["phase", "kind", "step"]).map(
        lambda k: _json({key: v for key, v in GOOD_RECORD.items() if key != k})),
    _RANDOM_LINE,
)
_BAD_CONFIG = st.one_of(
    _JSON.filter(lambda v: not (isinstance(v, dict) and {"method", "model", "data"} <= set(v)))
    .map(_json),
    st.binary(max_size=200),
    st.tuples(st.sampled_from(["data", "optimizer", "schedule", "loss", "model_overrides"]),
              _NOT_A_STRING | st.text(max_size=4)).map(lambda kv: _config_with(*kv)),
)


@st.composite
def damaged_workdir_file(draw):
    """(file name, its bytes, what the message must contain)."""
    if draw(st.booleans()):
        before, after = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        lines = [GOOD_LINE] * before + [draw(_BAD_RECORD_LINE)] + [GOOD_LINE] * after
        return "metrics.jsonl", b"".join(line + b"\n" for line in lines), \
            f"metrics.jsonl, line {before + 1}: "
    return "config.json", draw(_BAD_CONFIG), "config.json is not a config jaxkd wrote ("


@settings(max_examples=WORKDIR_FILE_EXAMPLES, deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.filter_too_much])
@given(case=damaged_workdir_file())
def test_fuzzed_workdir_file_gets_a_clean_error_naming_it(fuzz_scratch, case):
    base, data = fuzz_scratch
    name, content, expected = case
    FUZZ_COUNTS["workdir files"][0] += 1
    workdir = base / uuid.uuid4().hex
    workdir.mkdir()
    (workdir / name).write_bytes(content)
    with no_compile(), pytest.raises(ValueError) as info:
        run_lib.run(_config(data), workdir)
    message = str(info.value)
    assert message.startswith(str(workdir / expected)), message
    assert "\n" not in message
    FUZZ_COUNTS["workdir files"][1] += 1


@settings(max_examples=ONE_CLASS_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(["npz", "image_folder"]), label=st.integers(0, 3),
       test_classes=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_fuzzed_one_class_data_is_warned_about_then_trains(fuzz_scratch, source, label,
                                                          test_classes, seed):
    """All training labels equal: one warning naming the data, and the run goes on (it
    reaches the tripwire: not refused)."""
    base, _ = fuzz_scratch
    FUZZ_COUNTS["one-class data"][0] += 1
    case = base / uuid.uuid4().hex
    case.mkdir()
    if source == "npz":
        path = _npz(case / "data.npz", train_labels=np.full(32, label),
                    test_labels=np.arange(8) % max(test_classes, label + 1))
    else:   # one class folder in train; test uses the same class
        path = _folder_tar(case / "data.tar", {"train": {f"c{label}": 4},
                                               "test": {f"c{label}": test_classes}}, seed)
    with jaxkd_warnings() as warned, no_compile(), pytest.raises(Compiled):
        run_lib.run(_config(path, source), case / "workdir")
    named = [m for m in warned if "one-class data set" in m]
    assert len(named) == 1 and f"config.data.path='{path}'" in named[0], warned
    FUZZ_COUNTS["one-class data"][1] += 1
