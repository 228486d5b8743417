"""Shared fixtures: the local platform, started once per test session, and the leak check.

Every process the suite starts carries ``MLTEAMS_RIG=<session id>`` in its environment (the
pytest process sets it, so children inherit it). After the session, any process still
carrying it fails the run and is listed and ended.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from devenv.cluster import LocalCluster
from devenv.demo import DEMO_TEAMS, demo_team_secrets
from devenv.hub import LocalHub
from devenv.kubeapi import ensure_namespace
from devenv.mlflow_server import MLflowServer
from devenv.object_store import ObjectStore
from devenv.oidc import DEMO_USERS, LocalOIDC, OIDCUser
from devenv.postgres import LocalPostgres
from devenv.procs import MARKER, ProcessGroup, free_port, processes_with_marker
from devenv.team_data import publish_team_keys
from hub_ext.service.store import Store
from tests.integration.team_data import GOVERNED_BUCKET, TeamData, prepare_team_data
from tests.kube_helpers import poll

# every HTTP response the suite receives, recorded for the secrets check (tests/security)
pytest_plugins = ["tests.security.collector"]

RIG_ID = f"pytest-{uuid.uuid4().hex[:12]}"
os.environ[MARKER] = RIG_ID
RESULTS_DIR = Path(__file__).resolve().parent.parent / "test-results"


@pytest.fixture(scope="session")
def results_dir() -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    return RESULTS_DIR


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real control plane plus the process kubelet, shared by the whole session."""
    rig = LocalCluster(tmp_path_factory.mktemp("cluster"), rig_id=RIG_ID)
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()


