"""Progress a user can see (issue 20): lr and loss terms per train window, the run-level
ETA and compile-time lines, log lines that do not glue onto a tqdm bar, and the
persistent compilation cache's switches."""

import json
import logging
import math
import os
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxkd import run as run_lib
from jaxkd.engine import compile_cache, progress
from tests.conftest import REPO
from tests.helpers import tiny_config, write_tiny_npz

SPE = 4   # tiny npz: 64 training images, batch 16


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _train_records(workdir):
    recs = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in recs if r["kind"] == "train"]


@pytest.fixture(scope="module")
def sd_run(npz, tmp_path_factory):
    """Snapshot distillation, 2 cycles of 1 epoch: cycle2 continues cycle1's optimiser
    count and is taught by it (loss = (1 + 1/T) CE + KL)."""
    workdir = tmp_path_factory.mktemp("sd")
    config = tiny_config(npz, "snapshot_distillation", num_epochs=2,
                         **{"snapshot.cycles": 2, "schedule.base_lr": 0.05})
    handler = _ListHandler()
    logger = logging.getLogger("jaxkd")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run_lib.run(config, workdir)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return workdir, config, handler.lines


class _ListHandler(logging.Handler):
    """Keeps the messages (caplog for a module-scoped fixture)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_train_records_carry_the_scheduled_lr(sd_run):
    workdir, config, _ = sd_run
    recs = _train_records(workdir)
    by_phase = {ph: [r for r in recs if r["phase"] == ph] for ph in ("cycle1", "cycle2")}
    assert [r["step"] for r in by_phase["cycle1"]] == [2, 4]
    # SD Eqn 5: each cycle restarts at the peak and decays by cosine over its steps; the
    # lr of local step L (the window's last) is the value used by the L-th update.
    peak = config.schedule.base_lr
    for ph, rows in by_phase.items():
        for r in rows:
            want = 0.5 * peak * (1 + math.cos(math.pi * (r["step"] - 1) / SPE))
            assert r["lr"] == pytest.approx(want, rel=1e-5), (ph, r)
    assert by_phase["cycle1"][0]["lr"] == pytest.approx(by_phase["cycle2"][0]["lr"])


def test_lr_of_a_plain_cosine_run(npz, tmp_path):
    run_lib.run(tiny_config(npz, "baseline", num_epochs=1, log_every_steps=1), tmp_path)
    recs = _train_records(tmp_path)
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    for r in recs:
        want = 0.5 * 0.05 * (1 + math.cos(math.pi * (r["step"] - 1) / SPE))
        assert r["lr"] == pytest.approx(want, rel=1e-5)
        assert "loss_ce" not in r        # plain cross-entropy has a single term
    events = list((tmp_path / "tensorboard").iterdir())
    assert events   # the lr goes to TensorBoard with every other scalar (writer mirrors it)


def test_loss_terms_add_up_to_the_loss(sd_run):
    workdir, config, _ = sd_run
    recs = _train_records(workdir)
    first = [r for r in recs if r["phase"] == "cycle1"]
    second = [r for r in recs if r["phase"] == "cycle2"]
    assert all("loss_ce" not in r for r in first)       # cycle 1: plain CE
    for r in second:
        assert r["loss_ce"] > 0 and r["loss_kd"] >= 0
        assert r["loss"] == pytest.approx(r["loss_ce"] + r["loss_kd"], rel=1e-5, abs=1e-6)


def test_eta_and_compile_lines(sd_run):
    _, _, lines = sd_run
    text = "\n".join(lines)
    assert re.search(r"phase 1/2 cycle1 \(.*\): ETA after the first epoch", text), text
    assert re.search(r"phase 2/2 cycle2 \(.*\): ETA for the run \d\d:\d\d:\d\d", text), text
    assert re.search(r"phase cycle1: compiled train step in \d+\.\d s", text), text
    assert re.search(r"phase cycle1 epoch 1/1: test top-1 .*evaluated 32 examples in "
                     r"\d+\.\d s; ETA for the run \d\d:\d\d:\d\d", text), text
    # cycle2 has a teacher, cycle1 none: a new program, compiled and timed on its own.
    assert re.search(r"phase cycle2: compiled train step in \d+\.\d s", text), text
    assert "ensembles snapshot_ensemble, sd_ensemble: test logits of 2 phases" in text
    assert re.search(r"ensemble sd_ensemble \(cycle1\+cycle2\): test top-1", text)


def test_first_window_images_per_sec_excludes_the_compile(sd_run):
    workdir, _, _ = sd_run
    first, second = [r["images_per_sec"] for r in _train_records(workdir)
                     if r["phase"] == "cycle1"]
    # With the compile (seconds) inside, the first 2-step window would run at a few
    # percent of the second's speed.
    assert first > 0.1 * second, (first, second)


def test_format_hms_and_clock():
    assert progress.format_hms(3725.4) == "01:02:05"
    clock = progress.RunClock()
    assert clock.describe(100) == "ETA after the first epoch"
    clock.seconds_per_step["gen0"] = 0.5
    assert clock.describe(100) == "ETA for the run 00:00:50"


_CONFIG = """
import sys
sys.path.insert(0, {repo!r})
from tests.helpers import tiny_config

