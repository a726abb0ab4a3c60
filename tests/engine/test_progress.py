"""Progress a user can see (issue 20): the run-level ETA and compile-time lines, and log
lines that do not glue onto a tqdm bar. The lr and loss terms of the train records are in
test_loop.py (the `sd_run` fixture both read is in conftest.py); the persistent
compilation cache in test_compile_cache.py."""
import io
import logging
import os
import re
import subprocess
import sys


from jaxkd.engine import progress
from tests.conftest import REPO


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


# -- new -------------------------------------------------------------------------------------

def test_format_hms_rounds_and_lets_hours_pass_a_day():
    assert progress.format_hms(0) == "00:00:00"
    assert progress.format_hms(59.6) == "00:01:00"
    assert progress.format_hms(31 * 3600 + 300) == "31:05:00"
    assert progress.format_hms(-5) == "00:00:00"


def test_run_clock_uses_the_newest_measurement():
    clock = progress.RunClock()
    assert clock.rate() is None and clock.eta(10) is None
    clock.seconds_per_step["gen0"] = 2.0
    clock.seconds_per_step["gen1"] = 0.25
    assert clock.rate() == 0.25 and clock.eta(40) == 10.0
    assert clock.describe(4 * 3600) == "ETA for the run 01:00:00"


def test_tqdm_stream_writes_whole_lines_and_keeps_the_rest_until_flush():
    sink = io.StringIO()
    stream = progress._TqdmStream(sink)
    assert stream.write("first li") == 8
    assert sink.getvalue() == ""
    stream.write("ne\nsecond")
    assert sink.getvalue() == "first line\n"
    stream.flush()
    assert sink.getvalue() == "first line\nsecond"
    assert stream.isatty() is False and stream.getvalue() == sink.getvalue()


def test_tqdm_logging_swaps_console_handlers_and_restores_them():
    logger = logging.getLogger("jaxkd")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    real_err = sys.stderr
    try:
        with progress.tqdm_logging():
            assert isinstance(handler.stream, progress._TqdmStream)
            assert isinstance(sys.stderr, progress._TqdmStream)
            assert handler.stream.stream is real_err
        assert handler.stream is real_err and sys.stderr is real_err
    finally:
        logger.removeHandler(handler)