@pytest.fixture(scope="session")
def hub(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """JupyterHub with stock KubeSpawner, spawning into namespace ``jupyterhub`` on the rig."""
    assert cluster.control_plane is not None
    ensure_namespace(cluster.api, "jupyterhub")
    local_hub = LocalHub(
        tmp_path_factory.mktemp("hub"), cluster.kubeconfig, cluster.control_plane.procs
    )
    try:
        local_hub.start()
        yield local_hub
    finally:
        local_hub.stop()


TEAM_CONFIG = Path(__file__).resolve().parent / "integration" / "team_config.yaml"
TEAM_USERS = {
    "vision-engineers": [
        "v-alice",
        "v-dora",
        "v-panel",
        "v-gpu",
        *[f"v-{i:02d}" for i in range(20)],
    ],
    "nlp-engineers": ["n-bob", "n-erin", "both-carol"],
    "vision-leads": ["v-lead"],
    "nlp-leads": ["n-lead"],
}
TEAM_USERS["vision-engineers"].append("both-carol")


@pytest.fixture(scope="session")
def team_data(
    cluster: LocalCluster, object_store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> TeamData:
    """Buckets, read-only keys (as Secrets in the team namespaces) and a shared volume."""
    return prepare_team_data(cluster.api, object_store, tmp_path_factory.mktemp("team-data"))


@pytest.fixture(scope="session")
def team_hub(
    cluster: LocalCluster,
    team_data: TeamData,
    mlflow_server: MLflowServer,
    hub_api_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalHub]:
    """JupyterHub with TeamKubeSpawner and the teams of ``integration/team_config.yaml``,
    tracking to the MLflow server and reading datasets from the object store."""
    assert cluster.control_plane is not None
    groups = {name: {"users": users} for name, users in TEAM_USERS.items()}
    local_hub = LocalHub(
        tmp_path_factory.mktemp("team-hub"),
        cluster.kubeconfig,
        cluster.control_plane.procs,
        hub_port=hub_api_port,
        extra_env={
            "MLTEAMS_HUB_SPAWNER": "mlteams",
            "MLTEAMS_TEAMS_FILE": str(TEAM_CONFIG),
            "MLTEAMS_HUB_GROUPS": json.dumps(groups),
            "MLTEAMS_HUB_CLEANUP_SERVERS": "0",
            "MLTEAMS_TRACKING_URI": mlflow_server.url,
            "MLTEAMS_OBJECT_STORE_URL": team_data.store.endpoint_url,
            # the mlteams service's promotion settings (docs/admin/promotion.md)
            **promotion_env(mlflow_server, team_data),
        },
    )
    try:
        local_hub.start()
        yield local_hub
    finally:
        local_hub.stop()


def promotion_env(mlflow_server: MLflowServer, team_data: TeamData) -> dict[str, str]:
    """The promotion service's settings on the rig: the registry as the MLflow server's admin,
    the object store's root user for the governed bucket and the evaluation sets."""
    root = team_data.store.root_credentials
    return {
        "MLTEAMS_REGISTRY_URL": mlflow_server.url,
        "MLTEAMS_REGISTRY_USERNAME": mlflow_server.admin_username,
        "MLTEAMS_REGISTRY_PASSWORD": mlflow_server.admin_password,
        "MLTEAMS_OBJECT_STORE_ENDPOINT": team_data.store.endpoint_url,
        "MLTEAMS_OBJECT_STORE_KEY_ID": root.access_key,
        "MLTEAMS_OBJECT_STORE_SECRET_KEY": root.secret_key,
        "MLTEAMS_GOVERNED_ROOT": f"s3://{GOVERNED_BUCKET}",
    }


@pytest.fixture(scope="session")
def hub_api_port() -> int:
    """The team hub's own port, chosen before MLflow starts: MLflow checks hub tokens there."""
    return free_port()


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, hub_api_port: int
) -> Iterator[MLflowServer]:
    """A real MLflow tracking server with a sqlite backend on a free loopback port, with the
    mlteams plugin: JupyterHub tokens of the team hub, basic auth for its admin (the promotion
    service's user)."""
    state = tmp_path_factory.mktemp("mlflow")
    procs = ProcessGroup(RIG_ID, state / "logs")
    server = MLflowServer(state, procs, hub_api_url=f"http://127.0.0.1:{hub_api_port}/hub/api")
    try:
        server.start()
        yield server
    finally:
        procs.stop_all()


@pytest.fixture
def mlflow_admin(mlflow_server: MLflowServer, monkeypatch: pytest.MonkeyPatch) -> MLflowServer:
    """MLflow clients of this test (and the kernels and servers it starts with this process's
    environment) sign in to the rig's MLflow as its admin."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_server.admin_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_server.admin_password)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    return mlflow_server


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """A real S3-compatible object store (MinIO) on a free loopback port; add teams with
    ``add_team`` to get a bucket and a read-only key pair per team."""
    state = tmp_path_factory.mktemp("objectstore")
    procs = ProcessGroup(RIG_ID, state / "logs")
    store = ObjectStore(state, procs)
    try:
        store.start()
        yield store
    finally:
        procs.stop_all()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server on a free loopback port (its folder outside pytest's own, which
    the ``postgres`` user PostgreSQL runs as cannot enter)."""
    state = Path(tempfile.mkdtemp(prefix="mlteams-postgres-"))
    os.chmod(state, 0o755)
    procs = ProcessGroup(RIG_ID, state / "logs")
    server = LocalPostgres(state, procs)
    try:
        server.start()
        yield server
    finally:
        procs.stop_all()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def postgres_store(postgres: LocalPostgres) -> Iterator[Store]:
    """The service's database on the PostgreSQL server, emptied and migrated from nothing."""
    opened = Store(postgres.url)
    with opened.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    opened.migrate()
    yield opened
    opened.close()


AUTH_TEST_USERS = [
    OIDCUser("erin", ["vision"]),
    OIDCUser("frank", ["vision"]),
    OIDCUser("gina", ["nlp"]),
    OIDCUser("hugo", ["nlp"]),
]


@dataclass
class OIDCHub:
    """A hub with TeamOAuthenticator and the local OIDC provider it trusts."""

    hub: LocalHub
    oidc: LocalOIDC

    @property
    def url(self) -> str:
        return self.hub.url


@pytest.fixture(scope="session")
def oidc_hub(
    cluster: LocalCluster, object_store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OIDCHub]:
    """TeamKubeSpawner with the demo's teams, logging in through the local OIDC provider."""
    assert cluster.control_plane is not None
    # the Secrets the demo catalog names, so that the demo teams' servers can start
    publish_team_keys(cluster.api, object_store, demo_team_secrets())
    state = tmp_path_factory.mktemp("oidc-hub")
    port = free_port()
    oidc = LocalOIDC(
        state / "oidc",
        cluster.control_plane.procs,
        [f"http://127.0.0.1:{port}/hub/oauth_callback"],
        users=[*DEMO_USERS, *AUTH_TEST_USERS],
    )
    local_hub = LocalHub(state / "hub", cluster.kubeconfig, cluster.control_plane.procs)
    try:
        oidc.start()
        local_hub.public_port = port
        local_hub.extra_env = {
            **oidc.hub_env(),
            "MLTEAMS_HUB_SPAWNER": "mlteams",
            "MLTEAMS_TEAMS_FILE": str(DEMO_TEAMS),
            "MLTEAMS_HUB_AUTH_REFRESH_AGE": "2",
        }
        local_hub.start()
        yield OIDCHub(local_hub, oidc)
    finally:
        local_hub.stop()
        oidc.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = poll(
        lambda: processes_with_marker(RIG_ID), lambda found: not found, timeout=15, interval=0.5
    )
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  pid {pid}: {cmd[:200]}" for pid, cmd in left]
    message = "processes started by the test suite are still running:\n" + "\n".join(lines)
    if reporter:
        reporter.write_line(message, red=True)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
