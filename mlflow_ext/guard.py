"""Which MLflow registry requests may change governed models: only the mlteams service's.

A governed registered model (``governed.<team>.<model>``, or one tagged ``mlteams.governed=true``
after a rename) is created and changed only by the promotion service. Everyone else may read it,
and may do what MLflow's own permissions allow with every other model, except set or delete
``mlteams.*`` tags, which only the service writes.

Plain data in (the request's method, the path of the route it matched, its query arguments and
JSON body, who sent it, and a way to ask whether a model name is governed), ``None`` (allowed) or
a ``Refusal`` out. MLflow's handlers read a mutation's fields from the JSON body, in either
spelling protobuf accepts (``new_name`` or ``newName``); every spelling, and the query arguments
too, is looked at, and any governed name among them refuses the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GOVERNED_PREFIX = "governed."
"""Registered models whose names start so are governed (``hub_ext.policy.promotion``'s too)."""
GOVERNED_TAG = "mlteams.governed"
"""Set to ``true`` by the service on every governed model; kept when the service renames one."""
RESERVED_TAG_PREFIX = "mlteams."
"""Registered-model and version tags with this prefix are written only by the service."""
PROMOTE_HINT = "promote through /mlteams/promote in your notebook"
MUTATING_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

_API_PATH = re.compile(r"/(?:ajax-)?api/\d+\.\d+/mlflow/(?P<endpoint>.+?)/?$")
_GRAPHQL_PATH = re.compile(r"(?:^|/)graphql/?$")


@dataclass(frozen=True)
class Change:
    """What one registry endpoint changes: the fields naming the registered models it touches,
    the field holding one tag key, the field holding a list of ``{key, value}`` tags, and
    whether it creates the model (no lookup: it does not exist yet)."""

    names: tuple[str, ...] = ("name",)
    tag_key: str | None = None
    tag_list: str | None = None
    creates: bool = False


READ = None
"""An endpoint that changes nothing."""

REGISTRY_ENDPOINTS: Mapping[tuple[str, str], Change | None] = {
    ("POST", "registered-models/create"): Change(tag_list="tags", creates=True),
    ("POST", "registered-models/rename"): Change(names=("name", "new_name")),
    ("PATCH", "registered-models/update"): Change(),
    ("DELETE", "registered-models/delete"): Change(),
    ("POST", "registered-models/set-tag"): Change(tag_key="key"),
    ("DELETE", "registered-models/delete-tag"): Change(tag_key="key"),
    ("POST", "registered-models/alias"): Change(),
    ("DELETE", "registered-models/alias"): Change(),
    ("POST", "registered-models/get-latest-versions"): READ,
    # copying a version into a model (MlflowClient.copy_model_version) is a create here
    ("POST", "model-versions/create"): Change(tag_list="tags"),
    ("PATCH", "model-versions/update"): Change(),
    ("POST", "model-versions/transition-stage"): Change(),
    ("DELETE", "model-versions/delete"): Change(),
    ("POST", "model-versions/set-tag"): Change(tag_key="key"),
    ("DELETE", "model-versions/delete-tag"): Change(tag_key="key"),
}
"""Every registry route of MLflow that a method other than GET reaches, by method and the path
after ``/mlflow/``. GET requests read."""

UNKNOWN_CHANGE = Change(names=("name", "new_name"), tag_key="key", tag_list="tags")
"""A mutating registry route this table does not know (a newer MLflow's): treated as a change of
every model it names."""


@dataclass(frozen=True)
class RegistryRequest:
    """One request to the MLflow server, as the guard sees it."""

    method: str
    path: str
    args: Mapping[str, Sequence[str]]
    body: Any
    caller: str | None
    caller_is_service: bool


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, as MLflow's own errors are written."""

    message: str
    http_status: int = 403
    error_code: str = "PERMISSION_DENIED"

    def to_json(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def governed_message(name: str) -> str:
    return (
        f"{name} is a governed model: only the mlteams promotion service changes it; {PROMOTE_HINT}"
    )


def reserved_tag_message(key: str) -> str:
    return (
        f"the tag {key} is reserved: tags starting with {RESERVED_TAG_PREFIX} are set only by "
        f"the mlteams promotion service; {PROMOTE_HINT}"
    )


def endpoint_of(path: str) -> str | None:
    """The part of an MLflow REST path after ``/mlflow/`` (any API version, the UI's
    ``/ajax-api`` too, under any static prefix); ``None`` for other paths."""
    match = _API_PATH.search(path)
    return match.group("endpoint") if match else None


def is_registry_endpoint(endpoint: str) -> bool:
    return endpoint.startswith(("registered-models", "model-versions"))


def change_of(method: str, path: str) -> Change | None:
    """What a request changes in the registry; ``None`` for a read or a route outside it.

    GraphQL (``/graphql``) only reads in MLflow 3: its mutations are searches (a unit test
    checks the schema, so a mutation added upstream is noticed).
    """
    method = method.upper()
    if method not in MUTATING_METHODS or _GRAPHQL_PATH.search(path):
        return None
    endpoint = endpoint_of(path)
    if endpoint is None or not is_registry_endpoint(endpoint):
        return None
    key = (method, endpoint)
    if key in REGISTRY_ENDPOINTS:
        return REGISTRY_ENDPOINTS[key]
    return UNKNOWN_CHANGE


def is_governed_name(name: str, prefix: str = GOVERNED_PREFIX) -> bool:
    """Whether ``name`` is in the governed namespace (compared case-insensitively, as some SQL
    backends compare names)."""
    return name.strip().casefold().startswith(prefix.casefold())


def check(
    request: RegistryRequest,
    is_governed: Callable[[str], bool],
    *,
    prefix: str = GOVERNED_PREFIX,
) -> Refusal | None:
    """``None`` when ``request`` may go on, else why not.

    ``is_governed(name)`` says whether an existing registered model is governed by its tag
    (called only for names outside the prefix, and not for creations).
    """
    if request.caller_is_service:
        return None
    change = change_of(request.method, request.path)
    if change is None:
        return None
    fields = _fields(request)
    for name in _strings(fields, change.names):
        governed = is_governed_name(name, prefix)
        if not governed and not change.creates:
            governed = is_governed(name)
        if governed:
            return Refusal(governed_message(name))
    keys = list(_strings(fields, (change.tag_key,) if change.tag_key else ()))
    if change.tag_list:
        keys += _tag_keys(fields, change.tag_list)
    for key in keys:
        if key.strip().casefold().startswith(RESERVED_TAG_PREFIX):
            return Refusal(reserved_tag_message(key))
    return None


def _fields(request: RegistryRequest) -> list[Mapping[str, Any]]:
    """Where a request's fields may come from: its JSON body (decoded twice when a client sent
    it as a JSON string, as MLflow's handlers do) and its query arguments."""
    body = request.body
    for _ in range(2):
        if not isinstance(body, (str, bytes)):
            break
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    sources: list[Mapping[str, Any]] = [body] if isinstance(body, Mapping) else []
    sources.append({key: list(values) for key, values in request.args.items()})
    return sources


def _spellings(field: str) -> tuple[str, str]:
    head, *rest = field.split("_")
    return field, head + "".join(part.capitalize() for part in rest)


def _strings(sources: list[Mapping[str, Any]], fields: Sequence[str]) -> Iterator[str]:
    for source in sources:
        for field in fields:
            for spelling in _spellings(field):
                value = source.get(spelling)
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, (str, int)) and not isinstance(item, bool):
                        yield str(item)


def _tag_keys(sources: list[Mapping[str, Any]], field: str) -> list[str]:
    keys = []
    for source in sources:
        tags = source.get(field)
        for tag in tags if isinstance(tags, list) else []:
            if isinstance(tag, Mapping) and isinstance(tag.get("key"), str):
                keys.append(tag["key"])
            elif isinstance(tag, str):
                try:
                    parsed = json.loads(tag)
                except ValueError:
                    continue
                if isinstance(parsed, Mapping) and isinstance(parsed.get("key"), str):
                    keys.append(parsed["key"])
    return keys
