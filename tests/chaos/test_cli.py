"""The command line gives an exit code and a message, never a traceback, for bad input, a
workdir of another config, and a diverged run.

Exit codes: 0 done, 1 flag parsing (absl), 2 bad input (config, data, checkpoints,
another config's workdir), 3 non-finite loss, 4 a multi-process run lost a process.
"""

import json
import subprocess

import pytest

from tests.chaos import kill_driver, tiny_config
from tests.helpers import set_fields, write_tiny_npz


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
    return json.loads(set_fields(config, **changes).to_json())


def test_workdir_of_another_config_is_refused_then_overridden_then_diverges(npz, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(_written_config(
        npz, **{"schedule.base_lr": 0.2})))
    # A phase of that config had begun (a checkpoint on disk): only then is a change refused.
    (tmp_path / "phases" / "earlier" / "final" / "1").mkdir(parents=True)
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
    assert "non-finite loss, gradient or update at step 2 of phase 'gen0'" in out
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


def test_override_of_a_missing_field_is_one_line_with_the_nearest_fields(npz, tmp_path):
    code, out = _cli(tmp_path, npz, "--config.learning_rate=0.1")
    assert code == 2, out[-3000:]
    assert "--config.learning_rate: the config has no such field" in out
    assert "config.schedule.base_lr" in out and "Traceback" not in out
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_workdir_naming_an_existing_file_is_refused(npz, tmp_path):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    code, out = _cli(target, npz)
    assert code == 2 and "is an existing file, not a folder" in out, out[-3000:]
    assert "Traceback" not in out and target.read_text() == "keep me"


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mounts a small tmpfs (root only; CI runs as root); yields mount(options) -> path."""
    mounted = []

    def mount(options: str) -> "pathlib.Path":
        path = tmp_path / f"mnt{len(mounted)}"
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")
        mounted.append(path)
        return path
    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_workdir_is_an_environment_error(npz, tmp_path, mount_tmpfs):
    """A new run and a finished one on a read-only disk: exit 5, one line, no traceback."""
    ro = mount_tmpfs("ro,size=1m")
    code, out = _cli(ro / "w", npz)
    assert code == 5, out[-3000:]
    assert "Read-only file system" in out and "Traceback" not in out
    disk = mount_tmpfs("size=16m")
    code, out = _cli(disk / "done", npz)                 # a finished run ...
    assert code == 0, out[-3000:]
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    code, out = _cli(disk / "done", npz)                 # ... then made read-only
    assert code == 5, out[-3000:]
    assert "Read-only file system" in out and "Traceback" not in out


def test_full_disk_is_an_environment_error_and_resumes(npz, tmp_path, mount_tmpfs):
    """The workdir on a 2 MB disk: exit 5 (not 2, the bad-input code) with one line, no
    orbax traceback; with room again the same command resumes and finishes."""
    small = mount_tmpfs("size=2m")
    code, out = _cli(small / "w", npz, "--config.keep_checkpoints=20",
                     "--config.generations=2")
    assert code == 5, out[-3000:]
    assert "No space left on device" in out and "free some space" in out
    assert "Traceback" not in out
    subprocess.run(["mount", "-o", "remount,size=64m", str(small)], capture_output=True)
    code, out = _cli(small / "w", npz, "--config.keep_checkpoints=20",
                     "--config.generations=2")
    assert code == 0, out[-3000:]


def test_ctrl_c_is_one_line_and_the_run_resumes(npz, tmp_path):
    import signal
    import time
    cmd = kill_driver.command(tmp_path / "w", npz) + ["--config.generations=0"]
    proc = subprocess.Popen(cmd, cwd=kill_driver.REPO, env=kill_driver.subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt = tmp_path / "w" / "phases" / "gen0" / "ckpt"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not (
            ckpt.is_dir() and any(p.name.isdigit() for p in ckpt.iterdir())):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted; rerun the same command to resume" in out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    code, out = _cli(tmp_path / "w", npz)
    assert code == 0, out[-3000:]
