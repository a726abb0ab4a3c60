"""Two processes on loopback: a lost peer stops the survivor; a rerun completes and agrees.

Each process sees one CPU device (a two-device mesh in all), joins through
`JAXKD_COORDINATOR` and talks through gloo. The run is `tiny_config.py` with one
generation: 8 steps, a checkpoint after each.
"""

import json
import re
import signal
import socket
import subprocess
import time

import pytest

from tests.chaos import kill_driver
from tests.helpers import write_tiny_npz

HEARTBEAT_S = 10
SURVIVOR_BOUND_S = 90      # heartbeat timeout + detection + a loaded CI machine
RUN_TIMEOUT_S = 420


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(workdir, npz, logs):
    """Starts both processes of the run; returns their Popen objects."""
    port, procs = _free_port(), []
    for pid in (0, 1):
        env = kill_driver.subprocess_env()
        env.update(JAXKD_COORDINATOR=f"127.0.0.1:{port}", JAXKD_NUM_PROCESSES="2",
                   JAXKD_PROCESS_ID=str(pid), JAXKD_HEARTBEAT_TIMEOUT_S=str(HEARTBEAT_S))
        out = (logs / f"{workdir.name}.p{pid}.log").open("w")
        procs.append(subprocess.Popen(
            kill_driver.command(workdir, npz) + ["--config.generations=0"],
            cwd=kill_driver.REPO, env=env, stdout=out, stderr=subprocess.STDOUT))
    return procs


def _wait_all(procs, timeout):
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait(timeout=max(deadline - time.monotonic(), 1))
    return [p.returncode for p in procs]


def _fingerprints(log) -> list[str]:
    return re.findall(r"parameters fingerprint ([0-9a-f]+)", log.read_text())


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("mh") / "tiny.npz")


def test_lost_peer_stops_the_survivor_then_both_resume_and_agree(npz, tmp_path):
    # 1. Process 1 is SIGKILLed after the first committed checkpoint: process 0 stops,
    #    with a message, within a bounded time (no hang in a collective or a barrier).
    workdir = tmp_path / "run"
    procs = _start(workdir, npz, tmp_path)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not [p for p in (workdir / "phases").glob("*/ckpt/*") if p.name.isdigit()]:
        assert time.monotonic() < deadline and procs[0].poll() is None, "no checkpoint"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        code = procs[0].wait(timeout=SURVIVOR_BOUND_S)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        pytest.fail(f"process 0 still running {SURVIVOR_BOUND_S}s after its peer died")
    procs[1].wait()
    survivor = (tmp_path / "run.p0.log").read_text()
    assert code != 0 and not (workdir / "results.json").exists()
    assert ("another process died" in survivor or "another task died" in survivor), \
        survivor[-3000:]
    print(f"\nsurvivor exited with {code} {time.monotonic() - killed_at:.1f}s after the kill")

    # 2. The same command on both processes resumes and completes; both processes end
    #    with bit-identical parameters (fingerprints of their own copies).
    procs = _start(workdir, npz, tmp_path)
    codes = _wait_all(procs, RUN_TIMEOUT_S)
    logs = [tmp_path / f"run.p{i}.log" for i in (0, 1)]
    assert codes == [0, 0], "\n".join(l.read_text()[-3000:] for l in logs)
    assert "resumed at step" in logs[0].read_text()
    prints = [_fingerprints(l) for l in logs]
    assert len(prints[0]) == 1 and prints[0] == prints[1]
    assert json.loads((workdir / "results.json").read_text())["phases"][0]["epochs"] == 2


def _start_some(tmp_path, npz, ids, num, timeout_s=6):
    """Starts processes `ids` of a `num`-process run that bounds the wait for peers."""
    port, procs = _free_port(), []
    for pid in ids:
        env = kill_driver.subprocess_env()
        env.update(JAXKD_COORDINATOR=f"127.0.0.1:{port}", JAXKD_NUM_PROCESSES=str(num),
                   JAXKD_PROCESS_ID=str(pid), JAXKD_INIT_TIMEOUT_S=str(timeout_s))
        procs.append(subprocess.Popen(
            kill_driver.command(tmp_path / "w", npz), cwd=kill_driver.REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def test_a_peer_that_never_starts_is_named_within_the_bound(npz, tmp_path):
    """Processes 0 and 2 of 3 start, 1 never does: both exit (code 4) within the bound
    naming process 1, instead of JAX's 300 s wait and 'Deadline Exceeded' abort."""
    start = time.monotonic()
    procs = _start_some(tmp_path, npz, (0, 2), 3)
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert time.monotonic() - start < 60
    assert [p.returncode for p in procs] == [4, 4], outs
    assert "process 0/3: processes [1] did not join within 6 s" in outs[0]
    assert "process 2/3" in outs[1] and "missing [1]" in outs[1]
    assert all("Traceback" not in o for o in outs)
    assert not (tmp_path / "w").exists()         # nothing was written


def test_a_missing_coordinator_is_named_within_the_bound(npz, tmp_path):
    (proc,) = _start_some(tmp_path, npz, (1,), 2)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 4, out
    assert "process 1/2: the coordinator (process 0)" in out and "did not answer" in out
