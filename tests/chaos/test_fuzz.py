"""Bad input, fuzzed: every invalid config or corrupt data set gets a clean `ValueError`.

Hypothesis draws one invalid change to a valid tiny config (wrong types, out-of-range
hyper-parameters, unknown names, batch sizes that do not split over the 4 test devices, K
above the class count, ...) or writes a corrupt data file (truncated or random archives,
unreadable images, labels out of range, wrong dtypes, pickled arrays, empty splits).
`run(config)` must raise a `ValueError` whose message names the config field or the file,
and must do so before any jaxkd program is built: the step factories and the model
initialiser are replaced by tripwires for the whole module. The module prints how many
cases were drawn and how many got a clean error (`pytest -s`).
"""

from __future__ import annotations

import dataclasses
import io
import math
import pathlib
import tarfile
import uuid

import ml_collections
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from jaxkd import config as config_lib, run as run_lib
from jaxkd.engine import state as state_lib
from jaxkd.engine import step as step_lib
from tests.helpers import NUM_CLASSES, tiny_config, write_tiny_npz

CONFIG_EXAMPLES = 300
DATA_EXAMPLES = 100
COUNTS = {"config": [0, 0], "data": [0, 0]}     # [drawn, clean]


class Compiled(AssertionError):
    """An invalid input got as far as building a model or a jitted program."""


@pytest.fixture(scope="module", autouse=True)
def tripwires():
    """No jaxkd program may be built, no model initialised, while these tests run."""
    patch = pytest.MonkeyPatch()

    def trip(name):
        def fail(*args, **kwargs):
            raise Compiled(f"{name} was called: an invalid input got past validation")
        return fail

    patch.setattr(step_lib, "make_train_step", trip("make_train_step"))
    patch.setattr(step_lib, "make_eval_step", trip("make_eval_step"))
    patch.setattr(state_lib, "init_variables", trip("init_variables"))
    yield
    patch.undo()
    for kind, (drawn, clean) in COUNTS.items():
        print(f"\nfuzz {kind}: {drawn} cases drawn, {clean} clean errors")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    return base, write_tiny_npz(base / "tiny.npz")


def _expect_clean_error(kind: str, config, workdir: pathlib.Path, names: tuple[str, ...]):
    """Runs `config`; asserts a ValueError naming one of `names`, before any compile."""
    COUNTS[kind][0] += 1
    with pytest.raises(ValueError) as info:
        run_lib.run(config, workdir)
    message = str(info.value)
    assert any(n in message for n in names), f"{message!r} names none of {names}"
    COUNTS[kind][1] += 1


# ---------------------------------------------------------------------------------------
# Invalid configs.
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Change:
    """One invalid change: `field` (dotted) set to `value` on top of `base` changes."""

    field: str
    value: object
    base: tuple = ()
    names: tuple = ()      # acceptable names in the message (default: config.<field>)


def _not_int():
    return st.one_of(st.text(max_size=4), st.floats(allow_nan=True), st.none(),
                     st.lists(st.integers(), max_size=2))


def _non_positive_int():
    return st.one_of(st.integers(max_value=0), _not_int(), st.just(True))


def _negative_number():
    return st.floats(max_value=-1e-6, allow_nan=False) | st.integers(max_value=-1)


def _unknown_name():
    return st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1,
                   max_size=12).map(lambda s: "zz" + s)


def _change(field, values, *, base=(), names=()):
    names = tuple(names) or (f"config.{field}",)
    return st.builds(Change, st.just(field), values, st.just(tuple(base)), st.just(names))


_TT = (("method", "tolerant_teacher"), ("generations", 1), ("tolerant_teacher.k", 3))
_BAN_LAMBDA = (("method", "born_again"), ("generations", 1),
               ("born_again.variant", "lambda"))
_SD = (("method", "snapshot_distillation"), ("num_epochs", 2), ("snapshot.cycles", 2))
_RCO = (("method", "rco"), ("rco.anchor_every_epochs", 1), ("rco.teacher_epochs", 2))
_KD = (("method", "rco"), ("rco.mode", "kd"), ("rco.anchor_every_epochs", 1),
       ("rco.teacher_epochs", 2))

