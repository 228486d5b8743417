"""Rules for the values of the MLTeams configuration, as pydantic annotations.

Each rule checks a value the way an admin writes it, says what is wrong in the project's own
words, and describes what it accepts in the JSON Schema. ``config`` declares every key once,
as a model field annotated with one of these rules, for example
``gpus: Annotated[int, WholeNumber(0, 4096)]``.

Validation with ``context=written_by_admin(root)`` reads CPU and memory as Kubernetes quantities
(``"500m"``, ``64Gi``) and takes each entry's name from its key in the section; without it (models
built in Python) CPU is given in millicores, memory in bytes, and names directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticKnownError, core_schema

from hub_ext.policy.quantities import QuantityError
from hub_ext.policy.validation import (
    DNS_LABEL_MAX,
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_MAX,
    DNS_SUBDOMAIN_PATTERN,
    ENV_NAME_PATTERN,
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    did_you_mean,
    has_control_characters,
    invalid,
    invalid_at,
    is_dns_label,
    is_dns_subdomain,
    is_env_name,
    is_label_key,
    is_label_value,
    problem_at,
    show,
)

ROOT = "MLTeams"
AS_WRITTEN: Final = "mlteams_as_written"
ROOT_PATH: Final = "mlteams_root"
RESERVED_ENV_PREFIXES = ("JUPYTERHUB_", "MLTEAMS_")

LOCATION_PATTERN = r"^(/|[A-Za-z][A-Za-z0-9+.-]*://)"
IMAGE_PATTERN = r"^\S+$"
QUANTITY_PATTERN = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3}|[KMGTPE]i|[numkMGTPE])?$"
"""A Kubernetes quantity as JSON Schema documents it; ``quantities`` is the parser."""

_DNS_LABEL_RULE = (
    "lower-case letters, digits and '-', starting and ending with a letter or digit, "
    f"at most {DNS_LABEL_MAX} characters"
)


def written_by_admin(root: str) -> dict[str, Any]:
    """The validation context for configuration as an admin writes it, below the key ``root``."""
    return {AS_WRITTEN: True, ROOT_PATH: root}


def root_of(context: Any) -> str:
    """The key path the validated configuration sits at, for messages that name other keys."""
    root = context.get(ROOT_PATH) if isinstance(context, Mapping) else None
    return root if isinstance(root, str) else ROOT


def _as_written(info: core_schema.ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, Mapping) and bool(context.get(AS_WRITTEN))


class Rule:
    """A value rule: ``check`` runs first and raises the project's message for a bad value;
    pydantic's own validation of ``accepts`` follows (it then always passes) and gives the JSON
    Schema, with ``documented`` added to it."""

    def check(self, value: Any, info: core_schema.ValidationInfo) -> Any:
        return value

    def accepts(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return handler(source)

    def documented(self) -> dict[str, Any]:
        return {}

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.with_info_before_validator_function(
            self.check, self.accepts(source, handler)
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        documented = handler(schema)
        documented.update(self.documented())
        return documented


@dataclass(frozen=True)
class WholeNumber(Rule):
    """An integer (not a boolean, not a float) from ``minimum`` to ``maximum``."""

    minimum: int = 0
    maximum: int | None = None

    def check(self, value: Any, info: core_schema.ValidationInfo | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise invalid(f"must be an integer >= {self.minimum}, got {show(value)}")
        if self.maximum is not None and value > self.maximum:
            raise invalid(f"must be at most {self.maximum}, got {show(value)}")
        return value

    def accepts(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.int_schema(ge=self.minimum, le=self.maximum, strict=True)


@dataclass(frozen=True)
class PositiveNumber(Rule):
    """A number (integer or decimal, not a boolean) above zero, at most ``maximum``."""

    maximum: float

    def check(self, value: Any, info: core_schema.ValidationInfo) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise invalid(f"must be a number > 0, got {show(value)}")
        if value > self.maximum:
            raise invalid(f"must be at most {self.maximum:g}, got {show(value)}")
        return float(value)

    def accepts(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.float_schema(gt=0, le=self.maximum)


@dataclass(frozen=True)
class Number(Rule):
    """A finite number (integer or decimal, not a boolean), at least ``minimum`` when given."""

    minimum: float | None = None

    def check(self, value: Any, info: core_schema.ValidationInfo) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise invalid(f"must be a number, got {show(value)}")
        if self.minimum is not None and value < self.minimum:
            raise invalid(f"must be a number >= {self.minimum:g}, got {show(value)}")
        return float(value)

    def accepts(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.float_schema(ge=self.minimum, allow_inf_nan=False)


@dataclass(frozen=True)
class Flag(Rule):
    """``true`` or ``false``; never ``"yes"`` or ``1``."""

    def check(self, value: Any, info: core_schema.ValidationInfo) -> bool:
        if not isinstance(value, bool):
            raise invalid(f"must be true or false, got {show(value)}")
        return value


@dataclass(frozen=True)
class Text(Rule):
    """A one-line string of at most ``max_length`` characters, not empty unless allowed."""

    max_length: int = 256
    allow_empty: bool = False

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if not isinstance(value, str):
            raise invalid(f"must be a string, got {show(value)}")
        if not value:
            if self.allow_empty:
                return value
            raise invalid("must not be empty")
        if len(value) > self.max_length:
            raise invalid(f"must be at most {self.max_length} characters, got {len(value)}")
        if has_control_characters(value):
            raise invalid(f"must not contain control characters, got {show(value)}")
        problem = self.problem(value)
        if problem is not None:
            raise invalid(problem)
        return str(value)

    def problem(self, value: str) -> str | None:
        """What else is wrong with a non-empty string, if anything."""
        return None

    def documented(self) -> dict[str, Any]:
        lengths = {"maxLength": self.max_length}
        return lengths if self.allow_empty else {"minLength": 1, **lengths}


@dataclass(frozen=True)
class Name(Text):
    """A DNS-1123 label, the rule for namespaces and for team, profile and dataset names."""

    what: str = "name"
    max_length: int = DNS_LABEL_MAX

    def problem(self, value: str) -> str | None:
        if is_dns_label(value):
            return None
        return f"{self.what} must be a DNS-1123 label ({_DNS_LABEL_RULE}), got {show(value)}"

    def documented(self) -> dict[str, Any]:
        return {**super().documented(), "pattern": DNS_LABEL_PATTERN}


class DefaultNamespace(str):
    """A team namespace derived from the team's name because none was written."""

    __slots__ = ()


