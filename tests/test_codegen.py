"""The one exec() generator: functions it makes work, and their tracebacks show the source."""

from __future__ import annotations

import traceback

import pytest

from querykit.codegen import generate


def test_generated_functions_run_with_values_from_the_namespace() -> None:
    namespace = generate("double", ["def f(x):", "    return k * x"], {"k": 2})
    assert namespace["f"](21) == 42


def test_a_traceback_through_generated_code_shows_the_generated_line() -> None:
    namespace = generate("divide", "def f(x):\n    return 1 / x\n", {})
    with pytest.raises(ZeroDivisionError) as info:
        namespace["f"](0)
    text = "".join(traceback.format_exception(info.value))
    assert "querykit generated" in text and ": divide>" in text
    assert "return 1 / x" in text  # the line itself, from linecache


def test_each_generation_gets_its_own_file_name() -> None:
    a = generate("same", "def f():\n    raise KeyError('a')\n", {})["f"]
    b = generate("same", "def f():\n    raise KeyError('b')\n", {})["f"]
    assert a.__code__.co_filename != b.__code__.co_filename
