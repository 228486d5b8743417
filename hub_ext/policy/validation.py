"""Shared validation helpers: error collection with key paths, name rules and safe excerpts."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
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


class Problems:
    """Collects problems while a configuration is walked, then raises them together."""

    def __init__(self) -> None:
        self._items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self._items.append(Problem(path, message))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self, title: str = "invalid MLTeams configuration") -> None:
        if self._items:
            raise ConfigError(self._items, title)


def child(path: str, key: str | int) -> str:
    """The path of a mapping key or list index below ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.match(key):
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
    return len(value) <= DNS_LABEL_MAX and bool(_DNS_LABEL.match(value))


def is_dns_subdomain(value: str) -> bool:
    """A DNS-1123 subdomain, the rule for most Kubernetes object names (Secrets, PVCs)."""
    return len(value) <= 253 and bool(_DNS_SUBDOMAIN.match(value))


def is_label_value(value: str) -> bool:
    """A Kubernetes label value (may be empty)."""
    return len(value) <= DNS_LABEL_MAX and bool(_LABEL_VALUE.match(value))


def is_label_key(value: str) -> bool:
    """A Kubernetes label key: an optional DNS subdomain prefix and '/', then a name."""
    prefix, slash, name = value.rpartition("/")
    if slash and not (prefix and is_dns_subdomain(prefix)):
        return False
    return len(name) <= DNS_LABEL_MAX and bool(_LABEL_NAME.match(name))


def is_env_name(value: str) -> bool:
    """A portable environment variable name."""
    return bool(_ENV_NAME.match(value))


def has_control_characters(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def plural(count: int, noun: str) -> str:
    """``1 GPU``, ``2 GPUs``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
