"""The README's code and commands stay true."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_readme_python_snippets_run():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_test_command_is_the_ci_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = "python -m pytest -n 2 -q tests"
    assert command in readme and command in ci


def test_readme_quickstart_config_exists():
    readme = (REPO / "README.md").read_text()
    for path in re.findall(r"--config=(configs/\S+\.py)", readme):
        assert (REPO / path).is_file(), path
