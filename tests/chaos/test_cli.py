"""The command line gives an exit code and a message, never a traceback, for bad input, a
workdir of another config, and a diverged run.

Exit codes: 0 done, 1 flag parsing (absl), 2 bad input (config, data, checkpoints,
another config's workdir), 3 non-finite loss, 4 a multi-process run lost a process.
"""

import json
import subprocess

import pytest

from tests.chaos import kill_driver, tiny_config
from tests.helpers import write_tiny_npz


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("cli") / "tiny.npz")


def _cli(workdir, npz, *flags, timeout=300):
    cmd = kill_driver.command(workdir, npz) + ["--config.generations=0", *flags]
    done = subprocess.run(cmd, cwd=kill_driver.REPO, env=kill_driver.subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def _written_config(npz, **changes) -> dict:
    """The config.json that `tiny_config.py` with `changes` would write."""
    config = tiny_config.get_config()
    config.data.path = str(npz)
    config.generations = 0
    for key, value in changes.items():
        node = config
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return json.loads(config.to_json())


def test_workdir_of_another_config_is_refused_then_overridden_then_diverges(npz, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(_written_config(
        npz, **{"schedule.base_lr": 0.2})))
    code, out = _cli(tmp_path, npz)
    assert code == 2, out[-3000:]
    assert "written by a different config" in out
    assert "config.schedule.base_lr: 0.2 -> 0.05" in out
    assert "--config.allow_config_change=True" in out and "Traceback" not in out

    # Overridden: the run starts; a learning rate of 1e30 makes step 2 non-finite.
    code, out = _cli(tmp_path, npz, "--config.allow_config_change=True",
                     "--config.schedule.base_lr=1e30")
    assert code == 3, out[-3000:]
    ckpt = tmp_path / "phases" / "gen0" / "ckpt"
    assert "non-finite loss or gradient at step 2 of phase 'gen0'" in out
    assert f"Last good checkpoint: {ckpt / '1'}" in out and "Traceback" not in out
    assert sorted(p.name for p in ckpt.iterdir()) == ["1"]


@pytest.mark.parametrize("flags, code, expected", [
    (("--config.model=resnet_nope",), 2, "unknown model 'resnet_nope'"),
    (("--config.tolerant_teacher.k=9", "--config.method=tolerant_teacher"), 2,
     "config.tolerant_teacher.k must be <= the number of classes (4), got 9"),
    (("--config.batch_size=abc",), 1, "--config.batch_size=abc"),
])
def test_bad_input_exits_with_a_message_not_a_traceback(npz, tmp_path, flags, code, expected):
    status, out = _cli(tmp_path / "w", npz, *flags)
    assert status == code, out[-3000:]
    assert expected in out and "Traceback" not in out


def test_missing_data_file_is_named(npz, tmp_path):
    status, out = _cli(tmp_path / "w", tmp_path / "nowhere.npz")
    assert status == 2 and str(tmp_path / "nowhere.npz") in out and "Traceback" not in out