def get_config():
    c = tiny_config({npz!r}, "baseline", num_epochs=2, progress_bar=True,
                    log_every_steps=1)
    return c
"""


def test_log_lines_do_not_glue_onto_the_tqdm_bar(npz, tmp_path):
    cfg = tmp_path / "cfg.py"
    cfg.write_text(_CONFIG.format(repo=str(REPO), npz=str(npz)))
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAXKD_NO_COMPILE_CACHE="1")
    proc = subprocess.run([sys.executable, "-m", "jaxkd.main", f"--config={cfg}",
                           f"--workdir={tmp_path / 'w'}", "--nocpu_split"],
                          cwd=REPO, env=env, capture_output=True, timeout=240)
    err = proc.stderr.decode()        # bytes: text mode would turn every \r into \n
    assert proc.returncode == 0, err[-3000:]
    assert "\r" in err and "step" in err, err[-2000:]      # the bar was drawn
    checked = 0
    for line in err.split("\n"):
        if "jaxkd" not in line and "phase " not in line:
            continue
        shown = line.rsplit("\r", 1)[-1]        # what a terminal shows after the last CR
        if "phase " in line and ("epoch" in line or "compiled" in line):
            # absl's line prefix (I1202 15:07:29.123 ...) starts what the terminal shows.
            assert re.match(r"[IWE]\d{4} ", shown), repr(line)
            checked += 1
    assert checked >= 3, err[-3000:]


# -- the persistent compilation cache ---------------------------------------------------
@pytest.fixture
def jax_updates(monkeypatch):
    calls = {}
    monkeypatch.setattr(jax.config, "update", lambda name, value: calls.__setitem__(
        name, value))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)
    monkeypatch.delenv(compile_cache.OPT_OUT_ENV, raising=False)
    monkeypatch.setattr(compile_cache, "_configured_dir", lambda: None)
    return calls


def test_compile_cache_default_folder(jax_updates, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = compile_cache.enable()
    assert folder == str(tmp_path / "jaxkd" / "jax_compilation_cache")
    assert os.path.isdir(folder)
    assert jax_updates == {"jax_compilation_cache_dir": folder,
                           "jax_persistent_cache_min_compile_time_secs":
                               compile_cache.MIN_COMPILE_TIME_S}


def test_compile_cache_given_folder(jax_updates, tmp_path):
    assert compile_cache.enable(str(tmp_path / "c")) == str(tmp_path / "c")
    assert jax_updates["jax_compilation_cache_dir"] == str(tmp_path / "c")


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_compile_cache_opt_out(jax_updates, monkeypatch, tmp_path, value):
    monkeypatch.setenv(compile_cache.OPT_OUT_ENV, value)
    assert compile_cache.enable(str(tmp_path / "c")) is None
    assert jax_updates == {} and not (tmp_path / "c").exists()


def test_compile_cache_keeps_the_users_own_setting(jax_updates, monkeypatch, tmp_path):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache.enable() == str(tmp_path / "mine")
    assert jax_updates == {}
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setattr(compile_cache, "_configured_dir", lambda: str(tmp_path / "cfg"))
    assert compile_cache.enable(str(tmp_path / "c")) == str(tmp_path / "cfg")
    assert jax_updates == {}


def test_compile_cache_keeps_the_users_threshold(jax_updates, monkeypatch, tmp_path):
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "3")
    compile_cache.enable(str(tmp_path / "c"))
    assert "jax_persistent_cache_min_compile_time_secs" not in jax_updates


def test_compile_cache_unwritable_folder_is_a_warning(jax_updates, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert compile_cache.enable(str(blocker / "c")) is None
    assert jax_updates == {} and "cannot create" in caplog.text
