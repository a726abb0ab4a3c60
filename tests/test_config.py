"""jaxkd.config: the schema's fields and their checks (`check_known_fields`,
`validate_engine_fields`), retired fields (`migrate`, `from_saved`), `config_diff` of a
resume, and the names for override suggestions (`field_paths`, `nearest_fields`)."""

import json
import pathlib

import pytest

from jaxkd import config as config_lib, plans
from tests.helpers import tiny_config, write_tiny_npz


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


# -- known and retired fields -----------------------------------------------------------


def test_retired_fields_name_their_replacement():
    """One field per value: the RCO teacher is config.teacher.model, an SD cycle's peak is
    config.schedule.base_lr; a config still setting the old field is told so."""
    from jaxkd import config as config_lib
    for field, replacement in (("rco.teacher_model", "config.teacher.model"),
                               ("snapshot.peak_lr", "config.schedule.base_lr")):
        c = config_lib.default_config()
        group, name = field.split(".")
        with c.unlocked():
            c[group][name] = "resnet56" if name == "teacher_model" else 0.2
        with pytest.raises(ValueError, match=f"config.{field} was retired: .*{replacement}"):
            config_lib.check_known_fields(c)


def test_a_workdir_config_with_retired_fields_reads_as_the_run_it_made():
    """config.json written before the fields were retired: migrate() moves them, so
    analysis rebuilds the same plan and a resume sees no difference."""
    import json
    from jaxkd import config as config_lib, plans
    sd = json.loads(config_lib.default_config().to_json())
    sd.update(method="snapshot_distillation")
    sd["snapshot"]["peak_lr"] = 0.2
    new = config_lib.from_saved(sd)
    assert "peak_lr" not in new.snapshot and new.schedule.base_lr == 0.2
    assert dict(plans.build(new)[0].schedule)["base_lr"] == 0.2
    rco = json.loads(config_lib.default_config().to_json())
    rco.update(method="rco", num_epochs=160)
    rco["rco"]["teacher_model"] = "resnet56"
    moved = config_lib.from_saved(rco)
    assert moved.teacher.model == "resnet56" and plans.build(moved)[0].model == "resnet56"
    want = config_lib.default_config()
    want.method, want.teacher.model, want.num_epochs = "rco", "resnet56", 160
    assert config_lib.config_diff(rco, json.loads(want.to_json())) == []
    # Other methods never read snapshot.peak_lr: it is dropped, schedule.base_lr kept.
    base = json.loads(config_lib.default_config().to_json())
    base["snapshot"]["peak_lr"] = 0.7
    assert config_lib.from_saved(base).schedule.base_lr == 0.1


def test_check_known_fields_names_an_unknown_field_at_any_depth():
    c = config_lib.default_config()
    config_lib.check_known_fields(c)                        # the schema itself: fine
    with c.unlocked():
        c.data.augment.flp = True
    with pytest.raises(ValueError, match=r"config.data.augment.flp is not a known field; "
                                         r"known: \['crop_padding', 'flip'"):
        config_lib.check_known_fields(c)


def test_check_known_fields_leaves_free_form_groups_alone():
    c = config_lib.default_config()
    with c.unlocked():
        c.loss.label_smoothing = 0.1
        c.model_overrides.width = 2
        c.teacher.model_overrides.depth = 3
        c.optimizer.lr_scales.teacher = 0.5              # an empty group of the schema
    config_lib.check_known_fields(c)


def test_from_saved_completes_an_old_config_json_with_defaults():
    saved = json.loads(config_lib.default_config().to_json())
    del saved["data"]["heldout_mode"], saved["smoke"]
    saved["loss"] = {"name": "kd", "temperature": 4.0}     # free-form: taken as saved
    config = config_lib.from_saved(saved)
    assert config.data.heldout_mode == "carve" and config.smoke is False
    assert config.loss.to_dict() == {"name": "kd", "temperature": 4.0}


def test_migrate_leaves_the_saved_config_unchanged():
    saved = json.loads(config_lib.default_config().to_json())
    saved["rco"]["teacher_model"] = ""
    out = config_lib.migrate(saved)
    assert "teacher_model" not in out["rco"] and "teacher_model" in saved["rco"]
    assert out["teacher"]["model"] == ""                   # an empty old field moves nothing


# -- a resume's config diff -------------------------------------------------------------


def test_fields_added_to_the_schema_since_do_not_block_a_resume():
    """A workdir written before `data.heldout_mode` existed resumes at its default."""
    config = tiny_config(pathlib.Path("x.npz"))
    old = json.loads(config.to_json())
    del old["data"]["heldout_mode"], old["init"]
    assert config_lib.config_diff(old, json.loads(config.to_json())) == []
    config.data.heldout_mode = "sample"
    assert config_lib.config_diff(old, json.loads(config.to_json())) == [
        "config.data.heldout_mode: 'carve' -> 'sample'"]


