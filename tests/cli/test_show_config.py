"""jaxkd.cli.show_config (`jaxkd show-config`): the resolved fields of a config file or
shipped name, and the plan it runs."""

import json
import sys

import pytest

from jaxkd.cli import show_config
from jaxkd.config import default_config
from tests.cli.helpers import REPO, cli


def test_show_config_by_path_and_by_name():
    by_path = cli("show-config", "configs/sd_resnet56.py").stdout
    by_name = cli("show-config", "sd_resnet56", "--config.num_epochs=8").stdout
    assert "model = 'resnet56'" in by_path and "num_epochs = 8" in by_name
    assert "plan (snapshot_distillation" in by_path and "cycle1" in by_path
    assert by_path.splitlines()[2:6] == by_name.splitlines()[2:6]
    missing = cli("show-config", "no_such_config", check=False)
    assert missing.returncode == 2 and "sd_resnet56" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_show_config_names_every_field_and_the_plan(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    argv = ["jaxkd show-config", "quickstart", "--config.generations=2"]
    # The overrides come from run()'s own arguments, not from sys.argv.
    monkeypatch.setattr(sys, "argv", ["pytest"])
    assert show_config.run(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"# {REPO / 'configs' / 'quickstart.py'}"
    assert out[1].startswith("# Quickstart: a ResNet-8 teacher")
    for line in ("method = 'born_again'", "model = 'resnet8'", "generations = 2",
                 "schedule.base_lr = 0.1", "data.source = 'sample'"):
        assert line in out, line
    plan = out[out.index("plan (born_again, 3 phases):"):]
    assert [line.split()[1] for line in plan[1:]] == ["gen0", "gen1", "gen2"]
    assert "teacher=gen0" in plan[2] and "loss=born_again" in plan[2]
    assert "teacher=-" in plan[1] and "init=fresh" in plan[1]


def test_show_config_json_is_the_config(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert show_config.run(["jaxkd show-config", "quickstart", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["method"], shown["model"], shown["num_epochs"]) == ("born_again",
                                                                      "resnet8", 8)


def test_show_config_without_a_config_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        show_config.run(["jaxkd show-config"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("FATAL name a config")


def test_flatten_and_plan_lines():
    assert show_config.flatten({"a": 1, "b": {"c": 2, "d": {}}, "e": {"f": {"g": 3}}}) == [
        ("a", 1), ("b.c", 2), ("b.d", {}), ("e.f.g", 3)]
    c = default_config()
    c.method = "no_such_method"
    (line,) = show_config.plan_lines(c)
    assert line.startswith("plan: not buildable: ValueError: config.method must be one of")
    c.method = "baseline"
    assert show_config.plan_lines(c)[0] == "plan (baseline, 1 phases):"
