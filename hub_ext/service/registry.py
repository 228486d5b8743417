"""MLflow's tracking server and model registry, over its REST API with the service's login.

No MLflow client here: runs, logged models and their artifacts (through the tracking server's
artifact proxy), registered models, versions and aliases are plain HTTP calls. A server that
does not answer, answers 5xx or times out is ``RegistryUnavailable`` (the service answers 503);
any other error status is ``RegistryRefused`` with MLflow's error code and a readable message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlparse

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .candidate import (
    MLMODEL,
    REQUIREMENTS,
    Candidate,
    DatasetInput,
    ModelFile,
    parse_mlmodel,
    safe_relative,
)

REGISTRY_TIMEOUT_SECONDS = 30.0
API = "api/2.0/mlflow/"
ARTIFACTS_API = "api/2.0/mlflow-artifacts/artifacts/"
LOGGED_MODEL_FILES = "ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
GOVERNED_TAG = "mlteams.governed"
TEAM_TAG = "mlteams.team"
MODEL_TAG = "mlteams.model"
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
MISSING_RUN_CODES = (NOT_FOUND, "INVALID_PARAMETER_VALUE")
PAGE_SIZE = 100


class RegistryUnavailable(Exception):
    """MLflow did not answer, answered 5xx, or its answer cannot be used."""


class RegistryRefused(Exception):
    """MLflow answered with an error status (4xx)."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model."""

    name: str
    version: int
    source: str
    run_id: str
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""
    created_ms: int = 0

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ModelVersion:
        return cls(
            name=str(body.get("name", "")),
            version=int(body.get("version", 0)),
            source=str(body.get("source", "")),
            run_id=str(body.get("run_id", "")),
            status=str(body.get("status", "")),
            tags=_pairs(body.get("tags")),
            aliases=tuple(str(a) for a in body.get("aliases") or ()),
            description=str(body.get("description", "")),
            created_ms=int(body.get("creation_timestamp", 0) or 0),
        )


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model: its tags and its aliases (alias -> version)."""

    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RegisteredModel:
        aliases = {
            str(a.get("alias")): int(a.get("version", 0))
            for a in body.get("aliases") or ()
            if isinstance(a, dict)
        }
        return cls(
            name=str(body.get("name", "")),
            tags=_pairs(body.get("tags")),
            aliases=aliases,
            description=str(body.get("description", "")),
        )


class Registry:
    """A small async client of one MLflow server, signed in with basic auth when given."""

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = REGISTRY_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self.username = username
        self._password = password
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Registry({self.url!r}, username={self.username!r})"

    # -- HTTP ----------------------------------------------------------------------------------

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.username:
            pair = f"{self.username}:{self._password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    async def _fetch(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> bytes:
        url = self.url + path + (("?" + urlencode(query)) if query else "")
        request = HTTPRequest(
            url,
            method=method,
            headers=self._headers(None if body is None else "application/json"),
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as exc:
            if exc.response is None or exc.code >= 500:
                raise RegistryUnavailable(f"MLflow at {self.url} answered {exc.code}") from None
            code, message = _error(exc.response.body)
            raise RegistryRefused(exc.code, code, message) from None
        except OSError as exc:
            raise RegistryUnavailable(f"MLflow at {self.url} does not answer ({exc})") from None
        return response.body or b""

    async def request(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """Call ``<url>api/2.0/mlflow/<path>``; the parsed JSON answer (``{}`` when empty)."""
        raw = await self._fetch(method, API + path, query, body)
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise RegistryUnavailable("MLflow's answer is not JSON") from None
        if not isinstance(parsed, dict):
            raise RegistryUnavailable("MLflow's answer is not a JSON object")
        return parsed

    # -- runs and candidates -------------------------------------------------------------------

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """The run (``info``, ``data``, ``inputs``, ``outputs``); ``RegistryRefused`` 404 if none"""
        try:
            found = await self.request("GET", "runs/get", {"run_id": run_id})
        except RegistryRefused as exc:
            if exc.status in (400, 404) and exc.error_code in MISSING_RUN_CODES:
                raise RegistryRefused(
                    404, NOT_FOUND, f"there is no run {run_id!r} in MLflow"
                ) from None
            raise
        run = found.get("run")
        if not isinstance(run, dict):
            raise RegistryUnavailable("MLflow's answer holds no run")
        return run

    async def _logged_models(self, run: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The models the run logged: by source run, and the run's own model outputs."""
        info = run.get("info", {})
        run_id, experiment = info.get("run_id", ""), info.get("experiment_id", "")
        models: dict[str, dict[str, Any]] = {}
        token = ""
        while True:
            body: dict[str, Any] = {
                "experiment_ids": [experiment],
                "filter": f"source_run_id = '{run_id}'",
                "max_results": PAGE_SIZE,
            }
            if token:
                body["page_token"] = token
            page = await self.request("POST", "logged-models/search", body=body)
            for model in page.get("models") or ():
                model_info = model.get("info", {})
                models[str(model_info.get("model_id"))] = model_info
            token = str(page.get("next_page_token") or "")
            if not token:
                break
        outputs = (run.get("outputs") or {}).get("model_outputs") or ()
        for output in outputs:
            model_id = str(output.get("model_id", ""))
            if model_id and model_id not in models:
                try:
                    found = await self.request("GET", f"logged-models/{quote(model_id, safe='')}")
                except RegistryRefused:
                    continue
                models[model_id] = found.get("model", {}).get("info", {})
        return list(models.values())

    async def _list_model_files(self, model_id: str) -> list[ModelFile]:
        files: list[ModelFile] = []
        folders = [""]
        path = f"logged-models/{quote(model_id, safe='')}/artifacts/directories"
        while folders:
            folder = folders.pop()
            listing = await self.request("GET", path, {"artifact_directory_path": folder})
            for entry in listing.get("files") or ():
                name = str(entry.get("path", ""))
                full = name if not folder or name.startswith(folder + "/") else f"{folder}/{name}"
                if entry.get("is_dir"):
                    folders.append(full)
                else:
                    size = entry.get("file_size")
                    files.append(ModelFile(safe_relative(full), int(size) if size else None))
        return sorted(files, key=lambda f: f.path)

    async def read_model_file(self, model_id: str, artifact_uri: str, path: str) -> bytes:
        """One file of a logged model, through the tracking server's artifact proxy."""
        relative = safe_relative(path)
        parsed = urlparse(artifact_uri)
        if parsed.scheme == "mlflow-artifacts":
            location = parsed.path.strip("/") + "/" + relative
            return await self._fetch("GET", ARTIFACTS_API + quote(location))
        return await self._fetch(
            "GET",
            LOGGED_MODEL_FILES.format(model_id=quote(model_id, safe="")),
            {"artifact_file_path": relative},
        )

    async def candidate(self, run_id: str, artifact_path: str = "model") -> Candidate:
        """The model ``run_id`` logged under ``artifact_path``, its files and its run's facts.

        ``RegistryRefused`` 404 when the run does not exist or logged no model at that path (the
        message names the paths it has).
        """
        run = await self.get_run(run_id)
        models = await self._logged_models(run)
        wanted = artifact_path.strip("/")
        chosen = [m for m in models if m.get("name") == wanted]
        if not chosen:
            names = sorted({str(m.get("name")) for m in models if m.get("name")})
            has = f"it has {', '.join(names)}" if names else "it logged no model"
            raise RegistryRefused(
                404, NOT_FOUND, f"run {run_id} logged no model at {wanted!r}; {has}"
            )
        model = max(chosen, key=lambda m: int(m.get("creation_timestamp_ms") or 0))
        model_id = str(model.get("model_id", ""))
        artifact_uri = str(model.get("artifact_uri", ""))
        files = await self._list_model_files(model_id)
        present = {f.path for f in files}
        if MLMODEL not in present:
            raise RegistryRefused(
                422, "INVALID_STATE", f"the model at {wanted!r} of run {run_id} has no MLmodel file"
            )

        async def reader(path: str) -> bytes:
            return await self.read_model_file(model_id, artifact_uri, path)

        flavors, signature = parse_mlmodel(await reader(MLMODEL))
        requirements = None
        if REQUIREMENTS in present:
            requirements = (await reader(REQUIREMENTS)).decode(errors="replace")
        data = run.get("data") or {}
        info = run.get("info") or {}
        return Candidate(
            run_id=run_id,
            artifact_path=wanted,
            model_id=model_id,
            files=tuple(files),
            reader=reader,
            flavors=flavors,
            signature=signature,
            requirements=requirements,
            params=_pairs(data.get("params")),
            metrics={
                str(m.get("key")): float(m.get("value", 0.0))
                for m in data.get("metrics") or ()
                if isinstance(m, dict)
            },
            datasets=_datasets(run.get("inputs") or {}),
            tags=_pairs(data.get("tags")),
            experiment_id=str(info.get("experiment_id", "")),
            source_uri=artifact_uri,
        )

    # -- the registry --------------------------------------------------------------------------

    async def registered_model(self, name: str) -> RegisteredModel | None:
        """The registered model ``name``; ``None`` when there is none."""
        try:
            found = await self.request("GET", "registered-models/get", {"name": name})
        except RegistryRefused as exc:
            if exc.status == 404:
                return None
            raise
        return RegisteredModel.from_json(found.get("registered_model", {}))

    async def ensure_governed_model(self, name: str, team: str, model: str) -> RegisteredModel:
        """The registered model ``name``, created if missing, with the governed tags set."""
        tags = {GOVERNED_TAG: "true", TEAM_TAG: team, MODEL_TAG: model}
        existing = await self.registered_model(name)
        if existing is None:
            try:
                await self.request(
                    "POST",
                    "registered-models/create",
                    body={"name": name, "tags": [{"key": k, "value": v} for k, v in tags.items()]},
                )
            except RegistryRefused as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        else:
            for key, value in tags.items():
                if existing.tags.get(key) != value:
                    await self.request(
                        "POST",
                        "registered-models/set-tag",
                        body={"name": name, "key": key, "value": value},
                    )
        found = await self.registered_model(name)
        if found is None:
            raise RegistryUnavailable(f"MLflow did not keep the registered model {name}")
        return found

    async def create_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
    ) -> int:
        """A new version of ``name`` whose files are at ``source``; its number."""
        body: dict[str, Any] = {
            "name": name,
            "source": source,
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
        if run_id:
            body["run_id"] = run_id
        if description:
            body["description"] = description
        found = await self.request("POST", "model-versions/create", body=body)
        return int(found.get("model_version", {}).get("version", 0))

    async def delete_version(self, name: str, version: int) -> None:
        await self.request(
            "DELETE", "model-versions/delete", body={"name": name, "version": str(version)}
        )

    async def version(self, name: str, version: int) -> ModelVersion:
        """Version ``version`` of ``name``; ``RegistryRefused`` 404 when there is none."""
        found = await self.request(
            "GET", "model-versions/get", {"name": name, "version": str(version)}
        )
        return ModelVersion.from_json(found.get("model_version", {}))

    async def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, lowest number first."""
        found: list[ModelVersion] = []
        token = ""
        escaped = name.replace("'", "\\'")
        while True:
            query: dict[str, Any] = {"filter": f"name = '{escaped}'", "max_results": PAGE_SIZE}
            if token:
                query["page_token"] = token
            page = await self.request("GET", "model-versions/search", query)
            found.extend(ModelVersion.from_json(v) for v in page.get("model_versions") or ())
            token = str(page.get("next_page_token") or "")
            if not token:
                break
        return sorted(found, key=lambda v: v.version)

    async def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        await self.request(
            "POST",
            "model-versions/set-tag",
            body={"name": name, "version": str(version), "key": key, "value": value},
        )

    async def get_alias(self, name: str, alias: str) -> int | None:
        """The version ``alias`` points at; ``None`` when the alias is not set."""
        try:
            found = await self.request(
                "GET", "registered-models/alias", {"name": name, "alias": alias}
            )
        except RegistryRefused as exc:
            if _alias_missing(exc):
                return None
            raise
        return int(found.get("model_version", {}).get("version", 0)) or None

    async def set_alias(self, name: str, alias: str, version: int) -> None:
        await self.request(
            "POST",
            "registered-models/alias",
            body={"name": name, "alias": alias, "version": str(version)},
        )

    async def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from ``name``; nothing when it is not set."""
        try:
            await self.request(
                "DELETE", "registered-models/alias", body={"name": name, "alias": alias}
            )
        except RegistryRefused as exc:
            if not _alias_missing(exc):
                raise


def _alias_missing(exc: RegistryRefused) -> bool:
    """MLflow's answer for an alias that is not set: 404, or 400 "... alias ... not found"."""
    if exc.status == 404:
        return True
    return exc.status == 400 and "alias" in exc.message and "not found" in exc.message


def _pairs(items: Any) -> dict[str, str]:
    """``[{"key": k, "value": v}, ...]`` as a mapping."""
    return {
        str(item.get("key")): str(item.get("value", ""))
        for item in items or ()
        if isinstance(item, dict) and item.get("key") is not None
    }


def _datasets(inputs: Mapping[str, Any]) -> tuple[DatasetInput, ...]:
    found = []
    for entry in inputs.get("dataset_inputs") or ():
        dataset = entry.get("dataset") or {}
        tags = _pairs(entry.get("tags"))
        found.append(
            DatasetInput(
                name=str(dataset.get("name", "")),
                digest=str(dataset.get("digest", "")),
                source=_source(dataset.get("source")),
                source_type=str(dataset.get("source_type", "")),
                context=tags.get("mlflow.data.context", ""),
            )
        )
    return tuple(found)


def _source(raw: Any) -> str:
    """A dataset's source: the URI in MLflow's JSON source when it has one, else as given."""
    text = str(raw or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return text


def _error(body: bytes | None) -> tuple[str, str]:
    try:
        parsed = json.loads(body or b"")
    except ValueError:
        return "", (body or b"").decode(errors="replace")[:300]
    if isinstance(parsed, dict):
        return str(parsed.get("error_code", "")), str(parsed.get("message", ""))[:300]
    return "", str(parsed)[:300]
