"""The public API: an explicit, sorted ``__all__`` and one exception tree."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import pickle

import pytest

import eventkeep
import eventkeep.errors
import eventkeep.testing
from eventkeep import ANY, ConcurrencyError, EventkeepError

MODULES = [
    "eventkeep",
    "eventkeep.aio",
    "eventkeep.errors",
    "eventkeep.testing",
    "eventkeep.testing.aio",
]


def isort_style(name: str) -> tuple[int, str]:
    """How ruff (RUF022) sorts ``__all__``: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_has_no_duplicates(name: str) -> None:
    exported = importlib.import_module(name).__all__
    assert exported == sorted(exported, key=isort_style)
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_exists(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


def test_every_public_class_and_function_of_the_package_is_in_all() -> None:
    public = {
        name
        for name, value in vars(eventkeep).items()
        if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public - set(eventkeep.__all__) == set()


def test_every_error_derives_from_eventkeep_error() -> None:
    errors = [getattr(eventkeep.errors, name) for name in eventkeep.errors.__all__]
    assert all(issubclass(e, EventkeepError) for e in errors)


def test_every_error_is_exported_by_the_package() -> None:
    errors = [getattr(eventkeep.errors, name) for name in eventkeep.errors.__all__]
    exported = [getattr(eventkeep, n) for n in eventkeep.__all__]
    exported_errors = [v for v in exported if inspect.isclass(v) and issubclass(v, Exception)]
    assert set(exported_errors) == set(errors)


def test_the_errors_module_defines_every_exception_and_draws_the_tree() -> None:
    defined = {
        name
        for name, value in vars(eventkeep.errors).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == "eventkeep.errors"
    }
    assert defined == set(eventkeep.errors.__all__)
    doc = eventkeep.errors.__doc__ or ""
    assert all(name in doc for name in defined)


def test_errors_that_are_also_builtin_kinds_can_be_caught_as_such() -> None:
    assert issubclass(eventkeep.ValidationError, ValueError)
    assert issubclass(eventkeep.EventTooLargeError, eventkeep.ValidationError)
    assert issubclass(eventkeep.NotFoundError, LookupError)


def test_a_concurrency_error_survives_pickling_with_its_fields() -> None:
    error = ConcurrencyError("account-1", ANY, 3)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.stream_id, copy.expected, copy.actual) == ("account-1", ANY, 3)
    assert str(copy) == str(error)


def test_a_concurrency_error_message_names_stream_and_versions() -> None:
    assert str(ConcurrencyError("s", 2, 5)) == "stream 's': expected version 2, actual version 5"
    assert "expected version NO_STREAM" in str(ConcurrencyError("s", eventkeep.NO_STREAM, 5))


def test_the_version_matches_the_installed_distribution() -> None:
    assert eventkeep.__version__ == importlib.metadata.version("eventkeep")


def test_the_testing_package_exports_the_contract_base_class() -> None:
    assert inspect.isclass(eventkeep.testing.StoreContract)
    assert not eventkeep.testing.StoreContract.__name__.startswith("Test")
