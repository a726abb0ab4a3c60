"""jaxkd.cli.configs, the `--config=NAME` resolver: shipped configs by name from a checkout
or an installed package (the wheel ships configs/ as jaxkd/configs/)."""

import pytest

from jaxkd.cli import configs
from tests.cli.helpers import REPO


def test_config_names_resolve_without_a_checkout(tmp_path, monkeypatch):
    from jaxkd.cli import configs
    assert configs.resolve_config_flag(["--config=quickstart", "--workdir=w"]) == \
        [f"--config={REPO / 'configs' / 'quickstart.py'}", "--workdir=w"]
    monkeypatch.chdir(tmp_path)                  # no ./configs: the package's copy
    assert configs.resolve("sd_resnet56") == str(configs.PACKAGE_CONFIGS / "sd_resnet56.py")
    assert configs.resolve("configs/sd_resnet56.py") == \
        str(configs.PACKAGE_CONFIGS / "sd_resnet56.py")
    assert configs.resolve("no_such_config") is None


def test_the_wheel_ships_the_top_level_configs(tmp_path):
    """A built wheel holds configs/*.py as jaxkd/configs/ (one copy in the repository)."""
    import subprocess
    import sys
    import zipfile
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode:      # no `wheel` package for --no-build-isolation: with isolation
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                               "-w", str(tmp_path), str(REPO)],
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("jaxkd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {f"jaxkd/configs/{p.name}" for p in (REPO / "configs").glob("*.py")}
    assert top <= names and "jaxkd/cli/__init__.py" in names
    # Every package of the source tree (pyproject lists them one by one) and every module.
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "jaxkd").rglob("*.py")}
    assert source <= names, sorted(source - names)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'jaxkd = "jaxkd.main:run_main"' in pyproject


def test_names_are_the_shipped_configs_without_private_modules(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mine.py").write_text("")
    (tmp_path / "configs" / "_helper.py").write_text("")
    monkeypatch.chdir(tmp_path)                  # ./configs of the current directory too
    names = configs.names()
    assert "mine" in names and "_helper" not in names and "quickstart" in names
    assert names == sorted(names)
    assert configs.resolve("mine") == str(tmp_path / "configs" / "mine.py")
    assert configs.resolve("_helper") is None


def test_resolve_keeps_an_existing_file_and_the_argument_suffix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "own.py"
    own.write_text("")
    assert configs.resolve(str(own)) == str(own)
    assert configs.resolve("quickstart.py") == str(configs.PACKAGE_CONFIGS / "quickstart.py")
    assert configs.resolve("quickstart:arg") == \
        f"{configs.PACKAGE_CONFIGS / 'quickstart.py'}:arg"
    assert configs.resolve("elsewhere/quickstart.py") is None   # a path, not a name


def test_resolve_config_flag_both_spellings_and_stops_at_double_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = str(configs.PACKAGE_CONFIGS / "quickstart.py")
    assert configs.resolve_config_flag(["--config", "quickstart", "-x"]) == \
        ["--config", path, "-x"]
    assert configs.resolve_config_flag(["--", "--config=nothing"]) == ["--", "--config=nothing"]
    assert configs.resolve_config_flag(["--config.num_epochs=2"]) == ["--config.num_epochs=2"]


def test_a_config_that_names_nothing_is_one_line_and_exit_code_2(capsys):
    with pytest.raises(SystemExit) as info:
        configs.resolve_config_flag(["--config=no_such_config"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("FATAL --config=no_such_config: no such file and no shipped config")
    assert "quickstart" in err and err.count("\n") == 1


def test_load_config_source_loads_the_module(tmp_path):
    import sys
    path = tmp_path / "cfg_mod.py"
    path.write_text("VALUE = 7\ndef get_config():\n    return VALUE\n")
    module = configs.load_config_source("jaxkd_test_cfg_mod", str(path))
    try:
        assert module.get_config() == 7 and sys.modules["jaxkd_test_cfg_mod"] is module
    finally:
        sys.modules.pop("jaxkd_test_cfg_mod", None)
    path.write_text("raise RuntimeError('broken config')\n")
    with pytest.raises(RuntimeError, match="broken config"):
        configs.load_config_source("jaxkd_test_cfg_broken", str(path))
    assert "jaxkd_test_cfg_broken" not in sys.modules