@dataclass(frozen=True)
class Namespace(Name):
    """A team namespace: a DNS-1123 label that Kubernetes does not keep for itself."""

    what: str = "namespace"

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if isinstance(value, DefaultNamespace) and not is_dns_label(value):
            if not is_dns_label(value.removeprefix("team-")):
                return str(value)
            raise invalid(
                f"the default namespace {show(str(value))} is longer than {DNS_LABEL_MAX} "
                "characters; set a shorter namespace"
            )
        name = super().check(value, info)
        if name == "default" or name.startswith("kube-"):
            raise invalid(f"{show(name)} is reserved by Kubernetes; choose a team namespace")
        return name


@dataclass(frozen=True)
class ObjectName(Text):
    """The name of a Kubernetes object such as a Secret: a DNS-1123 subdomain."""

    what: str = "object"
    max_length: int = DNS_SUBDOMAIN_MAX

    def problem(self, value: str) -> str | None:
        if is_dns_subdomain(value):
            return None
        return f"must be a Kubernetes {self.what} name, got {show(value)}"

    def documented(self) -> dict[str, Any]:
        return {**super().documented(), "pattern": DNS_SUBDOMAIN_PATTERN}


HOME_CLAIM_PREFIX = "claim-"
"""How KubeSpawner's default ``pvc_name_template`` (``claim-{user_server}``) starts."""


@dataclass(frozen=True)
class ClaimName(ObjectName):
    """A PersistentVolumeClaim that is not named like a member's home."""

    what: str = "PersistentVolumeClaim"

    def problem(self, value: str) -> str | None:
        if value.startswith(HOME_CLAIM_PREFIX):
            return (
                f"must not start with {show(HOME_CLAIM_PREFIX)}, which names the members' homes, "
                f"got {show(value)}"
            )
        return super().problem(value)

    def documented(self) -> dict[str, Any]:
        return {**super().documented(), "not": {"pattern": f"^{HOME_CLAIM_PREFIX}"}}


MOUNT_PATH_PATTERN = r"^(/[A-Za-z0-9._ -]+)+$"
"""An absolute path with at least one folder, no trailing '/', no empty parts."""


@dataclass(frozen=True)
class MountPath(Text):
    """Where a volume appears in the server: an absolute path below ``/``, written plainly."""

    max_length: int = 512

    def problem(self, value: str) -> str | None:
        parts = value.split("/")[1:]
        if not value.startswith("/") or not re.fullmatch(MOUNT_PATH_PATTERN, value):
            return (
                "must be an absolute folder path such as /home/jovyan/team (letters, digits, "
                f"'.', '_', '-' and spaces; no trailing '/'), got {show(value)}"
            )
        if any(part in (".", "..") for part in parts):
            return f"must not contain '.' or '..' parts, got {show(value)}"
        return None

    def documented(self) -> dict[str, Any]:
        return {**super().documented(), "pattern": MOUNT_PATH_PATTERN}


