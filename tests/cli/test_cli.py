"""jaxkd.cli's dispatcher (`jaxkd <command>`): the overview of `jaxkd --help`, the
subcommands, `train` as the default, `--config=NAME` and `--smoke`; and the README's
train -> evaluate -> export -> predict path as the commands it lists."""

import re

import pytest

from jaxkd import cli as cli_lib
from tests.cli.helpers import REPO, cli, readme_commands


def test_readme_path_is_the_four_commands():
    commands = readme_commands()
    assert [c[1] for c in commands if c[0] == "jaxkd"] == \
        ["train", "evaluate", "export", "predict"]
    assert "--config=configs/quickstart.py" in commands[0]
    assert {"--config.num_epochs=1", "--config.generations=0"} <= set(commands[0])


def test_help_lists_commands_methods_models_and_configs():
    from jaxkd import models, plans
    from jaxkd.cli import configs
    for args in (("--help",), ()):
        done = cli(*args)
        text = " ".join(done.stdout.split())
        for word in ["train", "grid", "report", "evaluate", "export", "predict",
                     "show-config",
                     *plans.PLANS, *models.list_models(), *configs.names()]:
            assert re.search(rf"(^|[\s,]){re.escape(word)}([\s,]|$)", text), word
    assert "sd_resnet56" in configs.names() and "quickstart" in configs.names()
    unknown = cli("frobnicate", check=False)
    assert unknown.returncode == 2 and "show-config" in unknown.stderr


def test_smoke_flag_is_the_smoke_field():
    from jaxkd import cli
    argv = cli.dispatch(["jaxkd", "train", "--config=configs/sd_resnet56.py", "--smoke",
                         "--workdir=/tmp/x"])
    assert "--config.smoke=True" in argv and "--smoke" not in argv


def test_train_is_the_default_command_and_config_names_resolve(monkeypatch):
    monkeypatch.chdir(REPO)
    path = f"--config={REPO / 'configs' / 'quickstart.py'}"
    assert cli_lib.dispatch(["jaxkd", "train", "--config=quickstart", "--workdir=w"]) == \
        ["jaxkd", path, "--workdir=w"]
    assert cli_lib.dispatch(["jaxkd", "--config=quickstart", "--workdir=w",
                             "--config.num_epochs=1"]) == \
        ["jaxkd", path, "--workdir=w", "--config.num_epochs=1"]


@pytest.mark.parametrize("argv", [["jaxkd"], *[["jaxkd", w] for w in cli_lib.HELP_WORDS]])
def test_no_command_or_a_help_word_prints_the_overview(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli_lib.dispatch(argv)
    assert info.value.code == 0
    assert capsys.readouterr().out == cli_lib.overview() + "\n"


def test_overview_lists_every_command_with_its_summary():
    text = cli_lib.overview()
    assert text.startswith("usage: jaxkd <command> [flags]")
    for name in cli_lib.COMMANDS:
        assert re.search(rf"^  {re.escape(name)}\s+\S", text, re.M), name
    assert "example: jaxkd train --config=quickstart" in text


def test_an_unknown_command_is_one_line_and_exit_code_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli_lib.dispatch(["jaxkd", "trian", "--config=quickstart"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("FATAL unknown command 'trian'") and "show-config" in err


def test_a_subcommand_runs_its_module_and_exits_with_its_code(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as info:
        cli_lib.dispatch(["jaxkd", "show-config", "quickstart"])
    assert info.value.code == 0
    assert "model = 'resnet8'" in capsys.readouterr().out
