"""One writer per workdir: a second run on a busy workdir is refused and writes nothing; the
lock of a SIGKILLed run is taken over by the resume (docs/reliability.md, section 9).

    python -m pytest -s -q tests/chaos/test_lock.py
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from jaxkd import run as run_lib
from jaxkd import workdir as workdir_lib
from jaxkd.workdir import WorkdirLockedError
from tests.chaos import kill_driver
from tests.helpers import tiny_config, write_tiny_npz

HOST = socket.gethostname()
# Two generations (16 steps, a checkpoint after each): long enough to be caught running.
CLI_ARGS = ["--config.generations=1"]


def _tree(workdir: pathlib.Path) -> dict:
    """Every path under the workdir with its size and modification time."""
    return {str(p.relative_to(workdir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(workdir.rglob("*"))}


def _lines(path: pathlib.Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_for_checkpoint(proc, workdir: pathlib.Path, log: pathlib.Path, timeout=240.0):
    t0 = time.monotonic()
    while not kill_driver._entries(workdir, "ckpt"):
        assert proc.poll() is None, f"the first run ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.05)


CONCURRENT_STARTS = 3


def test_second_cli_run_is_refused_then_resume_after_sigkill_takes_the_lock_over(tmp_path):
    npz = write_tiny_npz(tmp_path / "tiny.npz")
    workdir = tmp_path / "run"
    cmd = kill_driver.command(workdir, npz) + CLI_ARGS
    env = kill_driver.subprocess_env()
    first_log = tmp_path / "first.log"
    with first_log.open("w") as out:
        first = subprocess.Popen(cmd, cwd=kill_driver.REPO, env=env, stdout=out,
                                 stderr=subprocess.STDOUT)
    try:
        _wait_for_checkpoint(first, workdir, first_log)
        # Freeze the holder so that whatever changes in the workdir meanwhile is the
        # second run's doing; its lock stays held while it is stopped.
        os.kill(first.pid, signal.SIGSTOP)
        time.sleep(0.5)                     # let an in-flight async write settle
        before, metrics = _tree(workdir), _lines(workdir / "metrics.jsonl")

        t0 = time.monotonic()
        starts = [subprocess.Popen(cmd, cwd=kill_driver.REPO, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                  for _ in range(CONCURRENT_STARTS)]      # all at once, while it is held
        outs = [p.communicate(timeout=120)[0] for p in starts]
        seconds = time.monotonic() - t0
        refused = sum(p.returncode == 5 for p in starts)
        print(f"\nconcurrent starts refused: {refused}/{CONCURRENT_STARTS} "
              f"(exit 5) in {seconds:.1f} s")
        assert refused == CONCURRENT_STARTS, outs[0][-3000:]
        for out in outs:
            message = next(line for line in out.splitlines() if "is in use by another" in line)
            assert f"pid {first.pid} on host {HOST}" in message and str(workdir) in message
            assert "started " in message and "kill" in message and "Traceback" not in out
        assert seconds < 90, f"refusal took {seconds:.1f} s"
        assert _lines(workdir / "metrics.jsonl") == metrics
        assert _tree(workdir) == before, "a refused run wrote into the workdir"
        holder = workdir_lib.read_holder(workdir / ".lock")
        assert holder["pid"] == first.pid and holder["host"] == HOST, holder

        # SIGKILL the holder: the OS drops its lock, the same command resumes and ends.
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    resumed = subprocess.run(cmd, cwd=kill_driver.REPO, env=env, capture_output=True,
                             text=True, timeout=400)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert [p["name"] for p in results["phases"]] == ["gen0", "gen1"]
    holder = workdir_lib.read_holder(workdir / ".lock")
    assert holder["pid"] != first.pid and holder["host"] == HOST     # the lock taken over
    # No record twice: each (phase, kind, step) of metrics.jsonl appears once.
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    keys = [tuple(r[k] for k in ("phase", "kind", "step")) for r in records]
    assert len(keys) == len(set(keys)), "duplicated metrics records"


def _try_lock(workdir, out: list, index: int = 0):
    try:
        out.append(workdir_lib.WorkdirLock(workdir, index).acquire())
    except WorkdirLockedError as err:
        out.append(err)


def test_lock_is_exclusive_across_threads_and_released_on_exit(tmp_path):
    with workdir_lib.lock(tmp_path) as held:
        record = json.loads((tmp_path / ".lock").read_text())
        assert record["pid"] == os.getpid() and record["host"] == HOST
        assert record["process_index"] == 0 and record["started"]
        got: list = []
        thread = threading.Thread(target=_try_lock, args=(tmp_path, got))
        thread.start()
        thread.join()
        err = got[0]
        assert isinstance(err, WorkdirLockedError) and isinstance(err, OSError)
        assert f"pid {os.getpid()} on host {HOST}" in str(err) and str(tmp_path) in str(err)
        assert "\n" not in str(err) and err.holder["pid"] == os.getpid()
        # Another process index is another lock (multi-process runs: one per process).
        with workdir_lib.lock(tmp_path, process_index=1) as other:
            assert other.path.name == ".lock.1"
            got = []
            _try_lock(tmp_path, got, index=1)
            assert isinstance(got[0], WorkdirLockedError)
        assert held.held
    got = []
    thread = threading.Thread(target=_try_lock, args=(tmp_path, got))
    thread.start()
    thread.join()
    assert isinstance(got[0], workdir_lib.WorkdirLock) and got[0].held
    got[0].release()
    with pytest.raises(RuntimeError):            # the lock is free: an exception inside
        with workdir_lib.lock(tmp_path):         # the block releases it too
            raise RuntimeError("boom")
    assert workdir_lib.lock_path(tmp_path).exists()   # the file stays, the lock is free
    with workdir_lib.lock(tmp_path):
        pass


_HOLDER = textwrap.dedent("""
    import os, sys, time
    from jaxkd import workdir
    held = workdir.WorkdirLock(sys.argv[1]).acquire()
    if os.fork() == 0:           # a forked child must not keep the workdir locked
        os.write(1, b"child\\n")      # one write each: the two lines never interleave
        time.sleep(30)
        os._exit(0)
    os.write(1, b"locked\\n")
    time.sleep(60)