@dataclass(frozen=True)
class HubNamespace(Text):
    """The hub's namespace: empty (found at run time) or a DNS-1123 label."""

    max_length: int = DNS_LABEL_MAX
    allow_empty: bool = True

    def problem(self, value: str) -> str | None:
        if is_dns_label(value):
            return None
        return f"must be empty or a DNS-1123 label ({_DNS_LABEL_RULE}), got {show(value)}"

    def documented(self) -> dict[str, Any]:
        return {**super().documented(), "pattern": f"^$|{DNS_LABEL_PATTERN}"}


@dataclass(frozen=True)
class Image(Text):
    """A container image reference."""

    max_length: int = 512

    def problem(self, value: str) -> str | None:
        if re.fullmatch(IMAGE_PATTERN, value):
            return None
        return f"must not contain spaces, got {show(value)}"

    def documented(self) -> dict[str, Any]:
        return {**super().documented(), "pattern": IMAGE_PATTERN}


@dataclass(frozen=True)
class Location(Text):
    """Where data lives: a URI with a scheme, or an absolute path."""

    max_length: int = 2048

    def problem(self, value: str) -> str | None:
        if re.match(LOCATION_PATTERN, value):
            return None
        return f"must be a URI such as s3://bucket/path/ or an absolute path, got {show(value)}"

    def documented(self) -> dict[str, Any]:
        return {**super().documented(), "pattern": LOCATION_PATTERN}


@dataclass(frozen=True)
class OneOf(Rule):
    """One of a few fixed words."""

    choices: tuple[str, ...]

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if isinstance(value, str) and value in self.choices:
            return value
        hint = did_you_mean(value, self.choices) if isinstance(value, str) else ""
        raise invalid(f"must be one of {', '.join(self.choices)}, got {show(value)}{hint}")

    def accepts(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.literal_schema(list(self.choices))


@dataclass(frozen=True)
class KnownName(Rule):
    """A key that names one of a fixed set of things (a metric the service computes)."""

    what: str
    choices: tuple[str, ...]

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if isinstance(value, str) and value in self.choices:
            return value
        hint = did_you_mean(value, self.choices) if isinstance(value, str) else ""
        raise invalid(f"unknown {self.what} {show(value)}{hint}; known: {', '.join(self.choices)}")

    def documented(self) -> dict[str, Any]:
        return {"enum": list(self.choices)}


@dataclass(frozen=True)
class LabelKey(Rule):
    """A Kubernetes label key (an optional DNS subdomain and '/', then a name)."""

    what: str = "Kubernetes label key"

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if not isinstance(value, str) or not is_label_key(value):
            raise invalid(f"is not a valid {self.what}: {show(value)}")
        return value

    def documented(self) -> dict[str, Any]:
        return {"pattern": LABEL_KEY_PATTERN}


@dataclass(frozen=True)
class LabelValue(Rule):
    """A Kubernetes label value; YAML turns unquoted ``true`` or ``8`` into other types."""

    what: str = "Kubernetes label value"

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if not isinstance(value, str):
            raise invalid(f"must be a string (quote it in YAML), got {show(value)}")
        if not is_label_value(value):
            raise invalid(f"is not a valid {self.what}: {show(value)}")
        return value

    def documented(self) -> dict[str, Any]:
        return {"pattern": LABEL_VALUE_PATTERN, "maxLength": DNS_LABEL_MAX}


@dataclass(frozen=True)
class EnvName(Rule):
    """An environment variable name that the hub does not set itself."""

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if not isinstance(value, str) or not is_env_name(value):
            raise invalid(
                "is not a valid environment variable name "
                "(letters, digits and '_', not starting with a digit)"
            )
        if value.upper().startswith(RESERVED_ENV_PREFIXES):
            raise invalid(
                f"names starting with {' or '.join(RESERVED_ENV_PREFIXES)} are set by the hub"
            )
        return value

    def documented(self) -> dict[str, Any]:
        reserved = "|".join(f"^{_any_case(prefix)}" for prefix in RESERVED_ENV_PREFIXES)
        return {"pattern": ENV_NAME_PATTERN, "not": {"pattern": reserved}}


def _any_case(text: str) -> str:
    """A regular expression matching ``text`` in any letter case, without flags."""
    return "".join(f"[{ch.upper()}{ch.lower()}]" if ch.isalpha() else re.escape(ch) for ch in text)


@dataclass(frozen=True)
class QuotedString(Rule):
    """Any string; YAML turns unquoted ``8`` or ``true`` into other types."""

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if not isinstance(value, str):
            raise invalid(f"must be a string (quote it in YAML), got {show(value)}")
        return value


@dataclass(frozen=True)
class Quantity(Rule):
    """A Kubernetes quantity as written (``8``, ``"500m"``, ``64Gi``), kept as an integer in the
    unit ``parse`` returns (millicores, bytes)."""

    parse: Callable[[Any], int]

    def check(self, value: Any, info: core_schema.ValidationInfo) -> int:
        if not _as_written(info):
            return WholeNumber(0).check(value)
        try:
            return self.parse(value)
        except QuantityError as exc:
            raise invalid(f"must be a Kubernetes quantity: {exc}") from None

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "anyOf": [
                {"type": "string", "pattern": QUANTITY_PATTERN},
                {"type": "number", "minimum": 0},
            ]
        }


