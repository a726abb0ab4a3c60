"""The workdir on disk: its layout, atomic writes, the RCO route, and what a phase holds.
The lock (one writer per workdir) is tested in tests/chaos/test_lock.py."""
import json
import os
import pathlib

import pytest

from jaxkd import workdir as workdir_lib


def test_layout_names_every_file_and_folder(tmp_path):
    w = tmp_path
    assert workdir_lib.config_path(w) == w / "config.json"
    assert workdir_lib.results_path(str(w)) == w / "results.json"
    assert workdir_lib.metrics_path(w) == w / "metrics.jsonl"
    assert workdir_lib.provenance_path(w) == w / "provenance.jsonl"
    assert workdir_lib.route_path(w) == w / "rco_route.json"
    assert workdir_lib.phase_dir(w, "gen1") == w / "phases" / "gen1"
    layout = workdir_lib.phase(w, "gen1")
    assert isinstance(layout, workdir_lib.PhaseLayout)
    assert (layout.ckpt, layout.final, layout.anchors, layout.damaged) == tuple(
        w / "phases" / "gen1" / name for name in ("ckpt", "final", "anchors", "damaged"))
    assert layout.anchor(3) == w / "phases" / "gen1" / "anchors" / "3"
    assert workdir_lib.lock_path(w) == w / ".lock"
    assert workdir_lib.lock_path(w, 2) == w / ".lock.2"


def test_write_json_atomic_writes_sorted_indented_json_and_no_temp_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    workdir_lib.write_json_atomic(path, {"b": 1, "a": [1, 2]})
    assert path.read_text() == json.dumps({"a": [1, 2], "b": 1}, indent=2, sort_keys=True)
    assert workdir_lib.read_json(path) == {"a": [1, 2], "b": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    workdir_lib.write_text_atomic(path, "new text")
    assert path.read_text() == "new text" and len(list(tmp_path.iterdir())) == 1


def test_a_process_other_than_0_writes_nothing(tmp_path):
    path = tmp_path / "results.json"
    workdir_lib.write_json_atomic(path, {"a": 1}, process_index=1)
    workdir_lib.write_text_atomic(path, "x", process_index=3)
    workdir_lib.remember_anchor(tmp_path, 0, 5, process_index=1)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text("old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        workdir_lib.write_text_atomic(path, "new")
    assert path.read_text() == "old"


def test_route_is_remembered_by_plan_index(tmp_path):
    assert workdir_lib.read_route(tmp_path) == {}
    workdir_lib.remember_anchor(tmp_path, 0, 3)
    workdir_lib.remember_anchor(tmp_path, 2, 7)
    workdir_lib.remember_anchor(tmp_path, 0, 4)
    assert workdir_lib.read_route(tmp_path) == {"0": 4, "2": 7}
    assert json.loads(workdir_lib.route_path(tmp_path).read_text()) == {"0": 4, "2": 7}


def test_has_final_and_begun(tmp_path):
    phase = workdir_lib.phase(tmp_path, "gen0")
    assert not phase.has_final() and not phase.begun() and not workdir_lib.begun(tmp_path)
    phase.final.mkdir(parents=True)
    (phase.final / "tmp-orbax").mkdir()                   # not a committed step folder
    assert not phase.has_final() and not workdir_lib.has_final(phase.path)
    assert phase.begun()            # the phase has written something (a save under way)
    (phase.final / "12").mkdir()
    assert phase.has_final() and workdir_lib.has_final(str(phase.path))
    other = workdir_lib.phase(tmp_path, "gen1")
    (other.anchors / "1").mkdir(parents=True)
    assert other.begun() and not other.has_final() and workdir_lib.begun(tmp_path)
    empty = workdir_lib.phase(tmp_path / "w2", "gen0")
    empty.ckpt.mkdir(parents=True)
    assert not empty.begun() and not workdir_lib.begun(tmp_path / "w2")


def test_is_workdir_needs_config_json_and_phases(tmp_path):
    assert not workdir_lib.is_workdir(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert not workdir_lib.is_workdir(tmp_path)
    (tmp_path / "phases").mkdir()
    assert workdir_lib.is_workdir(pathlib.Path(tmp_path))
    (tmp_path / "config.json").unlink()
    (tmp_path / "config.json").mkdir()
    assert not workdir_lib.is_workdir(tmp_path)


def test_read_holder_of_a_lock_file(tmp_path):
    path = tmp_path / ".lock"
    assert workdir_lib.read_holder(path) is None
    path.write_text("")
    assert workdir_lib.read_holder(path) is None
    path.write_text("[1, 2]")
    assert workdir_lib.read_holder(path) is None
    path.write_text('{"pid": 12, "host": "h"}')
    assert workdir_lib.read_holder(path) == {"pid": 12, "host": "h"}
