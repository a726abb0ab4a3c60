"""The `jaxkd` command as a user runs it, in subprocesses, and the README's "Use what you
trained" commands (train -> evaluate -> export -> predict)."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


README_PREFIX = "/tmp/jaxkd_use"


SAMPLE_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                  "ship", "truck"]


def _env() -> dict:
    # As a user runs it: no test XLA_FLAGS (the CLI splits the CPU host itself).
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    return env


def cli(*args, check: bool = True) -> subprocess.CompletedProcess:
    """`jaxkd ARGS` as `python -m jaxkd.main ARGS` (the console script's function)."""
    return _run([sys.executable, "-m", "jaxkd.main", *args], check=check)


def _run(argv, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=300)
    if check:
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-3000:])
    return done


def readme_commands() -> list[list[str]]:
    """The bash block of the README's "Use what you trained" section, one argv a line."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Use what you trained", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.strip().splitlines()]