@dataclass(frozen=True)
class Listed(Rule):
    """A list; each entry once unless ``repeats``, and not empty when ``at_least_one`` names
    what it lists."""

    at_least_one: str | None = None
    repeats: bool = False

    def check(self, value: Any, info: core_schema.ValidationInfo) -> Any:
        if not isinstance(value, list | tuple):
            raise invalid(f"must be a list, got {show(value)}")
        return value

    def accepts(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._whole, handler(source))

    def _whole(self, entries: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.at_least_one and not entries:
            raise invalid(f"must list at least one {self.at_least_one}")
        if not self.repeats:
            seen: list[Any] = []
            twice = []
            for index, entry in enumerate(entries):
                if entry in seen:
                    twice.append(problem_at((index,), f"{show(entry)} is listed twice", entry))
                else:
                    seen.append(entry)
            if twice:
                raise invalid_at("list", twice)
        return entries

    def documented(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.at_least_one:
            extra["minItems"] = 1
        if not self.repeats:
            extra["uniqueItems"] = True
        return extra


@dataclass(frozen=True)
class Frozen(Rule):
    """A mapping kept read-only."""

    def accepts(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_read_only, handler(source))


def _read_only(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping))


class EntryKey(str):
    """A section's key, handed to the entry it names."""

    __slots__ = ()


@dataclass(frozen=True)
class Keyed(Frozen):
    """A section of named entries (``teams``, ``profiles``): each entry learns its name from its
    key, through a field marked ``FromKey``."""

    def check(self, value: Any, info: core_schema.ValidationInfo) -> Any:
        if not isinstance(value, Mapping):
            return value
        # a key that is not a string (YAML's `7:`) is refused by its own rule; the entry still
        # learns a name, so that refusal is the only problem the key causes
        return {
            key: (
                {**entry, "name": EntryKey(str(key))}
                if isinstance(entry, Mapping) and "name" not in entry
                else entry
            )
            for key, entry in value.items()
        }


@dataclass(frozen=True)
class FromKey(Rule):
    """The name of a section entry: its key in the section, never a key inside the entry."""

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if _as_written(info) and not isinstance(value, EntryKey):
            raise PydanticKnownError("extra_forbidden")
        if not isinstance(value, str):
            raise invalid(f"must be a string, got {show(value)}")
        return str(value)


@dataclass(frozen=True)
class EntryName(Rule):
    """A section key naming a team, profile or dataset: a DNS-1123 label."""

    what: str

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str:
        if not isinstance(value, str):
            raise invalid(f"keys must be strings, got {show(value)}")
        if not is_dns_label(value):
            raise invalid(
                f"{self.what} name must be a DNS-1123 label (lower-case letters, digits and "
                f"'-', at most {DNS_LABEL_MAX} characters)"
            )
        return value

    def documented(self) -> dict[str, Any]:
        return {"pattern": DNS_LABEL_PATTERN, "maxLength": DNS_LABEL_MAX}


@dataclass(frozen=True)
class CountOrModel(Rule):
    """A whole number, or a mapping read as ``model`` (a GPU count or a GPU range)."""

    count: WholeNumber
    model: type[BaseModel]

    def check(self, value: Any, info: core_schema.ValidationInfo) -> Any:
        if isinstance(value, self.model):
            return value
        if isinstance(value, Mapping):
            written = _as_written(info)
            return self.model.model_validate(
                value, context=info.context, by_alias=True, by_name=not written
            )
        return self.count.check(value)
