"""The training command line (`jaxkd.main`): an offline paper config exits 5 in one line,
flag parsing names a field the config lacks, and orbax's background errors are one line."""
import logging
import os
import subprocess
import sys
import threading

import pytest
from absl import app, flags
from ml_collections import config_flags

from jaxkd import main
from tests.conftest import REPO
from tests.data.test_tfds_source import _OFFLINE


def test_cli_paper_config_without_network_exits_5_with_one_line(tmp_path):
    """The mission's command shape on its TFDS default, offline: no traceback, exit 5."""
    program = ("import sys; from tensorflow_datasets.core.download import downloader; "
               "downloader.MAX_RETRIES = 0; from jaxkd import main; "
               "sys.argv[0] = 'jaxkd'; main.run_main()")
    args = [sys.executable, "-c", program, "--config=configs/sd_resnet56.py",
            f"--workdir={tmp_path / 'w'}", f"--config.data.data_dir={tmp_path / 'tfds'}",
            "--config.progress_bar=False"]
    env = dict(os.environ, **_OFFLINE)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 5, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "TFDS could not download or prepare 'cifar100'" in proc.stderr
    assert "--config.data.source=cifar_binary" in proc.stderr


# -- new -------------------------------------------------------------------------------------

@pytest.fixture
def fresh_flags(monkeypatch):
    """`main.parse_flags` against a FlagValues of its own (absl's global one untouched)."""
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config", lock_config=True,
                                    flag_values=values)
    flags.DEFINE_string("workdir", None, "workdir", flag_values=values)
    monkeypatch.setattr(flags, "FLAGS", values)

    def parse(argv):
        monkeypatch.setattr(sys, "argv", argv)    # config overrides are read from sys.argv
        return main.parse_flags(argv)
    parse.values = values
    return parse


CONFIG = str(REPO / "configs" / "baseline_resnet20.py")


def test_parse_flags_applies_config_overrides(fresh_flags):
    rest = fresh_flags(["jaxkd", f"--config={CONFIG}", "--workdir=/tmp/w",
                        "--config.num_epochs=3"])
    assert rest == ["jaxkd"]
    assert fresh_flags.values.config.num_epochs == 3
    assert fresh_flags.values.workdir == "/tmp/w"


def test_a_field_the_config_lacks_is_one_line_with_the_nearest_fields(fresh_flags, capsys):
    with pytest.raises(SystemExit) as exit_:
        fresh_flags(["jaxkd", f"--config={CONFIG}", "--config.learning_rate=0.1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("FATAL --config.learning_rate: the config has no such field; did "
                          "you mean ") and "config.schedule.base_lr" in err
    assert err.count("\n") == 1


def test_an_unknown_flag_is_absl_s_message_and_code_1(fresh_flags, capsys):
    with pytest.raises(SystemExit) as exit_:
        fresh_flags(["jaxkd", f"--config={CONFIG}", "--nosuchflag=1"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("FATAL Flags parsing error: ")


def test_train_refuses_positional_arguments():
    with pytest.raises(app.UsageError, match=r"unexpected arguments: \['extra'\]"):
        main.main(["jaxkd", "extra"])


def test_orbax_background_errors_become_one_line_without_traceback():
    try:
        raise OSError(28, "No space left on device")
    except OSError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("absl", logging.ERROR, "/site-packages/orbax/checkpoint/x.py",
                               1, "save failed:\n  %s", ("details\n  more",), exc_info)
    assert main._OneLineLibraryErrors().filter(record)
    assert record.exc_info is None and record.getMessage() == "save failed: details more"
    ours = logging.LogRecord("jaxkd", logging.ERROR, "/jaxkd/run.py", 1, "a\nb", (), exc_info)
    main._OneLineLibraryErrors().filter(ours)
    assert ours.exc_info is exc_info and ours.getMessage() == "a\nb"


def test_a_background_thread_failure_is_one_warning(caplog):
    args = threading.ExceptHookArgs((RuntimeError, RuntimeError("disk gone"), None,
                                     threading.current_thread()))
    with caplog.at_level(logging.WARNING, logger="jaxkd"):
        main._thread_failure_in_one_line(args)
    assert caplog.messages == [f"background thread {threading.current_thread().name} "
                               "stopped: RuntimeError: disk gone"]
