"""Tests for jaxkd.validation: each helper's accepted values, refusals and exact messages."""
import re

import numpy as np
import pytest

from jaxkd import validation as v


def raises(message):
    """`pytest.raises(ValueError)` matching the whole message literally."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


def test_fail_names_the_field_and_the_value():
    with raises("config.x must be odd, got 2"):
        v.fail("config.x", "must be odd", 2)
    with raises("config.x must be odd, got 'two'"):
        v.fail("config.x", "must be odd", "two")
    with raises("config.x is required"):
        v.fail("config.x", "is required")
    with raises("config.x must be set, got None"):      # None is a value, not "no value"
        v.fail("config.x", "must be set", None)


def test_check_raises_the_message_unless_the_condition_holds():
    v.check(True, "unused")
    v.check([1], "unused")
    with raises("config.a=1 needs config.b"):
        v.check(False, "config.a=1 needs config.b")
    with raises("empty"):
        v.check([], "empty")


def test_require_int_accepts_integers_and_returns_an_int():
    assert v.require_int(3, "f") == 3
    out = v.require_int(np.int64(5), "f", low=0)
    assert out == 5 and type(out) is int
    assert v.require_int(0, "f", low=0) == 0
    assert v.require_int(10, "f", low=1, high=10) == 10
    assert v.require_int(-7, "f") == -7


@pytest.mark.parametrize("value,kwargs,message", [
    (0, dict(low=1), "config.snapshot.cycles must be an integer >= 1, got 0"),
    (-1, dict(low=0), "config.snapshot.cycles must be an integer >= 0, got -1"),
    (2.0, dict(low=1), "config.snapshot.cycles must be an integer >= 1, got 2.0"),
    (None, dict(low=1), "config.snapshot.cycles must be an integer >= 1, got None"),
    ("3", dict(low=1), "config.snapshot.cycles must be an integer >= 1, got '3'"),
    (True, dict(low=1), "config.snapshot.cycles must be an integer >= 1, got True"),
    (False, dict(low=0), "config.snapshot.cycles must be an integer >= 0, got False"),
    (np.bool_(True), dict(low=0),
     f"config.snapshot.cycles must be an integer >= 0, got {np.bool_(True)!r}"),
    (2.5, {}, "config.snapshot.cycles must be an integer, got 2.5"),
    (11, dict(high=10), "config.snapshot.cycles must be an integer <= 10, got 11"),
    (11, dict(low=2, high=10), "config.snapshot.cycles must be an integer in [2, 10], got 11"),
    (1, dict(low=2, high=10), "config.snapshot.cycles must be an integer in [2, 10], got 1"),
])
def test_require_int_refusals(value, kwargs, message):
    with raises(message):
        v.require_int(value, "config.snapshot.cycles", **kwargs)


def test_require_number_accepts_numbers_and_returns_a_float():
    for value in (0, 1, 0.5, np.float32(0.25), np.int64(3)):
        out = v.require_number(value, "f", low=0)
        assert out == float(value) and type(out) is float
    assert v.require_number(1.0, "f", low=0, high=1) == 1.0       # closed bounds
    assert v.require_number(0.0, "f", low=0, high=1) == 0.0
    assert v.require_number(-3.5, "f") == -3.5                    # no bounds
    assert v.require_number(float("inf"), "f", low=0, finite=False) == float("inf")


@pytest.mark.parametrize("value,kwargs,message", [
    (0.0, dict(low=0, low_open=True), "lr must be a finite number > 0, got 0.0"),
    (-1, dict(low=0), "lr must be a finite number >= 0, got -1"),
    (2.0, dict(high=1), "lr must be a finite number <= 1, got 2.0"),
    (1.0, dict(high=1, high_open=True), "lr must be a finite number < 1, got 1.0"),
    (1, dict(low=0, high=1, high_open=True), "lr must be a finite number in [0, 1), got 1"),
    (0, dict(low=0, high=1, low_open=True), "lr must be a finite number in (0, 1], got 0"),
    (1.5, dict(low=0.5, high=1.25), "lr must be a finite number in [0.5, 1.25], got 1.5"),
    (float("inf"), dict(low=0), "lr must be a finite number >= 0, got inf"),
    (float("-inf"), {}, "lr must be a finite number, got -inf"),
    (float("nan"), dict(low=0), "lr must be a finite number >= 0, got nan"),
    (10**400, dict(low=0), f"lr must be a finite number >= 0, got {10**400!r}"),
    ("0.1", dict(low=0), "lr must be a finite number >= 0, got '0.1'"),
    (None, {}, "lr must be a finite number, got None"),
    (True, dict(low=0), "lr must be a finite number >= 0, got True"),
    (False, dict(low=0), "lr must be a finite number >= 0, got False"),
    (np.bool_(False), {}, f"lr must be a finite number, got {np.bool_(False)!r}"),
    ([0.1], {}, "lr must be a finite number, got [0.1]"),
])
def test_require_number_refusals(value, kwargs, message):
    with raises(message):
        v.require_number(value, "lr", **kwargs)


@pytest.mark.parametrize("value,kwargs,message", [
    (0.0, dict(low=0, low_open=True), "temperature must be > 0, got 0.0"),
    (1.0, dict(low=0, high=1, high_open=True), "temperature must be in [0, 1), got 1.0"),
    (float("nan"), dict(low=0), "temperature must be >= 0, got nan"),
    (float("nan"), {}, "temperature must be a number (not NaN), got nan"),
    ("2", dict(low=0), "temperature must be a real number, got '2'"),
    (True, dict(low=0), "temperature must be a real number, got True"),
    (float("-inf"), dict(low=0), "temperature must be >= 0, got -inf"),
])
def test_require_number_refusals_when_infinities_are_allowed(value, kwargs, message):
    with raises(message):
        v.require_number(value, "temperature", finite=False, **kwargs)


def test_require_choice():
    assert v.require_choice("sgd", "f", ("sgd", "adamw")) == "sgd"
    assert v.require_choice(2, "f", [1, 2]) == 2
    with raises("config.dtype must be one of ('float32', 'bfloat16'), got 'fp16'"):
        v.require_choice("fp16", "config.dtype", ("float32", "bfloat16"))
    with raises("config.schedule.name must be one of ['constant', 'step'], got None"):
        v.require_choice(None, "config.schedule.name", ["constant", "step"])
    with raises("f must be one of {'a'}, got ['a']"):       # unhashable: refused, no TypeError
        v.require_choice(["a"], "f", {"a"})
    with raises("f must be one of ('a', 'b'), got array([1, 2])"):   # no ambiguous truth value
        v.require_choice(np.array([1, 2]), "f", ("a", "b"))


def test_require_bool():
    assert v.require_bool(True, "f") is True
    assert v.require_bool(False, "f") is False
    out = v.require_bool(np.bool_(True), "f")
    assert out is True
    for value in (1, 0, 1.0, "True", None, np.int64(1)):
        with raises(f"config.loss.scale_by_t2 must be a bool (True or False), got {value!r}"):
            v.require_bool(value, "config.loss.scale_by_t2")


def test_predicates_do_not_count_bools_as_numbers():
    assert v.is_int(3) and v.is_int(np.int32(3)) and not v.is_int(True)
    assert not v.is_int(np.bool_(True)) and not v.is_int(3.0)
    assert v.is_number(3) and v.is_number(2.5) and v.is_number(np.float32(1))
    assert not v.is_number(True) and not v.is_number("1") and not v.is_number(None)
    assert v.is_bool(True) and v.is_bool(np.bool_(False)) and not v.is_bool(1)


def test_interval_texts():
    assert v.interval() == ""
    assert v.interval(0) == ">= 0"
    assert v.interval(0, low_open=True) == "> 0"
    assert v.interval(high=1) == "<= 1"
    assert v.interval(high=1, high_open=True) == "< 1"
    assert v.interval(0, 1, high_open=True) == "in [0, 1)"
    assert v.interval(0.0, 1.0, low_open=True, fmt=lambda x: f"{x:g}") == "in (0, 1]"


def test_validation_does_not_import_jax():
    import subprocess
    import sys
    code = "import sys, jaxkd.validation; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