CONFIG_CHANGES = st.one_of(
    # Engine fields: wrong types and out-of-range values.
    *[_change(f, _non_positive_int()) for f in
      ("batch_size", "eval_batch_size", "num_epochs", "eval_every_epochs",
       "keep_checkpoints", "log_every_steps")],
    *[_change(f, st.integers(max_value=-1) | _not_int()) for f in
      ("checkpoint_every_steps", "num_devices", "generations", "seed")],
    _change("batch_size", st.integers(1, 10_000).filter(lambda b: b % 4 or b > 64)),
    _change("eval_batch_size", st.integers(1, 10_000).filter(lambda b: b % 4)),
    _change("num_devices", st.integers(5, 64)),
    _change("dtype", _unknown_name()),
    _change("nonfinite", _unknown_name()),
    _change("optimizer.name", _unknown_name()),
    _change("optimizer.momentum", st.floats(min_value=1.0) | _negative_number()),
    _change("optimizer.weight_decay", _negative_number()),
    _change("schedule.base_lr", st.floats(max_value=0.0) | st.text(max_size=3)),
    _change("schedule.name", _unknown_name()),
    # Unknown names.
    _change("method", _unknown_name()),
    _change("model", _unknown_name(), names=("config.model", "unknown model")),
    _change("loss.name", _unknown_name()),
    _change("data.source", _unknown_name()),
    _change("born_again.variant", _unknown_name(), base=(("method", "born_again"),)),
    _change("rco.mode", _unknown_name(), base=_RCO),
    _change("model_overrides.zz_width", st.integers(), names=("zz_width",)),
    _change("zz_typo", st.integers(), names=("config.zz_typo",)),
    # Data fields.
    _change("data.image_size", _non_positive_int()),
    _change("data.heldout_size", st.integers(64, 10_000) | st.integers(max_value=-1)),
    _change("data.train_per_class", st.integers(17, 10_000) | st.integers(max_value=-1)),
    _change("data.augment.kind", _unknown_name()),
    _change("data.augment.pad_mode", _unknown_name()),
    _change("data.augment.crop_padding", st.integers(max_value=-1)),
    # Hyper-parameters of the papers: eta/u, lambda, T, K.
    _change("tolerant_teacher.u", st.floats(max_value=0.0) | st.floats(min_value=1.0 + 1e-6)
            | st.just(math.nan) | st.text(max_size=3) | st.none(), base=_TT,
            names=("config.tolerant_teacher.u",)),
    _change("tolerant_teacher.k", st.integers(NUM_CLASSES + 1, 1000) | st.integers(-5, 1),
            base=_TT, names=("config.tolerant_teacher.k",)),
    _change("tolerant_teacher.label_weight", st.floats(min_value=1.0 + 1e-6) |
            _negative_number(), base=_TT,
            names=("config.tolerant_teacher.label_weight",)),
    _change("born_again.label_weight", st.floats(min_value=1.0 + 1e-6) | _negative_number(),
            base=_BAN_LAMBDA,
            names=("config.born_again.label_weight",)),
    _change("snapshot.temperature", st.floats(max_value=0.0) | st.just(math.nan), base=_SD,
            names=("config.snapshot.temperature",)),
    _change("snapshot.cycles", st.integers(-3, 0) | st.integers(3, 7) | _not_int(), base=_SD),
    _change("rco.temperature", st.floats(max_value=0.0), base=_KD,
            names=("config.rco.temperature",)),
    _change("rco.kl_weight", _negative_number(), base=_KD,
            names=("config.rco.kl_weight",)),
    _change("rco.anchor_every_epochs", st.integers(-3, 0) | st.integers(3, 9) | _not_int(),
            base=_RCO),
    _change("rco.teacher_epochs", st.integers(max_value=-1) | _not_int(), base=_RCO),
    _change("loss.name", st.sampled_from(["snapshot_distillation", "kd", "born_again",
                                          "hint", "cwtm", "dkpp"]),
            names=("needs a teacher",)),                  # a baseline has no teacher
    _change("loss.label_smoothing", st.floats(min_value=1.0) | _negative_number(),
            names=("config.loss.label_smoothing",)),
)


def _apply(npz, change: Change):
    """A tiny config with `change` applied, built from a plain dict (types unchecked, as a
    config.json or a notebook's dict would give)."""
    tree = tiny_config(npz).to_dict()
    for field, value in change.base + ((change.field, change.value),):
        *path, last = field.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return ml_collections.ConfigDict(tree)


@settings(max_examples=CONFIG_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(change=CONFIG_CHANGES)
def test_invalid_config_gets_a_clean_error_before_compiling(scratch, change):
    base, npz = scratch
    config = _apply(npz, change)
    _expect_clean_error("config", config, base / uuid.uuid4().hex, change.names)


# ---------------------------------------------------------------------------------------
# Corrupt data.
# ---------------------------------------------------------------------------------------

def _tiny_arrays(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 8, 8, 3), dtype=np.uint8)
    y = np.arange(32) % NUM_CLASSES
    return dict(x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])