""")


def test_lock_of_another_process_refuses_and_a_dead_holder_is_taken_over(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(kill_driver.REPO))
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = {holder.stdout.readline().strip(), holder.stdout.readline().strip()}
        assert lines == {"locked", "child"}, lines   # the child runs, past its fork hook
        with pytest.raises(WorkdirLockedError, match=f"pid {holder.pid} on host {HOST}"):
            workdir_lib.WorkdirLock(tmp_path).acquire()
        holder.kill()           # SIGKILL: the OS releases the flock (the forked child
        holder.wait()           # still runs but holds no lock)
        record = workdir_lib.read_holder(tmp_path / ".lock")
        assert record["pid"] == holder.pid                      # a stale record is left
        with workdir_lib.lock(tmp_path):                        # and taken over
            assert workdir_lib.read_holder(tmp_path / ".lock")["pid"] == os.getpid()
    finally:
        try:                    # the holder's session: it and its forked child
            os.killpg(holder.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        holder.wait()


def test_leftover_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"pid": dead.pid, "host": HOST, "process_index": 0,
             "started": "2020-01-01T00:00:00+00:00", "started_unix": 1577836800.0,
             "junk": "x" * 500}            # longer than a fresh record: must be truncated
    (tmp_path / ".lock").write_text(json.dumps(stale))
    with workdir_lib.lock(tmp_path):
        record = json.loads((tmp_path / ".lock").read_text())
        assert record["pid"] == os.getpid() and "junk" not in record
    (tmp_path / ".lock").write_bytes(b"\x00garbage")           # unreadable record too
    with workdir_lib.lock(tmp_path):
        assert workdir_lib.read_holder(tmp_path / ".lock")["pid"] == os.getpid()


def test_run_refuses_a_locked_workdir_before_writing_and_releases_when_it_raises(tmp_path):
    npz = write_tiny_npz(tmp_path / "tiny.npz")
    workdir = tmp_path / "run"
    workdir.mkdir()
    got: list = []
    with workdir_lib.lock(workdir):
        thread = threading.Thread(target=lambda: got.append(_run_or_error(npz, workdir)))
        thread.start()
        thread.join()
    assert isinstance(got[0], WorkdirLockedError), got
    assert sorted(p.name for p in workdir.iterdir()) == [".lock"]   # nothing else written
    # A run that raises (here: a workdir of another config) releases the lock.
    (workdir / "config.json").write_text(json.dumps(
        json.loads(tiny_config(npz, **{"schedule.base_lr": 0.5}).to_json())))
    (workdir / "phases" / "gen0" / "final" / "1").mkdir(parents=True)   # a phase had begun
    with pytest.raises(run_lib.ConfigMismatchError):
        run_lib.run(tiny_config(npz), workdir)
    with workdir_lib.lock(workdir):
        pass


def _run_or_error(npz, workdir):
    try:
        return run_lib.run(tiny_config(npz), workdir)
    except Exception as err:  # pylint: disable=broad-except
        return err
