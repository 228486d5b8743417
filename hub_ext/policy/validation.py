"""Shared validation helpers: problems with key paths, name rules and safe excerpts.

Configuration mistakes travel through pydantic as errors of one custom type that carries the
project's own message (``invalid``); ``problems_from`` turns them into ``Problem`` objects with
the full key path, and ``in_own_words`` rewords the few structural errors pydantic raises itself
(a missing or unknown key, a value that is not a mapping or a list).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, ValidationError

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253

# The name rules as regular expressions that Python and JSON Schema validators read alike.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_NAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
LABEL_KEY_PATTERN = f"^({DNS_SUBDOMAIN_PATTERN[1:-1]}/)?{LABEL_NAME_PATTERN[1:-1]}$"
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN_PATTERN)
_LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)
_LABEL_NAME = re.compile(LABEL_NAME_PATTERN)
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SAFE_CHARS = re.compile(r"[^A-Za-z0-9 ._:/@+=,-]")


@dataclass(frozen=True)
class Problem:
    """One configuration mistake: where it is and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(ValueError):
    """The team configuration is invalid; carries every problem found, not only the first."""

    def __init__(
        self, problems: Sequence[Problem], title: str = "invalid MLTeams configuration"
    ) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{title} ({count} {noun}):\n{lines}")


def child(path: str, key: str | int) -> str:
    """The path of a mapping key or list index below ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{show(key)}]"


def show(value: Any, limit: int = 60) -> str:
    """A value as an admin wrote it, JSON-quoted and shortened, for configuration messages."""
    try:
        text = json.dumps(value, ensure_ascii=True, default=_type_name)
    except (TypeError, ValueError, RecursionError):
        text = _type_name(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _type_name(value: Any) -> str:
    return f"<{type(value).__name__}>"


def excerpt(value: Any, limit: int = 32) -> str:
    """A short, sanitised rendering of untrusted input, safe to put in a message or a page.

    Anything outside a small set of plain characters (quotes, braces, angle brackets, newlines,
    control characters, non-ASCII) becomes ``?``; long values are cut and marked with ``...``.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float) or value is None:
        text = json.dumps(value)
    else:
        return f"a {type(value).__name__}"
    cut = len(text) > limit
    text = _SAFE_CHARS.sub("?", text[:limit])
    return f"'{text}...'" if cut else f"'{text}'"


def did_you_mean(key: str, choices: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` when ``key`` is close to one of ``choices``, else ``""``."""
    matches = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {show(matches[0])}?)" if matches else ""


def is_dns_label(value: str) -> bool:
    """A DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters."""
    return len(value) <= DNS_LABEL_MAX and bool(_DNS_LABEL.fullmatch(value))


def is_dns_subdomain(value: str) -> bool:
    """A DNS-1123 subdomain, the rule for most Kubernetes object names (Secrets, PVCs)."""
    return len(value) <= DNS_SUBDOMAIN_MAX and bool(_DNS_SUBDOMAIN.fullmatch(value))


def is_label_value(value: str) -> bool:
    """A Kubernetes label value (may be empty)."""
    return len(value) <= DNS_LABEL_MAX and bool(_LABEL_VALUE.fullmatch(value))


def is_label_key(value: str) -> bool:
    """A Kubernetes label key: an optional DNS subdomain prefix and '/', then a name."""
    prefix, slash, name = value.rpartition("/")
    if slash and not (prefix and is_dns_subdomain(prefix)):
        return False
    return len(name) <= DNS_LABEL_MAX and bool(_LABEL_NAME.fullmatch(name))


def is_env_name(value: str) -> bool:
    """A portable environment variable name."""
    return bool(_ENV_NAME.fullmatch(value))


def has_control_characters(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def plural(count: int, noun: str) -> str:
    """``1 GPU``, ``2 GPUs``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


MLTEAMS_ERROR = "mlteams"
"""The pydantic error type of every configuration problem, worded by the project."""

KEY_MARK = "[key]"
"""The location part pydantic adds when a mapping key itself is wrong."""

Loc = tuple[str | int, ...]


def invalid(message: str) -> PydanticCustomError:
    """The error a validator raises for the value at hand, with the project's message."""
    return PydanticCustomError(MLTEAMS_ERROR, "{message}", {"message": message})


def problem_at(loc: Loc, message: str, value: Any = None) -> InitErrorDetails:
    """One problem at ``loc`` (relative to the value being validated)."""
    return InitErrorDetails(type=invalid(message), loc=loc, input=value)


def invalid_at(title: str, problems: Sequence[InitErrorDetails]) -> ValidationError:
    """Several problems below the value being validated, raised together.

    Raised inside a validator, pydantic puts each one below the validated value's own location.
    """
    return ValidationError.from_exception_data(title, list(problems))


_MAPPING_ERRORS = frozenset(
    {"model_type", "model_attributes_type", "dict_type", "mapping_type", "dataclass_type"}
)
_LIST_ERRORS = frozenset({"list_type", "tuple_type", "set_type", "iterable_type"})


def in_own_words(error: ErrorDetails, allowed_keys: Sequence[str]) -> InitErrorDetails | None:
    """A pydantic error in the project's words; ``None`` for one that only repeats another.

    ``allowed_keys`` are the keys of the mapping the error was found in, for unknown keys.
    """
    message = _message(error, allowed_keys)
    if message is None:
        return None
    return problem_at(tuple(error["loc"]), message, error.get("input"))


def _message(error: ErrorDetails, allowed_keys: Sequence[str]) -> str | None:
    kind = error["type"]
    loc = tuple(error["loc"])
    value = error.get("input")
    if kind == MLTEAMS_ERROR:
        return error["msg"]
    if kind == "default_factory_not_called":
        return None
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), allowed_keys) if loc else ""
        return f"unknown key{hint}; allowed keys: {', '.join(allowed_keys)}"
    if kind in _MAPPING_ERRORS:
        return f"must be a mapping, got {show(value)}"
    if kind in _LIST_ERRORS:
        return f"must be a list, got {show(value)}"
    if kind == "string_type" and loc and loc[-1] == KEY_MARK:
        return f"keys must be strings, got {show(value)}"
    if kind == "string_type":
        return f"must be a string, got {show(value)}"
    return f"is not valid here, got {show(value)}"


def path_of(root: str, loc: Iterable[str | int]) -> str:
    """The key path of a pydantic location below ``root``."""
    path = root
    for part in loc:
        if part != KEY_MARK:
            path = child(path, part)
    return path


def problems_from(error: ValidationError, root: str) -> list[Problem]:
    """The problems of a failed validation, each with its full key path below ``root``."""
    problems: list[Problem] = []
    for detail in error.errors():
        message = _message(detail, ())
        if message is not None:
            problems.append(Problem(path_of(root, detail["loc"]), message))
    return problems
