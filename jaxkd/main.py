"""Command line: `jaxkd <command>` / `python -m jaxkd.main <command>`.

`train` (also the default, without a command: `python -m jaxkd.main --config=configs/<name>.py
--workdir=DIR`) is this module: parse flags, join a multi-host run if the environment
describes one, log the resolved config and the devices, and call `jaxkd.run.run`, which
notebooks call too. Config fields can be overridden on the command line:
`--config.num_epochs=2`; `--config=NAME` names a shipped config. The other commands
(`grid`, `report`, `evaluate`, `export`, `predict`, `show-config`) live in `jaxkd.cli`,
dispatched on `argv[1]` before absl parses any flag; `jaxkd --help` lists them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback

import jax
from absl import app, flags
from ml_collections import config_flags

from jaxkd import cli, config as config_lib, exit_codes, report, run as run_lib
from jaxkd.cli import configs as configs_lib
from jaxkd.engine import compile_cache, sharding


_load_config_source = configs_lib.load_config_source


def _use_exec_module_for_config_files() -> None:
    """Swaps in `_load_config_source` while ml_collections still loads with `load_module`."""
    lib = getattr(config_flags, "config_flags", None)
    code = getattr(getattr(lib, "_load_source", None), "__code__", None)
    if code is not None and "load_module" in code.co_names:
        lib._load_source = _load_config_source


_use_exec_module_for_config_files()
_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, results.")
_CPU_SPLIT = flags.DEFINE_bool(
    "cpu_split", True, "On a CPU backend, one device per core (data parallel on the host; "
    "see jaxkd.engine.sharding.split_host_cpu). --nocpu_split keeps XLA's single device.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    compile_cache.enable()   # before anything compiles; JAXKD_NO_COMPILE_CACHE=1 turns it off
    config = _CONFIG.value
    log = logging.getLogger("jaxkd")
    if _CPU_SPLIT.value and isinstance(config.batch_size, int) and \
            isinstance(config.eval_batch_size, int) and isinstance(config.num_devices, int):
        sharding.split_host_cpu(config)   # before any backend starts; bad types: run() says
    try:
        sharding.initialize_distributed()
        log.info("config:\n%s", config)
        log.info("process %d/%d, devices: %s", jax.process_index(), jax.process_count(),
                 jax.devices())
        results = run_lib.run(config, _WORKDIR.value)
    except KeyboardInterrupt:   # Ctrl-C: committed checkpoints are kept
        log.error("interrupted; rerun the same command to resume (committed checkpoints "
                  "are kept)")
        sys.stdout.flush()
        sys.stderr.flush()
        # At once: a Ctrl-C that lands while orbax commits a checkpoint leaves its
        # background threads running, and they print tracebacks ("Event loop is closed")
        # while the interpreter shuts down. An uncommitted save is only a temporary
        # folder, removed when the run resumes.
        os._exit(130)
    except Exception as err:  # pylint: disable=broad-except
        known = exit_codes.classify(err)
        if known is not None:    # a clear message, no traceback from inside JAX or orbax
            log.error("%s", known[1])
            sys.stdout.flush()
            sys.stderr.flush()
            # At once in a multi-process run (no barrier with a dead peer), and after an
            # environment failure (orbax's threads, stuck on a full disk, would print
            # their tracebacks while the interpreter shuts down).
            if jax.process_count() > 1 or known[0] == exit_codes.ENVIRONMENT:
                os._exit(known[0])
            sys.exit(known[0])
        if jax.process_count() == 1:
            raise
        exit_multi_process(err)
    print(report.format_results(results))


def exit_multi_process(err: Exception) -> None:
    """Ends a process of a multi-process run at once, saying why and how to resume.

    A peer that died shows up here as a failed collective; exiting without the shutdown
    barrier (which would wait for the dead peer) lets the survivors stop promptly, and the
    peers still running see this process go and stop the same way.
    """
    traceback.print_exc()
    logging.getLogger("jaxkd").error(
        "process %d/%d stopped: %s: %s\nIn a multi-process run this usually means that "
        "another process died or lost its connection (see its log). Every committed "
        "checkpoint is kept: run the same command on every host again to resume.",
        jax.process_index(), jax.process_count(), type(err).__name__, str(err)[:500])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(4)


_LIBRARY_PATHS = ("/orbax/", "/concurrent/futures/", "/asyncio/")


class _OneLineLibraryErrors(logging.Filter):
    """Errors of orbax's background machinery as one line each, without tracebacks: a
    failed save (a full disk) reaches jaxkd as an exception, which the CLI reports in one
    line and an exit code; orbax's threads, their futures' callbacks and asyncio would
    print a traceback block each first."""

    def filter(self, record: logging.LogRecord) -> bool:
        if any(p in (record.pathname or "") for p in _LIBRARY_PATHS) and record.exc_info:
            record.exc_info, record.exc_text = None, None
            record.msg, record.args = " ".join(record.getMessage().split())[:300], ()
        return True


def _thread_failure_in_one_line(args) -> None:
    """A background thread's uncaught exception as one log line (the CLI's hook): the
    failure that matters reaches the main thread and its exit code."""
    logging.getLogger("jaxkd").warning("background thread %s stopped: %s: %s",
                                       getattr(args.thread, "name", "?"),
                                       args.exc_type.__name__, args.exc_value)


def quiet_library_logs() -> None:
    """jaxkd's own INFO lines stay; orbax's and absl's per-save chatter goes to WARNING."""
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)
    one_line = _OneLineLibraryErrors()
    for name in ("absl", "concurrent.futures", "asyncio"):
        logging.getLogger(name).addFilter(one_line)
    threading.excepthook = _thread_failure_in_one_line
    logging.getLogger("jaxkd").setLevel(logging.INFO)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with an override of a field the config lacks as one line.

    ml_collections raises AttributeError deep inside flag parsing for
    `--config.learning_rate=0.1` (57 lines of traceback); this names the field, the
    nearest ones of the config, and exits with code 2.
    """
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:   # what absl's own parser prints, code 1 as before
        print(f"FATAL Flags parsing error: {err}", file=sys.stderr)
        print("Pass --helpshort or --helpfull to see help on flags.", file=sys.stderr)
        sys.exit(1)
    except (AttributeError, KeyError) as err:
        field = next((a.split("=", 1)[0][2:] for a in argv[1:]
                      if a.startswith("--config.") and str(err).strip("'\"") in a), "")
        close = config_lib.nearest_fields(_loaded_config(argv), field) if field else []
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        print(f"FATAL {'--' + field if field else err}: the config has no such field"
              f"{hint} (see `--config` file and jaxkd.config.default_config)",
              file=sys.stderr)
        sys.exit(2)


def _loaded_config(argv: list[str]):
    """The config file named by `--config=` in `argv`, loaded alone (no overrides)."""
    path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), "")
    try:
        return _load_config_source("jaxkd_cli_config", path).get_config()
    except Exception:  # pylint: disable=broad-except  # no suggestions, still one line
        return None


def run_main() -> None:
    """Console-script entry point: `jaxkd <command> ...` (`jaxkd --help`); without a
    command, `jaxkd --config=... --workdir=...` trains, as `jaxkd train` does."""
    argv = cli.dispatch(list(sys.argv))      # other commands run (and exit) here
    app.run(main, argv=argv, flags_parser=parse_flags)


if __name__ == "__main__":
    run_main()
