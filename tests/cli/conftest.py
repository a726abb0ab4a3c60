"""The README's "Use what you trained" path, run once per test session as written
(`readme_run`): the tests of `jaxkd evaluate`, `export`, `report` and `predict` read it."""

import sys

import pytest

from tests.cli.helpers import README_PREFIX, _run, cli, readme_commands


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory):
    """Runs the README's commands as written, /tmp/jaxkd_use* moved under a tmp folder."""
    root = tmp_path_factory.mktemp("use")
    outputs = {}
    for argv in readme_commands():
        argv = [a.replace(README_PREFIX, str(root / "jaxkd_use")) for a in argv]
        if argv[0] == "jaxkd":
            done = cli(*argv[1:])
        else:
            assert argv[:2] == ["python", "-m"], argv
            done = _run([sys.executable, *argv[1:]])
        outputs[argv[1] if argv[0] == "jaxkd" else argv[2]] = done.stdout
    return root, outputs
