"""The fault rig: a control plane, a process kubelet and team hubs of its own, so that a fault
injected here (a hub killed, the apiserver stopped, the kubelet restarted) cannot reach the
session's platform; and the checks every fault test ends with: what the hub's ledger holds
against what the cluster runs, per team."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from devenv.kubelet.processes import kill_marked
from devenv.procs import process_stats
from tests.integration.sharing_helpers import signed_in
from tests.kube_helpers import poll, wait_for

FAULT_TEAMS = Path(__file__).resolve().parent / "fault_teams.yaml"
_CONFIG = yaml.safe_load(FAULT_TEAMS.read_text())
NAMESPACES: dict[str, str] = {name: t["namespace"] for name, t in _CONFIG["teams"].items()}
QUOTAS: dict[str, int] = {name: t["quota"]["gpus"] for name, t in _CONFIG["teams"].items()}
USERS: dict[str, list[str]] = {
    "alpha": [f"a-{i:02d}" for i in range(14)],
    "beta": [f"b-{i:02d}" for i in range(8)],
}
GROUPS = {f"{team}-engineers": {"users": users} for team, users in USERS.items()}
GPU_RESOURCE = "nvidia.com/gpu"
TEAM_LABEL = "mlteams.io/team"
USER_LABEL = "mlteams.io/user"
# a server that answers HTTP at once: the hub's readiness check accepts any answer, and twenty
# of them start in seconds on a loaded machine
STAND_IN_SERVER = [sys.executable, "-m", "http.server", "8888", "--bind", "0.0.0.0"]


def start_cluster(state_dir: Path, rig_id: str) -> LocalCluster:
    """Control plane and process kubelet; the kubelet leaves its pods running when it exits, as
    a real kubelet leaves its containers, so a restarted kubelet adopts them."""
    cluster = LocalCluster(state_dir, rig_id=rig_id, with_kubelet=False, with_serving=False)
    cluster.start()
    try:
        cluster.start_kubelet(on_exit="keep")
        cluster.wait_nodes_ready()
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: LocalCluster) -> None:
    """Stop the kubelet, then every container process it left, then the control plane."""
    cluster.stop_kubelet()
    for record in (cluster.state_dir / "kubelet").glob("pods/*/record.json"):
        data = json.loads(record.read_text())
        for name in data.get("containers", {}):
            kill_marked(f"{data['uid']}/{name}")
    cluster.stop()


def new_hub(
    cluster: LocalCluster,
    state_dir: Path,
    *,
    stand_in_servers: bool,
    extra_env: dict[str, str] | None = None,
) -> LocalHub:
    """A hub with TeamKubeSpawner and the fault rig's teams (not started). Its servers are
    Jupyter servers, or ``STAND_IN_SERVER`` with a home that goes with the pod."""
    assert cluster.control_plane is not None
    env = {
        "MLTEAMS_HUB_SPAWNER": "mlteams",
        "MLTEAMS_TEAMS_FILE": str(FAULT_TEAMS),
        "MLTEAMS_HUB_GROUPS": json.dumps(GROUPS),
    }
    if stand_in_servers:
        env["MLTEAMS_HUB_SERVER_CMD"] = json.dumps(STAND_IN_SERVER)
        env["MLTEAMS_HUB_HOME"] = "scratch"
    env.update(extra_env or {})
    return LocalHub(state_dir, cluster.kubeconfig, cluster.control_plane.procs, extra_env=env)


def process_children(pid: int) -> list[int]:
    """The live direct children of ``pid``."""
    return [p.pid for p in process_stats() if p.live and p.ppid == pid]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def kill_hub(hub: LocalHub) -> list[int]:
    """SIGKILL the hub process alone; the pids of its children (proxy, services) at that moment."""
    assert hub.child is not None and hub.child.alive()
    children = process_children(hub.child.pid)
    os.kill(hub.child.pid, signal.SIGKILL)
    hub.child.popen.wait(30)
    hub.procs.stop_child(hub.child)
    hub.child = None
    return children


def end_processes(pids: Iterable[int]) -> None:
    """SIGKILL each of ``pids`` still alive (processes this rig started)."""
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@dataclass
class TeamCount:
    """One team's GPUs: what the hub's ledger says, and what the apiserver holds."""

    team: str
    ledger_used: int
    pod_gpus: int
    quota: int


def team_pods(cluster: LocalCluster, team: str) -> list[dict[str, Any]]:
    """The team namespace's server pods that are not on their way out."""
    pods = cluster.api.get(f"/api/v1/namespaces/{NAMESPACES[team]}/pods")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def pod_gpus(pod: dict[str, Any]) -> int:
    total = 0
    for container in pod["spec"]["containers"]:
        requests = (container.get("resources") or {}).get("requests") or {}
        total += int(requests.get(GPU_RESOURCE, 0))
    return total


def hub_users(hub: LocalHub) -> dict[str, dict[str, Any]]:
    """Every user's model from the hub's API, by name."""
    status, body = hub.call("GET", "/users?limit=200")
    assert status == 200, body
    users = body["items"] if isinstance(body, dict) else body
    return {u["name"]: u for u in users}


