"""Check-in of the processes of a multi-process run before JAX's own initialisation.

`jax.distributed.initialize` waits for every process to register with the coordination
service and, when one never comes, aborts the process after its timeout (300 s by
default) with "Deadline Exceeded" and no word on who is missing. Before it, every process
checks in with process 0 over a plain TCP socket (the coordinator's host, its port + 1 or
`JAXKD_RENDEZVOUS_PORT`): process 0 names the processes that did not arrive within the
bound (`JAXKD_INIT_TIMEOUT_S`, 120 s by default), tells the ones that did, and every process
exits with that message.
"""

from __future__ import annotations

import socket
import time

_ANSWER_GO = "go"


class PeerMissingError(RuntimeError):
    """A process of a multi-process run did not join in time; the message names it."""


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _serve(host: str, port: int, num_processes: int, timeout_s: float) -> None:
    """Process 0: waits for processes 1..N-1, then answers each 'go' or 'missing ...'."""
    arrived: dict[int, socket.socket] = {}
    deadline = time.monotonic() + timeout_s
    with socket.create_server(("", port), reuse_port=False) as server:
        while len(arrived) < num_processes - 1 and time.monotonic() < deadline:
            server.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break
            conn.settimeout(5)
            try:
                arrived.setdefault(int(conn.recv(64).decode().strip()), conn)
            except (OSError, ValueError):
                conn.close()
        missing = sorted(set(range(1, num_processes)) - set(arrived))
        answer = _ANSWER_GO if not missing else f"missing {missing}"
        for conn in arrived.values():
            try:
                conn.sendall((answer + "\n").encode())
            except OSError:
                pass
            conn.close()
    if missing:
        raise PeerMissingError(
            f"process 0/{num_processes}: processes {missing} did not join within "
            f"{timeout_s:g} s (JAXKD_INIT_TIMEOUT_S) at {host}:{port}; run the same command "
            f"on every host with JAXKD_PROCESS_ID set to each of 0..{num_processes - 1}")


def _check_in(host: str, port: int, process_id: int, num_processes: int,
              timeout_s: float) -> None:
    """Process i > 0: registers with process 0 and waits for its answer."""
    deadline = time.monotonic() + timeout_s
    where = (f"process {process_id}/{num_processes}: the coordinator (process 0) at "
             f"{host}:{port}")
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=2)
            break
        except OSError:
            if time.monotonic() >= deadline:
                raise PeerMissingError(f"{where} did not answer within {timeout_s:g} s "
                                       f"(JAXKD_INIT_TIMEOUT_S): is process 0 running, and "
                                       f"is JAXKD_COORDINATOR the same on every host?") from None
            time.sleep(0.2)
    with conn:
        conn.sendall(f"{process_id}\n".encode())
        conn.settimeout(max(deadline - time.monotonic(), 0) + 5)
        try:
            answer = conn.recv(256).decode().strip()
        except OSError:
            answer = ""
    if answer != _ANSWER_GO:
        raise PeerMissingError(f"{where} reports {answer or 'no answer'}: processes did not "
                               f"all join within {timeout_s:g} s (JAXKD_INIT_TIMEOUT_S)")


def await_peers(coordinator: str, *, num_processes: int, process_id: int,
                timeout_s: float, port: int = 0) -> None:
    """Returns once all `num_processes` processes have checked in, else raises.

    Args:
        coordinator: `JAXKD_COORDINATOR`, host:port of JAX's coordination service.
        num_processes: the run's process count; process_id: this process's index.
        timeout_s: the bound on the wait.
        port: the check-in port (0: the coordinator's port + 1).

    Raises:
        PeerMissingError: naming the processes that did not join (on process 0 and on
            those that did join), or the unreachable coordinator (on the others).
    """
    host, coord_port = _split(coordinator)
    port = port or coord_port + 1
    if num_processes <= 1:
        return
    if process_id == 0:
        _serve(host, port, num_processes, timeout_s)
    else:
        _check_in(host, port, process_id, num_processes, timeout_s)
