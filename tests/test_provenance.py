"""Provenance: one record per invocation, appended to provenance.jsonl by process 0."""
import json

import jax

from jaxkd import provenance
from jaxkd import workdir as workdir_lib


def test_record_appends_one_record_per_call_and_read_returns_them(tmp_path):
    assert provenance.read(tmp_path) == []
    provenance.record(tmp_path)
    provenance.record(tmp_path)
    records = provenance.read(tmp_path)
    assert len(records) == 2
    first = records[0]
    assert {"date", "git_commit", "git_dirty", "versions", "python", "backend",
            "device_kind", "devices", "processes"} <= set(first)
    assert first["backend"] == "cpu" and first["devices"] == 4 and first["processes"] == 1
    assert first["versions"]["jax"] == jax.__version__
    lines = workdir_lib.provenance_path(tmp_path).read_text().splitlines()
    assert json.loads(lines[1]) == records[1] and lines[0] == json.dumps(first, sort_keys=True)


def test_a_torn_last_line_is_skipped(tmp_path):
    path = workdir_lib.provenance_path(tmp_path)
    path.write_text('{"date": "a"}\n{"date": "b"}\n{"date": "c", "vers')
    assert provenance.read(tmp_path) == [{"date": "a"}, {"date": "b"}]


def test_only_process_0_records(tmp_path, monkeypatch):
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    provenance.record(tmp_path)
    assert not workdir_lib.provenance_path(tmp_path).exists()
    assert provenance.read(tmp_path) == []


def test_code_version_of_this_checkout():
    version = provenance.code_version()
    if (provenance._REPO / ".git").exists():
        assert len(version["git_commit"]) == 40 and isinstance(version["git_dirty"], bool)
    else:
        assert version == {"git_commit": None, "git_dirty": None}
    assert provenance._version("no-such-package-jaxkd") is None
