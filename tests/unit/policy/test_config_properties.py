"""Properties of configuration validation for arbitrary input.

Whatever an admin writes under ``MLTeams`` (or sends as a run-time quota override), validation
either builds the configuration or raises ``ConfigError``, never another exception, and every
problem it reports names a key path below the root. A value replaced anywhere in a valid
configuration, or a key added to any mapping of it, is reported at that key (or at the key
that holds it), so the admin can find what to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub_ext.policy import ConfigError, load_config
from hub_ext.policy.config import QuotaOverride, parse_quota_override
from hub_ext.policy.validation import child
from tests.unit.policy.properties import property_settings
from tests.unit.policy.sample import sample_raw

pytestmark = pytest.mark.unit

PROPERTIES = property_settings(120)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", "0", "-1", "8Gi", "500m", "1e400", "nan", "cpu", "vision", "/ml"])
)
KEYS = st.text(max_size=10) | st.sampled_from(
    ["teams", "profiles", "gpus", "quota", "image", "min", "max", "queue", "cpu", "groups"]
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every key path of a JSON-like value, the root included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _mappings(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    return (p for p in _paths(value, path) if isinstance(_at(value, p), dict))


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _written(path: tuple[str | int, ...], root: str = "MLTeams") -> str:
    text = root
    for key in path:
        text = child(text, key)
    return text


def _related(problem: str, written: str) -> bool:
    """``problem`` is at ``written``, below it, or at a key that holds it."""
    for outer, inner in ((written, problem), (problem, written)):
        if inner == outer or inner.startswith((f"{outer}.", f"{outer}[")):
            return True
    return False


SAMPLE_PATHS = sorted((path for path in _paths(sample_raw()) if path), key=str)
SAMPLE_MAPPINGS = sorted(_mappings(sample_raw()), key=str)


def _load(raw: Any, root: str = "MLTeams") -> ConfigError | None:
    """The ``ConfigError`` validation raises, or ``None`` when ``raw`` is valid; any other
    exception escapes and fails the test."""
    try:
        load_config(raw, root=root)
    except ConfigError as error:
        assert error.problems, "an error without problems"
        for problem in error.problems:
            assert problem.path == root or problem.path.startswith((f"{root}.", f"{root}[")), (
                problem
            )
            assert problem.message.strip(), problem
            assert str(problem) in str(error)
        return error
    return None


@PROPERTIES
@given(raw=JSON)
def test_any_input_is_loaded_or_refused_with_a_config_error(raw: Any) -> None:
    """Anything at all (not only mappings) is loaded or refused with the project's own error,
    whose problems all name a key path below the root."""
    _load(raw)


@PROPERTIES
@given(root=JSON)
def test_any_sections_are_loaded_or_refused_with_a_config_error(root: Any) -> None:
    """Arbitrary values in the top-level sections are refused with ``ConfigError`` only."""
    raw = {"teams": root, "profiles": root} if not isinstance(root, dict) else root
    _load(raw, root="c.MLTeams")


@PROPERTIES
@given(path=st.sampled_from(SAMPLE_PATHS), value=JSON)
def test_a_value_replaced_anywhere_is_reported_at_its_key(
    path: tuple[str | int, ...], value: Any
) -> None:
    """Replacing one value of a valid configuration either keeps it valid or gives a
    ``ConfigError`` with a problem at that key, below it, at a key that holds it, or naming it
    (a reference elsewhere to what was replaced)."""
    raw = sample_raw()
    _at(raw, path[:-1])[path[-1]] = value
    error = _load(raw)
    if error is not None:
        written = _written(path)
        # a section replaced whole may break a reference to it elsewhere: that problem names it
        assert any(
            _related(problem.path, written) or written in problem.message
            for problem in error.problems
        ), (
            written,
            [str(problem) for problem in error.problems],
        )


@PROPERTIES
@given(
    path=st.sampled_from(SAMPLE_MAPPINGS),
    key=st.text(min_size=1, max_size=10),
    value=st.lists(JSON, min_size=1, max_size=2),
)
def test_a_key_added_to_any_mapping_is_reported(
    path: tuple[str | int, ...], key: str, value: list[Any]
) -> None:
    """A key the configuration does not know, or one whose value is not what that mapping
    holds, is refused with a problem naming it (a list is nowhere a valid value for a key that
    is not there already)."""
    raw = sample_raw()
    mapping = _at(raw, path)
    if key in mapping:
        return
    mapping[key] = value
    error = _load(raw)
    assert error is not None, f"{_written((*path, key))} was accepted"
    written = _written((*path, key))
    assert any(_related(problem.path, written) for problem in error.problems), (
        written,
        [str(problem) for problem in error.problems],
    )


@PROPERTIES
@given(raw=JSON)
def test_any_quota_override_is_parsed_or_refused_with_a_config_error(raw: Any) -> None:
    """A run-time quota override is parsed or refused with ``ConfigError`` naming keys below
    ``quota_override``; a parsed one never lets GPUs per user exceed its GPUs."""
    try:
        override = parse_quota_override(raw)
    except ConfigError as error:
        assert error.problems
        assert all(problem.path.startswith("quota_override") for problem in error.problems)
        assert str(error).startswith("invalid quota override (")
        return
    assert isinstance(override, QuotaOverride)
    if override.gpus is not None and override.gpus_per_user is not None:
        assert override.gpus_per_user <= override.gpus
