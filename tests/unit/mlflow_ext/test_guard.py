"""The registry guard: which requests may change governed models and ``mlteams.*`` tags.

The routes come from MLflow's own route table, so a registry route a newer MLflow adds is
noticed here: every route of it that a POST, PATCH, PUT or DELETE reaches must be classified.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from mlflow_ext.guard import (
    MUTATING_METHODS,
    REGISTRY_ENDPOINTS,
    UNKNOWN_CHANGE,
    Refusal,
    RegistryRequest,
    change_of,
    check,
    endpoint_of,
    governed_message,
    is_registry_endpoint,
)

pytestmark = pytest.mark.unit

GOVERNED = "governed.vision.iris"
OWN = "dev-alice-iris"
RENAMED = "iris-archive"
"""A governed model the service renamed away from the prefix: governed by its tag."""
MESSAGE = (
    "governed.vision.iris is a governed model: only the mlteams promotion service changes it; "
    "promote through /mlteams/promote in your notebook"
)


class Lookup:
    """``is_governed`` for the tests: names governed by their tag, and the names asked."""

    def __init__(self, tagged: Sequence[str] = (RENAMED,)) -> None:
        self.tagged = set(tagged)
        self.asked: list[str] = []

    def __call__(self, name: str) -> bool:
        self.asked.append(name)
        return name in self.tagged


def request(
    method: str,
    endpoint: str,
    body: Any = None,
    *,
    args: Mapping[str, Sequence[str]] | None = None,
    service: bool = False,
    api: str = "/api/2.0/mlflow/",
) -> RegistryRequest:
    return RegistryRequest(
        method=method,
        path=api + endpoint,
        args=args or {},
        body=body,
        caller="mlteams-service" if service else "v-alice",
        caller_is_service=service,
    )


def body_for(endpoint: str, name: str) -> dict[str, Any]:
    """A plausible body of ``endpoint`` for the model ``name`` (no reserved tags)."""
    if endpoint == "registered-models/rename":
        return {"name": name, "new_name": name + "-2"}
    if endpoint.endswith(("set-tag", "delete-tag")):
        return {"name": name, "version": "1", "key": "stage-note", "value": "x"}
    if endpoint == "registered-models/alias":
        return {"name": name, "alias": "champion", "version": "1"}
    return {"name": name, "version": "1", "source": "runs:/abc/model", "stage": "Production"}


CHANGES = sorted(key for key, change in REGISTRY_ENDPOINTS.items() if change is not None)


@pytest.mark.parametrize(("method", "endpoint"), CHANGES)
@pytest.mark.parametrize("api", ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"])
def test_every_change_of_a_governed_model_is_refused_to_users(
    method: str, endpoint: str, api: str
) -> None:
    refused = check(request(method, endpoint, body_for(endpoint, GOVERNED), api=api), Lookup())
    assert refused == Refusal(MESSAGE)
    assert refused.http_status == 403
    assert refused.to_json() == {"error_code": "PERMISSION_DENIED", "message": MESSAGE}


@pytest.mark.parametrize(("method", "endpoint"), CHANGES)
def test_the_service_changes_governed_models(method: str, endpoint: str) -> None:
    lookup = Lookup()
    body = {**body_for(endpoint, GOVERNED), "key": "mlteams.promotion_id"}
    assert check(request(method, endpoint, body, service=True), lookup) is None
    assert lookup.asked == []


@pytest.mark.parametrize(("method", "endpoint"), CHANGES)
def test_users_change_their_own_models(method: str, endpoint: str) -> None:
    assert check(request(method, endpoint, body_for(endpoint, OWN)), Lookup()) is None


@pytest.mark.parametrize(
    ("method", "endpoint"), [c for c in CHANGES if c[1] != "registered-models/create"]
)
def test_a_model_governed_by_its_tag_is_refused_too(method: str, endpoint: str) -> None:
    lookup = Lookup()
    refused = check(request(method, endpoint, body_for(endpoint, RENAMED)), lookup)
    assert refused == Refusal(governed_message(RENAMED))
    assert RENAMED in lookup.asked


@pytest.mark.parametrize(
    "body",
    [
        {"name": GOVERNED, "new_name": "mine"},
        {"name": OWN, "new_name": GOVERNED},
        {"name": OWN, "newName": GOVERNED},
        {"name": RENAMED, "new_name": "mine"},
    ],
    ids=["from governed", "into governed", "into governed (json name)", "from tag-governed"],
)
def test_renames_from_or_into_a_governed_name_are_refused(body: dict[str, str]) -> None:
    refused = check(request("POST", "registered-models/rename", body), Lookup())
    assert refused is not None and refused.http_status == 403
    assert "is a governed model" in refused.message


@pytest.mark.parametrize(
    "name", ["governed.nlp.x", "Governed.nlp.x", " GOVERNED.nlp.x"], ids=["plain", "case", "space"]
)
def test_no_one_but_the_service_creates_a_governed_name(name: str) -> None:
    lookup = Lookup()
    refused = check(request("POST", "registered-models/create", {"name": name}), lookup)
    assert refused == Refusal(governed_message(name))
    assert lookup.asked == []
    by_service = request("POST", "registered-models/create", {"name": name}, service=True)
    assert check(by_service, lookup) is None


def test_creating_a_model_asks_no_lookup() -> None:
    lookup = Lookup()
    assert check(request("POST", "registered-models/create", {"name": OWN}), lookup) is None
    assert lookup.asked == []


def test_copying_a_version_into_a_governed_model_is_refused_and_out_of_one_allowed() -> None:
    into = {"name": GOVERNED, "source": f"models:/{OWN}/1"}
    out_of = {"name": OWN, "source": f"models:/{GOVERNED}/1"}
    assert check(request("POST", "model-versions/create", into), Lookup()) == Refusal(MESSAGE)
    assert check(request("POST", "model-versions/create", out_of), Lookup()) is None


@pytest.mark.parametrize(
    ("method", "endpoint", "body"),
    [
        ("POST", "registered-models/set-tag", {"name": OWN, "key": "mlteams.governed"}),
        ("DELETE", "registered-models/delete-tag", {"name": OWN, "key": "mlteams.team"}),
        ("POST", "model-versions/set-tag", {"name": OWN, "version": "1", "key": "mlteams.x"}),
        ("DELETE", "model-versions/delete-tag", {"name": OWN, "version": "1", "key": "MLTeams.x"}),
        ("POST", "registered-models/create", {"name": OWN, "tags": [{"key": "mlteams.team"}]}),
        ("POST", "model-versions/create", {"name": OWN, "tags": [{"key": "mlteams.requester"}]}),
    ],
)
def test_mlteams_tags_are_the_services_on_every_model(
    method: str, endpoint: str, body: dict[str, Any]
) -> None:
    refused = check(request(method, endpoint, body), Lookup())
    assert refused is not None and refused.http_status == 403
    assert "reserved" in refused.message and "mlteams promotion service" in refused.message
    assert check(request(method, endpoint, body, service=True), Lookup()) is None


def test_other_tags_on_own_models_are_allowed() -> None:
    body = {"name": OWN, "tags": [{"key": "owner", "value": "alice"}]}
    assert check(request("POST", "registered-models/create", body), Lookup()) is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/2.0/mlflow/registered-models/get", None),
        ("GET", "/api/2.0/mlflow/registered-models/alias", None),
        ("GET", "/api/2.0/mlflow/registered-models/search", None),
        ("GET", "/ajax-api/2.0/mlflow/model-versions/search", None),
        ("GET", "/api/2.0/mlflow/model-versions/get-download-uri", None),
        ("POST", "/api/2.0/mlflow/registered-models/get-latest-versions", {"name": GOVERNED}),
        ("POST", "/graphql", {"query": 'mutation { testMutation(inputString: "x") { output } }'}),
        ("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "1"}),
        ("GET", "/health", None),
    ],
)
def test_reads_and_other_routes_are_always_allowed(
    method: str, path: str, body: dict[str, Any] | None
) -> None:
    lookup = Lookup()
    r = RegistryRequest(method, path, {"name": [GOVERNED]}, body, "v-alice", False)
    assert check(r, lookup) is None
    assert lookup.asked == []


def test_fields_are_found_in_a_double_encoded_body_and_in_query_arguments() -> None:
    doubled = json.dumps(json.dumps({"name": GOVERNED}))
    assert check(request("DELETE", "registered-models/delete", json.loads(doubled)), Lookup())
    assert check(request("DELETE", "registered-models/delete", doubled.encode()), Lookup())
    by_args = request("DELETE", "registered-models/delete", None, args={"name": [GOVERNED]})
    assert check(by_args, Lookup()) == Refusal(MESSAGE)
    malformed = request("DELETE", "registered-models/delete", b"{not json")
    assert check(malformed, Lookup()) is None


def test_a_static_prefix_and_a_trailing_slash_change_nothing() -> None:
    r = RegistryRequest(
        "POST",
        "/mlflow/api/2.0/mlflow/registered-models/alias/",
        {},
        {"name": GOVERNED, "alias": "champion", "version": "3"},
        "v-alice",
        False,
    )
    assert check(r, Lookup()) == Refusal(MESSAGE)


def test_an_unknown_mutating_registry_route_is_a_change_of_every_model_it_names() -> None:
    assert change_of("POST", "/api/3.0/mlflow/registered-models/archive") == UNKNOWN_CHANGE
    r = request("POST", "registered-models/archive", {"name": GOVERNED}, api="/api/3.0/mlflow/")
    assert check(r, Lookup()) == Refusal(MESSAGE)
    assert change_of("GET", "/api/3.0/mlflow/registered-models/archive") is None


def test_a_custom_prefix_is_the_governed_namespace() -> None:
    r = request("POST", "registered-models/create", {"name": "prod.vision.iris"})
    assert check(r, Lookup(), prefix="prod.") == Refusal(governed_message("prod.vision.iris"))
    plain = request("POST", "registered-models/create", {"name": GOVERNED})
    assert check(plain, Lookup(), prefix="prod.") is None


# -- MLflow's own routes --------------------------------------------------------------------------


def mlflow_registry_routes() -> set[tuple[str, str]]:
    """(method, endpoint) of every registry route MLflow's server app serves."""
    from mlflow.server import app

    routes = set()
    for rule in app.url_map.iter_rules():
        endpoint = endpoint_of(rule.rule)
        if endpoint is None or not is_registry_endpoint(endpoint):
            continue
        for method in rule.methods or ():
            routes.add((method, endpoint))
    return routes


def test_every_mutating_registry_route_of_mlflow_is_classified() -> None:
    routes = mlflow_registry_routes()
    mutating = {(m, e) for m, e in routes if m in MUTATING_METHODS}
    assert len(mutating) >= 14
    assert mutating - REGISTRY_ENDPOINTS.keys() == set()
    # and the table names no route MLflow does not have
    assert REGISTRY_ENDPOINTS.keys() - mutating == set()


def test_every_mutating_registry_route_is_served_under_both_apis() -> None:
    from mlflow.server import app

    paths = {rule.rule for rule in app.url_map.iter_rules()}
    for _, endpoint in REGISTRY_ENDPOINTS:
        assert f"/api/2.0/mlflow/{endpoint}" in paths
        assert f"/ajax-api/2.0/mlflow/{endpoint}" in paths


def test_graphql_has_no_mutation_that_writes() -> None:
    """MLflow's GraphQL ``Mutation`` type holds searches only; one that writes would need the
    guard to read GraphQL documents."""
    from mlflow.server.graphql.graphql_schema_extensions import schema

    fields = set(schema.graphql_schema.mutation_type.fields)
    assert fields == {"mlflowSearchDatasets", "mlflowSearchRuns", "testMutation"}
