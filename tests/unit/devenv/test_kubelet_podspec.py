"""The process kubelet's translation of a pod's container into a process: argv, environment,
working directory and mounts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from devenv.kubelet.env import ContainerConfigError, expand
from devenv.kubelet.podspec import (
    CONTAINER_MARKER,
    ContainerPlan,
    PodContext,
    StartError,
    inherited_environment,
    plan_container,
    rewrite_wildcard,
)
from devenv.kubelet.references import Lookups
from devenv.kubelet.volumes import VolumeSource

pytestmark = pytest.mark.unit

POD_IP = "127.10.0.7"
VENV_BIN = "/opt/venv/bin"

BASE_POD: dict[str, Any] = {
    "metadata": {
        "name": "jupyter-alice",
        "namespace": "team-a",
        "uid": "uid-1",
        "labels": {"app": "jupyterhub", "component": "singleuser-server"},
        "annotations": {"hub.jupyter.org/username": "alice"},
    },
    "spec": {
        "nodeName": "gpu-0",
        "serviceAccountName": "notebook",
        "containers": [
            {
                "name": "notebook",
                "image": "quay.io/jupyter/base-notebook:latest",
                "args": ["jupyterhub-singleuser"],
                "resources": {"limits": {"cpu": "2", "memory": "4Gi"}, "requests": {"cpu": "500m"}},
            }
        ],
    },
}


def make_pod(**container: Any) -> dict[str, Any]:
    pod = copy.deepcopy(BASE_POD)
    pod["spec"]["containers"][0].update(container)
    return pod


def context(**overrides: Any) -> PodContext:
    values: dict[str, Any] = {
        "pod_ip": POD_IP,
        "host_ip": "127.0.0.1",
        "home_dir": "/state/pods/team-a_jupyter-alice_uid-1/home",
        "service_host": "127.0.0.1",
        "service_port": "6443",
        "venv_bin": VENV_BIN,
        "host_path": "/usr/bin:/bin",
        "node_allocatable": {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "4"},
    }
    values.update(overrides)
    return PodContext(**values)


def plan(
    pod: dict[str, Any],
    lookups: Lookups | None = None,
    volumes: dict[str, VolumeSource] | None = None,
    ctx: PodContext | None = None,
) -> ContainerPlan:
    return plan_container(
        pod, pod["spec"]["containers"][0], lookups or Lookups(), volumes or {}, ctx or context()
    )


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        (["python", "-c", "print(1)"], None, ["python", "-c", "print(1)"]),
        (["python"], ["-m", "http.server"], ["python", "-m", "http.server"]),
        (None, ["jupyterhub-singleuser", "--debug"], ["jupyterhub-singleuser", "--debug"]),
        (["sh", "-c"], ["echo $(GREETING)"], ["sh", "-c", "echo hello"]),
        (["echo", "$$(GREETING)", "$(UNDEFINED)"], None, ["echo", "$(GREETING)", "$(UNDEFINED)"]),
    ],
)
def test_argv_is_command_then_args(
    command: list[str] | None, args: list[str] | None, argv: list[str]
) -> None:
    container: dict[str, Any] = {"env": [{"name": "GREETING", "value": "hello"}]}
    if command is not None:
        container["command"] = command
    container["args"] = args
    assert plan(make_pod(**container)).argv == argv


def test_container_without_command_or_args_cannot_start() -> None:
    with pytest.raises(StartError, match="neither command nor args"):
        plan(make_pod(args=None))


def test_image_is_recorded() -> None:
    assert plan(make_pod()).image == "quay.io/jupyter/base-notebook:latest"


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        ("0.0.0.0", POD_IP),
        ("http://0.0.0.0:8888/user/alice/", f"http://{POD_IP}:8888/user/alice/"),
        ("--ip=0.0.0.0", f"--ip={POD_IP}"),
        ("0.0.0.0:80,0.0.0.0:81", f"{POD_IP}:80,{POD_IP}:81"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("10.0.0.0.0", "10.0.0.0.0"),
        ("100.0.0.0", "100.0.0.0"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_wildcard_address_is_rewritten_to_pod_address(text: str, rewritten: str) -> None:
    assert rewrite_wildcard(text, POD_IP) == rewritten


def test_wildcard_rewritten_in_env_and_args_but_not_for_host_network() -> None:
    pod = make_pod(
        args=["jupyterhub-singleuser", "--ip=0.0.0.0"],
        env=[{"name": "JUPYTERHUB_SERVICE_URL", "value": "http://0.0.0.0:8888/user/alice/"}],
    )
    result = plan(pod)
    assert result.argv[1] == f"--ip={POD_IP}"
    assert result.env["JUPYTERHUB_SERVICE_URL"] == f"http://{POD_IP}:8888/user/alice/"
    host = plan(pod, ctx=context(pod_ip="127.0.0.1", rewrite_wildcard=False))
    assert host.argv[1] == "--ip=0.0.0.0"


def test_environment_basics() -> None:
    env = plan(make_pod()).env
    assert env["HOSTNAME"] == "jupyter-alice"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert env["PATH"] == f"{VENV_BIN}:/usr/bin:/bin"
    assert env["HOME"] == "/state/pods/team-a_jupyter-alice_uid-1/home"
    assert env[CONTAINER_MARKER] == "uid-1/notebook"


def test_pod_path_gets_the_venv_first_once() -> None:
    pod = make_pod(env=[{"name": "PATH", "value": f"/opt/conda/bin:{VENV_BIN}:/bin"}])
    assert plan(pod).env["PATH"] == f"{VENV_BIN}:/opt/conda/bin:/bin"


def test_inherited_rig_marker_overrides_pod_env() -> None:
    inherited = inherited_environment({"MLTEAMS_RIG": "rig-1", "SECRET_TOKEN": "x"})
    assert inherited == {"MLTEAMS_RIG": "rig-1"}
    pod = make_pod(env=[{"name": "MLTEAMS_RIG", "value": "pod"}])
    env = plan(pod, ctx=context(inherited=inherited)).env
    assert env["MLTEAMS_RIG"] == "rig-1"
    assert "SECRET_TOKEN" not in env


LOOKUPS = Lookups(
    secrets={"db": {"password": b"s3cret", "user": b"admin"}, "gone": None},
    config_maps={"settings": {"LEVEL": b"debug", "bad=key": b"x"}, "absent": None},
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"secretKeyRef": {"name": "db", "key": "password"}}, "s3cret"),
        ({"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}, "debug"),
        ({"fieldRef": {"fieldPath": "metadata.name"}}, "jupyter-alice"),
        ({"fieldRef": {"fieldPath": "metadata.namespace"}}, "team-a"),
        ({"fieldRef": {"fieldPath": "metadata.uid"}}, "uid-1"),
        ({"fieldRef": {"fieldPath": "metadata.labels['component']"}}, "singleuser-server"),
        ({"fieldRef": {"fieldPath": "metadata.labels['missing']"}}, ""),
        ({"fieldRef": {"fieldPath": "metadata.annotations['hub.jupyter.org/username']"}}, "alice"),
        ({"fieldRef": {"fieldPath": "spec.nodeName"}}, "gpu-0"),
        ({"fieldRef": {"fieldPath": "spec.serviceAccountName"}}, "notebook"),
        ({"fieldRef": {"fieldPath": "status.podIP"}}, POD_IP),
        ({"fieldRef": {"fieldPath": "status.hostIP"}}, "127.0.0.1"),
        ({"resourceFieldRef": {"resource": "limits.cpu"}}, "2"),
        ({"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}, "500"),
        ({"resourceFieldRef": {"resource": "requests.cpu"}}, "1"),
        ({"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}, "4096"),
        ({"resourceFieldRef": {"resource": "requests.memory"}}, str(4 * 2**30)),
        ({"resourceFieldRef": {"resource": "limits.nvidia.com/gpu"}}, "4"),
    ],
)
def test_env_value_from(source: dict[str, Any], expected: str) -> None:
    pod = make_pod(env=[{"name": "VALUE", "valueFrom": source}])
    assert plan(pod, LOOKUPS).env["VALUE"] == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"secretKeyRef": {"name": "gone", "key": "password"}}, 'secret "gone" not found'),
        ({"secretKeyRef": {"name": "db", "key": "nope"}}, "couldn't find key nope in secret db"),
        ({"configMapKeyRef": {"name": "absent", "key": "x"}}, 'configmap "absent" not found'),
        ({"fieldRef": {"fieldPath": "spec.containers"}}, "unsupported fieldRef"),
    ],
)
def test_missing_required_reference_is_a_config_error(source: dict[str, Any], message: str) -> None:
    pod = make_pod(env=[{"name": "VALUE", "valueFrom": source}])
    with pytest.raises(ContainerConfigError, match=message):
        plan(pod, LOOKUPS)


@pytest.mark.parametrize(
    "source",
    [
        {"secretKeyRef": {"name": "gone", "key": "password", "optional": True}},
        {"secretKeyRef": {"name": "db", "key": "nope", "optional": True}},
        {"configMapKeyRef": {"name": "absent", "key": "x", "optional": True}},
    ],
)
def test_missing_optional_reference_leaves_variable_unset(source: dict[str, Any]) -> None:
    pod = make_pod(env=[{"name": "VALUE", "valueFrom": source}])
    assert "VALUE" not in plan(pod, LOOKUPS).env


def test_env_from_then_env_with_expansion() -> None:
    pod = make_pod(
        envFrom=[
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "db"}, "prefix": "DB_"},
            {"secretRef": {"name": "gone", "optional": True}},
        ],
        env=[
            {"name": "LEVEL", "value": "info"},
            {"name": "DSN", "value": "postgres://$(DB_user):$(DB_password)@db/$(LEVEL)"},
        ],
    )
    env = plan(pod, LOOKUPS).env
    assert env["DB_user"] == "admin"
    assert env["LEVEL"] == "info"
    assert env["DSN"] == "postgres://admin:s3cret@db/info"
    assert "bad=key" not in env


def test_env_from_missing_required_source() -> None:
    pod = make_pod(envFrom=[{"configMapRef": {"name": "absent"}}])
    with pytest.raises(ContainerConfigError, match='configmap "absent" not found'):
        plan(pod, LOOKUPS)


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)-$(B)", "1-2"),
        ("$$(A)", "$(A)"),
        ("$(C)", "$(C)"),
        ("$A", "$A"),
        ("$$$(A)", "$1"),
    ],
)
def test_expand(text: str, expanded: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expanded


VOLUMES = {
    "home": VolumeSource("home", Path("/state/pvc/team-a/claim-alice")),
    "config": VolumeSource("config", Path("/state/pods/p/volumes/config"), read_only=True),
    "scratch": VolumeSource("scratch", Path("/state/pods/p/volumes/scratch")),
}


def test_mounts_with_sub_path_read_only_and_parents_first() -> None:
    pod = make_pod(
        env=[{"name": "USER_DIR", "value": "alice"}],
        volumeMounts=[
            {"name": "scratch", "mountPath": "/home/jovyan/scratch", "readOnly": True},
            {"name": "home", "mountPath": "/home/jovyan"},
            {
                "name": "config",
                "mountPath": "/etc/jupyter/jupyter_server_config.py",
                "subPath": "jupyter_server_config.py",
            },
            {"name": "home", "mountPath": "/data/alice", "subPathExpr": "$(USER_DIR)"},
        ],
    )
    mounts = [(m.source, m.target, m.read_only) for m in plan(pod, volumes=VOLUMES).mounts]
    assert mounts == [
        ("/state/pvc/team-a/claim-alice", "/home/jovyan", False),
        ("/state/pvc/team-a/claim-alice/alice", "/data/alice", False),
        ("/state/pods/p/volumes/scratch", "/home/jovyan/scratch", True),
        (
            "/state/pods/p/volumes/config/jupyter_server_config.py",
            "/etc/jupyter/jupyter_server_config.py",
            True,
        ),
    ]


def test_home_and_working_dir_follow_a_home_volume() -> None:
    pod = make_pod(volumeMounts=[{"name": "home", "mountPath": "/home/jovyan"}])
    result = plan(pod, volumes=VOLUMES)
    assert result.env["HOME"] == "/home/jovyan"
    assert result.cwd == "/home/jovyan"
    explicit = make_pod(workingDir="/srv", env=[{"name": "HOME", "value": "/srv/home"}])
    result = plan(explicit)
    assert (result.env["HOME"], result.cwd) == ("/srv/home", "/srv")


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        ({"name": "nope", "mountPath": "/x"}, "names no volume"),
        ({"name": "home", "mountPath": "/x", "subPath": "../escape"}, "relative path"),
        ({"name": "home", "mountPath": "/x", "subPath": "/abs"}, "relative path"),
    ],
)
def test_invalid_mounts(mount: dict[str, Any], message: str) -> None:
    with pytest.raises(StartError, match=message):
        plan(make_pod(volumeMounts=[mount]), volumes=VOLUMES)