def test_config_diff_ignores_the_resume_safe_fields():
    old = json.loads(config_lib.default_config().to_json())
    new = json.loads(config_lib.default_config().to_json())
    new.update(progress_bar=not old["progress_bar"], generations=5, log_every_steps=7)
    assert config_lib.config_diff(old, new) == []
    new["schedule"]["boundaries"] = [10]
    new["model"] = "resnet8"
    assert config_lib.config_diff(old, new) == [
        "config.model: 'resnet20' -> 'resnet8'",
        "config.schedule.boundaries: [82, 123] -> [10]"]


# -- engine fields ------------------------------------------------------------------------


@pytest.mark.parametrize("changes, field", [
    ({"init.subtrees": ("head",)}, "config.init.subtrees"),
    ({"optimizer.frozen": ("",)}, "config.optimizer.frozen must"),
    ({"teacher.checkpoint": "/x"}, "config.teacher.checkpoint"),
    ({"method": "kd"}, "config.teacher.checkpoint"),
    ({"method": "kd", "teacher.checkpoint": "/x"}, "config.loss.name"),
    ({"init.epoch": 1}, "config.init.epoch"),
    ({"init.epoch": 2, "init.checkpoint": "/x"}, "config.init.epoch"),
    ({"init.epoch": 1, "init.checkpoint": "/x", "method": "born_again"}, "config.init.epoch"),
])
def test_config_errors_name_the_field(npz, changes, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        plans.validate(tiny_config(npz, **changes))


@pytest.mark.parametrize("field, value, message", [
    ("batch_size", 0, "config.batch_size must be an integer >= 1, got 0"),
    ("seed", -1, "config.seed must be an integer >= 0, got -1"),
    ("dtype", "float16", "config.dtype must be one of"),
    ("optimizer.name", "adam", "config.optimizer.name must be one of"),
    ("optimizer.momentum", 1.0, "config.optimizer.momentum"),
    ("schedule.base_lr", 0.0, "config.schedule.base_lr"),
    ("optimizer.lr_scales", {"teacher": 0.0}, "config.optimizer.lr_scales.teacher"),
])
def test_validate_engine_fields_names_the_field(field, value, message):
    c = config_lib.default_config()
    group, _, name = field.rpartition(".")
    with c.unlocked():
        (c[group] if group else c)[name] = value
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        config_lib.validate_engine_fields(c)


def test_validate_engine_fields_of_the_defaults_pass():
    config_lib.validate_engine_fields(config_lib.default_config())


# -- field names for suggestions -------------------------------------------------------


def test_field_paths_are_dotted_and_count_empty_groups_once():
    paths = config_lib.field_paths(config_lib.default_config())
    assert len(paths) == len(set(paths))
    assert {"batch_size", "schedule.base_lr", "data.augment.flip", "model_overrides",
            "optimizer.lr_scales", "teacher.model_overrides"} <= set(paths)
    assert "schedule" not in paths and "data.augment" not in paths
    assert config_lib.field_paths(config_lib.default_config().schedule, "schedule.") == \
        [p for p in paths if p.startswith("schedule.")]


@pytest.mark.parametrize("typed, first", [
    ("schedule.baselr", "config.schedule.base_lr"),
    ("weight_decay", "config.optimizer.weight_decay"),
    ("num_epoch", "config.num_epochs"),
])
def test_nearest_fields_put_the_closest_first(typed, first):
    found = config_lib.nearest_fields(None, typed)
    assert found[0] == first and len(found) <= 3


def test_nearest_fields_by_initials_and_of_nothing_close():
    found = config_lib.nearest_fields(None, "learning_rate")
    assert found[:2] == ["config.schedule.base_lr", "config.rco.teacher_lr"]
    assert config_lib.nearest_fields(None, "zzzz") == []
    assert config_lib.nearest_fields(config_lib.default_config(), "batchsize", n=1) == [
        "config.batch_size"]


@pytest.mark.parametrize("field, value", [("schedule.base_lr", float("inf")),
                                          ("schedule.base_lr", float("nan")),
                                          ("optimizer.weight_decay", float("inf")),
                                          ("rco.teacher_lr", float("inf"))])
def test_infinite_learning_rate_or_weight_decay_is_refused(field, value):
    c = config_lib.default_config()
    group, name = field.split(".")
    c[group][name] = value
    with pytest.raises(ValueError, match=f"config.{field} must be a finite number"):
        config_lib.validate_engine_fields(c)
