"""metrics.jsonl and TensorBoard: records appended, records dropped after a step on resume,
a line cut by a kill skipped, any other bad line named with its file and number."""
import json

import jax
import pytest

from jaxkd.engine import writer as writer_lib


def _lines(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_records_are_appended_as_sorted_json_lines(tmp_path):
    w = writer_lib.MetricWriter(tmp_path, tensorboard=False)
    w.write(dict(phase="gen0", kind="train", step=2, loss=1.5))
    w.write(dict(phase="gen0", kind="eval", step=4, top1=0.25))
    w.close()
    text = (tmp_path / "metrics.jsonl").read_text()
    assert text.splitlines()[0] == '{"kind": "train", "loss": 1.5, "phase": "gen0", "step": 2}'
    again = writer_lib.MetricWriter(tmp_path, tensorboard=False)
    again.write(dict(phase="gen1", kind="train", step=1, loss=0.5))
    assert [(r["phase"], r["step"]) for r in _lines(tmp_path)] == \
        [("gen0", 2), ("gen0", 4), ("gen1", 1)]
    assert not (tmp_path / "tensorboard").exists()


def test_drop_after_forgets_newer_steps_of_one_phase_only(tmp_path):
    w = writer_lib.MetricWriter(tmp_path, tensorboard=False)
    assert w.drop_after("gen0", 0) == 0                  # nothing written yet
    for phase, step in (("gen0", 2), ("gen0", 4), ("gen1", 6), ("gen0", 6), ("gen0", 8)):
        w.write(dict(phase=phase, kind="train", step=step))
    assert w.drop_after("gen0", 4) == 8
    assert [(r["phase"], r["step"]) for r in _lines(tmp_path)] == \
        [("gen0", 2), ("gen0", 4), ("gen1", 6)]
    assert w.drop_after("gen0", 4) == 0
    assert not list(tmp_path.glob(".metrics.jsonl.*"))   # atomic rewrite, no temp file left


def test_a_torn_last_line_is_skipped_and_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "phase": "gen0", "step": 2}\n{"kind": "tr')
    assert [r["step"] for _, r in writer_lib.read_records(path)] == [2]
    w = writer_lib.MetricWriter(tmp_path, tensorboard=False)   # accepted at start
    assert w.drop_after("gen0", 10) == 0
    assert path.read_text() == '{"kind": "train", "phase": "gen0", "step": 2}\n'


@pytest.mark.parametrize("line, problem", [
    ('{"kind": "train", "phase": "gen0"}', "no 'step'"),
    ('{"kind": "train", "phase": "gen0", "step": -1}', "'step' is -1, not a non-negative"),
    ('{"kind": "train", "phase": 3, "step": 1}', "'phase' is 3, not a string"),
    ('[1, 2]', "a JSON list, not an object"),
    ('{"kind": "tra', r"not JSON \("),
])
def test_a_damaged_middle_line_raises_naming_the_file_and_line(tmp_path, line, problem):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "phase": "gen0", "step": 2}\n' + line +
                    '\n{"kind": "eval", "phase": "gen0", "step": 4}\n')
    with pytest.raises(ValueError, match=rf"metrics\.jsonl, line 2: {problem}.*mv "):
        writer_lib.read_records(path)
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 2"):
        writer_lib.MetricWriter(tmp_path, tensorboard=False)   # refused before any compile


def test_a_process_other_than_0_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    w = writer_lib.MetricWriter(tmp_path)
    w.write(dict(phase="gen0", kind="train", step=1, loss=1.0))
    assert w.drop_after("gen0", 0) == 0
    w.close()
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "tensorboard").exists()


def test_scalars_are_mirrored_to_tensorboard_on_first_write(tmp_path):
    w = writer_lib.MetricWriter(tmp_path)
    assert not (tmp_path / "tensorboard").exists()          # no event file before a scalar
    w.write(dict(phase="gen0", kind="train", step=3, loss=0.5, note="text"))
    w.flush()
    w.close()
    assert list((tmp_path / "tensorboard").iterdir())
