"""The check-in of a multi-process run's processes before JAX's own initialisation."""
import socket
import threading
import time

import pytest

from jaxkd.engine import rendezvous
from jaxkd.engine.rendezvous import PeerMissingError


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_split_reads_host_and_port():
    assert rendezvous._split("10.0.0.2:1234") == ("10.0.0.2", 1234)
    assert rendezvous._split(":99") == ("127.0.0.1", 99)


def test_one_process_returns_at_once():
    t = time.monotonic()
    rendezvous.await_peers("127.0.0.1:1", num_processes=1, process_id=0, timeout_s=30)
    assert time.monotonic() - t < 1


def test_a_missing_peer_is_named_on_process_0_within_the_timeout():
    port = _free_port()
    t = time.monotonic()
    with pytest.raises(PeerMissingError, match=r"process 0/3: processes \[1, 2\] did not join "
                                               r"within 0.3 s"):
        rendezvous.await_peers(f"127.0.0.1:{port - 1}", num_processes=3, process_id=0,
                               timeout_s=0.3)
    assert time.monotonic() - t < 5


def test_an_unreachable_coordinator_is_named_on_the_others():
    port = _free_port()
    with pytest.raises(PeerMissingError, match=r"process 1/2: the coordinator \(process 0\) "
                                               r"at 127.0.0.1:\d+ did not answer within 0.5 s"):
        rendezvous.await_peers("127.0.0.1:1", num_processes=2, process_id=1, timeout_s=0.5,
                               port=port)


def test_every_process_checking_in_goes_and_a_late_one_hears_who_is_missing():
    port = _free_port()
    errors = []

    def serve(n, timeout):
        try:
            rendezvous.await_peers("127.0.0.1:1", num_processes=n, process_id=0,
                                   timeout_s=timeout, port=port)
        except PeerMissingError as err:
            errors.append(err)

    server = threading.Thread(target=serve, args=(2, 10))
    server.start()
    rendezvous.await_peers("127.0.0.1:1", num_processes=2, process_id=1, timeout_s=10,
                           port=port)
    server.join(10)
    assert not errors
    # Three processes, only 1 arrives: process 1 is told that 2 is missing.
    port = _free_port()
    server = threading.Thread(target=serve, args=(3, 1.0))
    server.start()
    with pytest.raises(PeerMissingError, match=r"reports missing \[2\]"):
        rendezvous.await_peers("127.0.0.1:1", num_processes=3, process_id=1, timeout_s=5,
                               port=port)
    server.join(10)
    assert len(errors) == 1 and "[2]" in str(errors[0])