def _npz_bytes(arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _png(rng) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _folder_tar(rng, bad_member: bytes | None, cut: float | None) -> bytes:
    """A tar of train/<c>/<i>.png and test/<c>/<i>.png (enough for a batch of 4).

    With `bad_member`, one training image is replaced by it; with `cut` in (0, 1), the
    archive ends inside the data of a member chosen by `cut` (a truncated download).
    """
    buf, spans = io.BytesIO(), []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for split in ("train", "test"):
            for c in range(2):
                for i in range(4):
                    data = _png(rng)
                    if bad_member is not None and (split, c, i) == ("train", 1, 2):
                        data = bad_member
                    info = tarfile.TarInfo(f"{split}/class{c}/{i}.png")
                    info.size = len(data)
                    spans.append((buf.tell() + 512, len(data)))   # data after the header
                    tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    if cut is None:
        return data
    start, size = spans[min(int(cut * len(spans)), len(spans) - 1)]
    return data[:start + max(1, int(size * (cut * len(spans) % 1)))]


class BadData:
    """A data file that must be refused (its bytes left out of reports)."""

    def __init__(self, kind: str, source: str, data: bytes | None, suffix: str):
        self.kind, self.source, self.data, self.suffix = kind, source, data, suffix

    def __repr__(self) -> str:
        size = "missing" if self.data is None else f"{len(self.data)} bytes"
        return f"BadData({self.kind}, {self.source}, {size})"


@st.composite
def corrupt_data(draw):
    """A `BadData` of a randomly chosen kind."""
    kind = draw(st.sampled_from(_KINDS))
    return BadData(kind, *draw(_corrupt(kind)))


_KINDS = ("npz_truncated", "npz_random", "npz_empty", "npz_label_high", "npz_label_negative",
          "npz_class_names", "npz_float_images", "npz_bad_ndim", "npz_label_length",
          "npz_missing_key", "npz_pickled", "npz_empty_split", "folder_bad_image",
          "folder_truncated_tar", "folder_random_bytes", "folder_empty_split",
          "cifar_bad_size", "missing_file")


def _folder_tar_empty_split(rng, empty: str) -> bytes:
    """A tar of train/<c>/<i>.png and test/<c>/<i>.png whose `empty` split is a folder
    with no class folder in it (zero images)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for split in ("train", "test"):
            folder = tarfile.TarInfo(split)
            folder.type = tarfile.DIRTYPE
            tar.addfile(folder)
            for c in range(2 if split != empty else 0):
                for i in range(4):
                    data = _png(rng)
                    info = tarfile.TarInfo(f"{split}/class{c}/{i}.png")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@st.composite
def _corrupt(draw, kind):
    """(source, file bytes or None for a missing file, suffix) of one kind."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    arrays = _tiny_arrays(draw(st.integers(0, 100)))
    if kind == "npz_truncated":
        data = _npz_bytes(arrays)
        return "npz", data[:int(len(data) * draw(st.floats(0.01, 0.95)))], ".npz"
    if kind == "npz_random":
        return "npz", rng.bytes(draw(st.integers(1, 4096))), ".npz"
    if kind == "npz_empty":
        return "npz", b"", ".npz"
    if kind == "npz_label_high":
        arrays["class_names"] = np.array([f"c{i}" for i in range(NUM_CLASSES)])
        arrays["y_test"] = arrays["y_test"].copy()
        arrays["y_test"][draw(st.integers(0, 7))] = draw(st.integers(NUM_CLASSES, 10**6))
    elif kind == "npz_label_negative":
        arrays["y_train"] = arrays["y_train"].copy()
        arrays["y_train"][draw(st.integers(0, 31))] = draw(st.integers(-10**6, -1))
    elif kind == "npz_class_names":   # fewer names than labels used
        arrays["class_names"] = np.array(["a", "b"][:draw(st.integers(1, 2))])
    elif kind == "npz_float_images":
        arrays["x_train"] = arrays["x_train"].astype(draw(st.sampled_from(["f4", "f8", "i4"])))
    elif kind == "npz_bad_ndim":
        arrays["x_train"] = arrays["x_train"].reshape(32, -1)
    elif kind == "npz_label_length":
        arrays["y_train"] = arrays["y_train"][:draw(st.integers(0, 31))]
    elif kind == "npz_missing_key":
        del arrays[draw(st.sampled_from(sorted(arrays)))]
    elif kind == "npz_pickled":
        arrays["class_names"] = np.array([{"a": 1}, None, "c", 4], dtype=object)
    elif kind == "npz_empty_split":   # zero training or zero test images
        split = draw(st.sampled_from(["train", "test"]))
        arrays[f"x_{split}"] = arrays[f"x_{split}"][:0]
        arrays[f"y_{split}"] = arrays[f"y_{split}"][:0]
    elif kind == "folder_empty_split":
        data = _folder_tar_empty_split(rng, draw(st.sampled_from(["train", "test"])))
        return "image_folder", data, ".tar"
    elif kind == "folder_bad_image":
        junk = draw(st.sampled_from([b"", b"not an image", rng.bytes(100),
                                     _png(rng)[:40]]))
        return "image_folder", _folder_tar(rng, junk, None), ".tar"
    elif kind == "folder_truncated_tar":
        return "image_folder", _folder_tar(rng, None, draw(st.floats(0.05, 0.9))), ".tar"
    elif kind == "folder_random_bytes":
        return "image_folder", rng.bytes(draw(st.integers(1, 4096))), ".tar"
    elif kind == "cifar_bad_size":
        return "cifar_binary", rng.bytes(draw(st.integers(1, 3 * 3073 - 1))), "/test_batch.bin"
    elif kind == "missing_file":
        return draw(st.sampled_from(["npz", "image_folder", "cifar_binary"])), None, ".npz"
    return "npz", _npz_bytes(arrays), ".npz"


@settings(max_examples=DATA_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=corrupt_data())
def test_corrupt_data_gets_a_clean_error_naming_the_file(scratch, case):
    base, _ = scratch
    source, data, suffix = case.source, case.data, case.suffix
    case_dir = base / uuid.uuid4().hex
    path = case_dir / ("data" + suffix)
    if data is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if source == "cifar_binary":
        path = path.parent   # a folder holding the (bad) test_batch.bin
    config = tiny_config(path, **{"data.source": source, "data.image_size": 8,
                                  "batch_size": 4, "eval_batch_size": 4})
    _expect_clean_error("data", config, case_dir / "workdir",
                        (str(path), "config.data.path"))


@pytest.mark.parametrize("source", ["npz", "image_folder"])
def test_uncorrupted_controls_reach_compilation(scratch, source):
    """The same builders without the damage pass validation: the errors above come from
    the damage, and the tripwires do fire once validation is passed."""
    base, _ = scratch
    rng = np.random.default_rng(0)
    data = _npz_bytes(_tiny_arrays()) if source == "npz" else _folder_tar(rng, None, None)
    path = base / uuid.uuid4().hex / ("data.npz" if source == "npz" else "data.tar")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    config = tiny_config(path, **{"data.source": source, "data.image_size": 8,
                                  "batch_size": 4, "eval_batch_size": 4})
    with pytest.raises(Compiled):
        run_lib.run(config, path.parent / "workdir")


# -- override typos on the command line -------------------------------------------------

_FIELDS = sorted(config_lib.field_paths(tiny_config(pathlib.Path("x.npz"))))


@st.composite
def misspelled_field(draw):
    """A real field with one edit (drop, double, swap or replace a character)."""
    field = draw(st.sampled_from(_FIELDS))
    i = draw(st.integers(0, len(field) - 1))
    edit = draw(st.sampled_from(["drop", "double", "swap", "replace"]))
    char = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz_"))
    edited = {"drop": field[:i] + field[i + 1:],
              "double": field[:i] + field[i] + field[i:],
              "swap": field[:i] + field[i + 1:i + 2] + field[i:i + 1] + field[i + 2:],
              "replace": field[:i] + char + field[i + 1:]}[edit]
    return edited.strip(".").replace("..", ".") or "x"


OVERRIDE_COUNTS = [0, 0]     # [drawn, one clean line naming the field]


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=misspelled_field())
def test_override_typo_is_one_line_naming_the_field(name, capsys):
    """`--config.<typo>=1` on the real CLI's flag parser: exit 2, one line naming the
    typo (and, for most, the field meant), never ml_collections' 57-line traceback."""
    from hypothesis import assume
    from jaxkd import main as main_lib
    assume(name not in _FIELDS and not any(f.startswith(name + ".") for f in _FIELDS))
    OVERRIDE_COUNTS[0] += 1
    argv = ["jaxkd", "--config=tests/chaos/tiny_config.py", "--workdir=/tmp/unused",
            f"--config.{name}=1"]
    try:
        main_lib.parse_flags(argv)
    except SystemExit as stop:
        err = capsys.readouterr().err
        if stop.code == 1 and "Flags parsing error" in err:   # absl refused the value
            OVERRIDE_COUNTS[1] += 1
            return
        assert stop.code == 2, err
        assert f"--config.{name}: the config has no such field" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        OVERRIDE_COUNTS[1] += 1
        return
    raise AssertionError(f"--config.{name}=1 was accepted")
