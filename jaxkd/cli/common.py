"""What the subcommands share: their own absl flags, logging, one-line errors, workdirs."""

from __future__ import annotations

import json
import logging
import pathlib
import sys
from typing import Callable

import ml_collections
from absl import flags

from jaxkd import data, exit_codes, workdir as workdir_lib

log = logging.getLogger("jaxkd")


def new_flags() -> flags.FlagValues:
    """A flag registry of one subcommand (never the training flags of `jaxkd.main`)."""
    return flags.FlagValues()


HELP_FLAGS = ("--help", "-h", "-help", "--helpshort", "--helpfull")


def define_phase_flags(fv: flags.FlagValues, verb: str) -> None:
    """--workdir, --phase and --checkpoint: which trained model a command reads."""
    flags.DEFINE_string("workdir", None, "A run's workdir (config.json, phases/).",
                        flag_values=fv)
    flags.DEFINE_string("phase", "", f"Phase to {verb} (default: the last finished one).",
                        flag_values=fv)
    flags.DEFINE_string("checkpoint", "", "A checkpoint of that phase's architecture "
                        "instead of the phase's final one.", flag_values=fv)


def helping(argv: list[str]) -> bool:
    """Whether `argv` asks for a command's help."""
    return any(a in HELP_FLAGS for a in argv[1:])


def parse(fv: flags.FlagValues, argv: list[str], usage: str) -> list[str]:
    """Parses `argv` into `fv`; `--help` prints `usage` and the flags. Returns positionals.

    A bad flag is absl's message and exit code 1 (as `jaxkd train`); an override of a
    config field that does not exist is one line and exit code 2.
    """
    if helping(argv):
        try:
            print(usage.strip() + "\n\nflags:\n" + fv.get_help(include_special_flags=False))
        except BrokenPipeError:   # `| head`
            pass
        sys.exit(0)
    try:
        rest = fv(argv)
    except flags.Error as err:
        print(f"FATAL Flags parsing error: {err}", file=sys.stderr)
        print(f"Pass --help to see {argv[0]}'s flags.", file=sys.stderr)
        sys.exit(1)
    except (AttributeError, KeyError) as err:
        field = next((a.split("=", 1)[0] for a in argv[1:] if a.startswith("--config.")
                      and str(err).strip("'\"") in a), str(err))
        fail(f"{field}: the config has no such field")
    # Libraries that read absl's global flags (absl logging) must not see them unparsed.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    return rest[1:]


def setup_logging() -> None:
    """jaxkd's INFO lines on stderr (stdout stays for the command's output)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname).1s %(asctime)s %(name)s] %(message)s",
                        datefmt="%H:%M:%S", force=True)
    for name in ("absl", "jax", "orbax"):      # their INFO chatter (backend probes, saves)
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("jaxkd").setLevel(logging.INFO)


def fail(message: str, code: int = 2):
    """One line on stderr and an exit code (2: bad input)."""
    print(f"FATAL {message}", file=sys.stderr)
    sys.stdout.flush()
    sys.exit(code)


def guarded(body: Callable[[], int | None]) -> int:
    """Runs `body`; a failure the user can act on is one line and `exit_codes`' code."""
    try:
        return body() or 0
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as err:  # pylint: disable=broad-except
        known = exit_codes.classify(err)
        if known is None:
            raise
        fail(" ".join(known[1].split()), known[0])
    return 0


# -- workdirs ---------------------------------------------------------------------------
def workdir_of_checkpoint(path: str) -> pathlib.Path | None:
    """The workdir holding a checkpoint path (`<W>/phases/<name>/...`), if any."""
    p = pathlib.Path(path).absolute()
    for parent in [p, *p.parents]:
        if (parent / "config.json").is_file() and (parent / "phases").is_dir():
            return parent
    return None


def phase_of_checkpoint(workdir: pathlib.Path, path: str) -> str | None:
    """The phase name of a checkpoint path inside `workdir/phases/`, if it is one."""
    try:
        rel = pathlib.Path(path).absolute().relative_to(workdir / "phases")
    except ValueError:
        return None
    return rel.parts[0] if rel.parts else None


def read_config(workdir: pathlib.Path):
    """The resolved config a workdir was trained with (`config.json`)."""
    path = workdir / "config.json"
    if not path.is_file():
        fail(f"--workdir={workdir}: no config.json (not a jaxkd workdir, or a run that "
             f"never started)")
    return ml_collections.ConfigDict(json.loads(path.read_text()))


def read_results(workdir: pathlib.Path) -> dict:
    path = workdir / "results.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def choose_phase(plan, workdir: pathlib.Path, name: str):
    """The plan's phase called `name`, or (name '') the last one with a final checkpoint."""
    names = [p.name for p in plan]
    if name:
        if name not in names:
            fail(f"--phase={name}: the run has no such phase; its phases: {', '.join(names)}")
        return next(p for p in plan if p.name == name)
    done = [p for p in plan
            if workdir_lib.has_final(workdir_lib.phase_dir(workdir, p.name))]
    if not done:
        fail(f"--workdir={workdir}: no phase has finished yet (no phases/<name>/final); "
             f"its phases: {', '.join(names)}")
    return done[-1]


def data_stats(workdir: pathlib.Path, config) -> dict:
    """Class names, normalisation and image shape of the data a workdir was trained on.

    Read from `results.json["data"]` when the run recorded them there; otherwise computed
    from the workdir's data (`config.data`), as training computed them.
    """
    recorded = read_results(workdir).get("data")
    if isinstance(recorded, dict) and \
            {"class_names", "mean", "std", "image_shape"} <= set(recorded):
        return dict(recorded, recorded=True)
    log.info("computing class names and mean/std from the workdir's data (config.data."
             "source=%s): results.json does not record them", config.data.source)
    splits = data.load_splits(config.data, seed=config.seed)
    return {"class_names": list(splits.class_names), "num_classes": splits.num_classes,
            "mean": [float(x) for x in splits.mean], "std": [float(x) for x in splits.std],
            "image_shape": [int(x) for x in splits.image_shape], "recorded": False,
            "splits": splits}
