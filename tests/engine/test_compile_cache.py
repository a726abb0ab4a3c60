"""JAX's persistent compilation cache: its default folder, the user's own settings, the
opt-out, and an unwritable folder."""
import os

import jax
import pytest

from jaxkd.engine import compile_cache


@pytest.fixture
def jax_updates(monkeypatch):
    calls = {}
    monkeypatch.setattr(jax.config, "update", lambda name, value: calls.__setitem__(
        name, value))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)
    monkeypatch.delenv(compile_cache.OPT_OUT_ENV, raising=False)
    monkeypatch.setattr(compile_cache, "_configured_dir", lambda: None)
    return calls


def test_compile_cache_default_folder(jax_updates, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = compile_cache.enable()
    assert folder == str(tmp_path / "jaxkd" / "jax_compilation_cache")
    assert os.path.isdir(folder)
    assert jax_updates == {"jax_compilation_cache_dir": folder,
                           "jax_persistent_cache_min_compile_time_secs":
                               compile_cache.MIN_COMPILE_TIME_S}


def test_compile_cache_given_folder(jax_updates, tmp_path):
    assert compile_cache.enable(str(tmp_path / "c")) == str(tmp_path / "c")
    assert jax_updates["jax_compilation_cache_dir"] == str(tmp_path / "c")


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_compile_cache_opt_out(jax_updates, monkeypatch, tmp_path, value):
    monkeypatch.setenv(compile_cache.OPT_OUT_ENV, value)
    assert compile_cache.enable(str(tmp_path / "c")) is None
    assert jax_updates == {} and not (tmp_path / "c").exists()


def test_compile_cache_keeps_the_users_own_setting(jax_updates, monkeypatch, tmp_path):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache.enable() == str(tmp_path / "mine")
    assert jax_updates == {}
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setattr(compile_cache, "_configured_dir", lambda: str(tmp_path / "cfg"))
    assert compile_cache.enable(str(tmp_path / "c")) == str(tmp_path / "cfg")
    assert jax_updates == {}


def test_compile_cache_keeps_the_users_threshold(jax_updates, monkeypatch, tmp_path):
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "3")
    compile_cache.enable(str(tmp_path / "c"))
    assert "jax_persistent_cache_min_compile_time_secs" not in jax_updates


def test_compile_cache_unwritable_folder_is_a_warning(jax_updates, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert compile_cache.enable(str(blocker / "c")) is None
    assert jax_updates == {} and "cannot create" in caplog.text
