"""What the command line makes of each failure: the exit code and its one-line message,
for real exceptions raised by jaxkd's own code where it can raise them cheaply."""
import errno
import shutil

import ml_collections
import numpy as np
import pytest

from jaxkd import checkpoints, data, exit_codes
from jaxkd import workdir as workdir_lib
from jaxkd.data import tfds_source
from jaxkd.data.dataset import DataUnavailableError
from jaxkd.engine import loop, rendezvous
from jaxkd.workdir import WorkdirLockedError


def _raised(call):
    try:
        call()
    except BaseException as err:   # noqa: BLE001 - the exception is the point
        return err
    raise AssertionError("did not raise")


def test_bad_input_is_2():
    err = _raised(lambda: data.load_splits(dict(source="csv"), seed=0))
    assert isinstance(err, ValueError)
    assert exit_codes.classify(err) == (exit_codes.BAD_INPUT, str(err)) == (2, str(err))


def test_a_non_finite_step_is_3():
    window = [dict(loss=np.float32(np.nan), finite=False)]
    config = ml_collections.ConfigDict({"nonfinite": "stop"})
    err = _raised(lambda: loop.check_finite(window, "gen0", 0, config, ""))
    assert isinstance(err, loop.NonFiniteError)
    assert exit_codes.classify(err) == (3, str(err))


def test_a_missing_peer_is_4():
    err = _raised(lambda: rendezvous.await_peers("127.0.0.1:1", num_processes=2,
                                                 process_id=1, timeout_s=0.1, port=9))
    assert isinstance(err, rendezvous.PeerMissingError)
    assert exit_codes.classify(err) == (4, str(err))


def test_data_that_cannot_be_had_is_5():
    class OfflineTfds:
        @staticmethod
        def data_source(*args, **kwargs):
            raise ConnectionError("network unreachable")
    err = _raised(lambda: tfds_source.data_source(OfflineTfds, "cifar10", "train", ""))
    assert isinstance(err, DataUnavailableError)
    assert exit_codes.classify(err) == (5, str(err))


def test_a_workdir_held_by_another_run_is_5(tmp_path):
    held = workdir_lib.WorkdirLock(tmp_path).acquire()
    try:
        err = _raised(lambda: workdir_lib.WorkdirLock(tmp_path).acquire())
    finally:
        held.release()
    assert isinstance(err, WorkdirLockedError)
    code, message = exit_codes.classify(err)
    assert code == 5 and "is in use by another jaxkd run" in message


def test_a_full_disk_is_5_also_behind_a_value_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: type("U", (), {"free": 0})())
    err = _raised(lambda: checkpoints.check_room(tmp_path, {"w": np.zeros(10)}))
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC
    code, message = exit_codes.classify(err)
    assert code == 5 and f": {tmp_path}; free some space" in message

    def wrapped():
        try:
            checkpoints.check_room(tmp_path, {"w": np.zeros(10)})
        except OSError as inner:
            raise ValueError("saving failed") from inner
    code, message = exit_codes.classify(_raised(wrapped))
    assert code == 5 and "No space left on device" in message
    text_only = RuntimeError("write failed: [Errno 28] No space left on device")
    assert exit_codes.classify(text_only)[0] == 5


def test_a_read_only_or_forbidden_path_is_5():
    err = _raised(lambda: open("/proc/sys/kernel/ostype", "w"))   # read-only for anyone
    assert isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EROFS, errno.EPERM)
    code, message = exit_codes.classify(err)
    assert code == 5 and "/proc/sys/kernel/ostype" in message
    assert "make the workdir writable or choose another --workdir" in message
    rofs = OSError(errno.EROFS, "Read-only file system", "/mnt/w")
    assert exit_codes.classify(rofs) == (5, "Read-only file system: /mnt/w; make the workdir "
                                            "writable or choose another --workdir")


@pytest.mark.parametrize("call", [lambda: {}["missing"], lambda: open("/nonexistent/x"),
                                  lambda: 1 / 0], ids=["KeyError", "FileNotFound", "Zero"])
def test_anything_else_is_a_bug_and_keeps_its_traceback(call):
    assert exit_codes.classify(_raised(call)) is None