FORM_FIGURE = re.compile(r"team (\w+): (\d+) of (\d+) GPUs? free")
# a member of each team who never spawns: the form shows them the team's live figures
FORM_READERS = {team: users[-1] for team, users in USERS.items()}


def ledger_used(hub: LocalHub, team: str) -> int:
    """The GPUs of ``team`` the hub's admission counts as held (pods and reservations), from
    the spawn form's "team T: N of M GPUs free" line, as a member of the team reads it."""
    with signed_in(hub, FORM_READERS[team]) as session:
        form = session.get(f"{hub.url}/hub/spawn", timeout=60).text
    for name, free, total in FORM_FIGURE.findall(form):
        if name == team:
            return int(total) - int(free)
    raise AssertionError(f"no GPU figure of team {team} on the spawn form: {form[:2000]}")


def counts(cluster: LocalCluster, hub: LocalHub) -> dict[str, TeamCount]:
    return {
        team: TeamCount(
            team,
            ledger_used(hub, team),
            sum(pod_gpus(p) for p in team_pods(cluster, team)),
            QUOTAS[team],
        )
        for team in NAMESPACES
    }


def orphans(cluster: LocalCluster, hub: LocalHub) -> list[str]:
    """Team pods whose user has no server the hub reports (running or starting)."""
    users = hub_users(hub)
    found = []
    for team in NAMESPACES:
        for pod in team_pods(cluster, team):
            user = pod["metadata"].get("labels", {}).get(USER_LABEL, "")
            if "" not in users.get(user, {}).get("servers", {}):
                found.append(f"{NAMESPACES[team]}/{pod['metadata']['name']}")
    return found


def wait_no_orphans(cluster: LocalCluster, hub: LocalHub, timeout: float) -> None:
    left = poll(lambda: orphans(cluster, hub), lambda o: not o, timeout=timeout, interval=1)
    assert not left, f"pods no server of the hub owns, still there after {timeout:.0f}s: {left}"


def progress_events(hub: LocalHub, user: str) -> list[dict[str, Any]]:
    """The events of the server's progress stream, for a spawn that is no longer pending."""
    status, body = hub.request("GET", f"/hub/api/users/{user}/server/progress", timeout=30)
    assert status == 200, (user, status, body)
    text = body if isinstance(body, str) else json.dumps(body)
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def quota_used_gpus(cluster: LocalCluster, team: str) -> int:
    """The GPUs Kubernetes' own ResourceQuota of ``team``'s namespace counts as used."""
    quotas = cluster.api.get(f"/api/v1/namespaces/{NAMESPACES[team]}/resourcequotas")["items"]
    key = f"requests.{GPU_RESOURCE}"
    return sum(int(((q.get("status") or {}).get("used") or {}).get(key, 0)) for q in quotas)


def wait_quota_settled(cluster: LocalCluster, timeout: float = 120) -> None:
    """Wait until no team pod is terminating and each namespace's ResourceQuota counts exactly
    its pods' GPUs. Kubernetes counts a deleted pod until the pod object is removed and its
    quota controller has recounted; a burst before that is refused by the quota backstop."""

    def unsettled() -> dict[str, tuple[int, int, int]]:
        found = {}
        for team, namespace in NAMESPACES.items():
            pods = cluster.api.get(f"/api/v1/namespaces/{namespace}/pods")["items"]
            terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp"))
            held = sum(pod_gpus(p) for p in pods)
            used = quota_used_gpus(cluster, team)
            if terminating or used != held:
                found[team] = (terminating, held, used)
        return found

    left = poll(unsettled, lambda found: not found, timeout=timeout, interval=1)
    assert not left, f"(terminating pods, pod GPUs, quota's used GPUs) per team: {left}"


def stop_servers(cluster: LocalCluster, hub: LocalHub, users: Iterable[str]) -> None:
    """Stop ``users``' servers and wait until no team pod is left and the quotas are recounted."""
    for user in users:
        hub.call("DELETE", f"/users/{user}/server")
    wait_for(
        lambda: not any(team_pods(cluster, team) for team in NAMESPACES),
        timeout=120,
        what="every server pod gone",
    )
    wait_quota_settled(cluster)


def within_quota(cluster: LocalCluster) -> None:
    for team, quota in QUOTAS.items():
        held = sum(pod_gpus(p) for p in team_pods(cluster, team))
        assert held <= quota, f"team {team} holds {held} GPUs, over its quota of {quota}"


def ledger_matches_cluster(cluster: LocalCluster, hub: LocalHub) -> dict[str, TeamCount]:
    """Wait until each team's GPUs on the spawn form equal its pods' GPUs in the apiserver."""
    last = poll(
        lambda: counts(cluster, hub),
        lambda found: all(c.ledger_used == c.pod_gpus for c in found.values()),
        timeout=60,
        interval=2,
    )
    assert all(c.ledger_used == c.pod_gpus for c in last.values()), last
    for count in last.values():
        assert count.pod_gpus <= count.quota, count
    return last
