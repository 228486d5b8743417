"""Properties of admission, the ledger and the queue for any interleaving of actions.

A Hypothesis state machine drives one configuration through spawn requests, server starts and
stops, queue scans, cancellations and expiries, whole-team quota overrides and per-user GPU
grants, and checks after every step that:

- an admission never takes a team over the quota in effect (GPUs, CPU, memory) nor a user over
  their per-user cap plus their own grant, and a GPU spawn never overtakes the team's queue;
- the ledger's team and user totals are exactly the sum of what the running servers were
  given, each server counted once whether it is a reservation, a pod or both, so a release
  gives back exactly what was taken and an empty platform holds nothing;
- each team's queue is first in, first out: positions count from 1 in enqueue order, a scan
  admits and drops only from the front of a line and leaves the rest in order.

Quotas may shrink below what is held (an admin lowers them while servers run); the invariant is
then that nothing more is admitted in that team until usage is back under the quota.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from hub_ext.policy import (
    Decision,
    Ledger,
    MLTeamsConfig,
    PodSummary,
    Reservation,
    SpawnQueue,
    SpawnRequest,
    Usage,
    decide,
    decide_and_reserve,
    load_config,
)
from hub_ext.policy.config import Quota, QuotaOverride
from hub_ext.policy.queue import WAITING_REASONS
from tests.unit.policy.properties import property_settings

pytestmark = pytest.mark.unit

GIB = 2**30
TEAMS = ("alpha", "beta")
USERS = ("ada", "bob", "cy")
SERVER_NAMES = ("", "gpu")
PROFILES = ("cpu", "one", "two", "flex", "big", "solo")


PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "cpu": {"image": "img:1", "cpu": 2, "memory": "8Gi"},
    "one": {
        "image": "img:1",
        "gpus": 1,
        "cpu": 4,
        "memory": "16Gi",
        "queue": {"enabled": True, "max_wait_seconds": 120},
    },
    "two": {"image": "img:1", "gpus": 2, "cpu": "8", "memory": "16Gi"},
    "flex": {
        "image": "img:1",
        "gpus": {"min": 1, "max": 3, "default": 1},
        "cpu": 1,
        "queue": {"enabled": True, "max_wait_seconds": 600},
    },
    "big": {"image": "img:1", "gpus": 4, "queue": {"enabled": True}},
    "solo": {"image": "img:1", "gpus": 1, "memory": "4Gi"},
}
# the fewest GPUs, the CPU cores and the GiB of memory each profile needs
PROFILE_NEEDS = {
    "cpu": (0, 2, 8),
    "one": (1, 4, 16),
    "two": (2, 8, 16),
    "flex": (1, 1, 0),
    "big": (4, 0, 0),
    "solo": (1, 0, 4),
}
CPU_CHOICES = {None: None, "6": 6, "12": 12, "40": 40}
MEMORY_CHOICES = {None: None, "24Gi": 24, "64Gi": 64, "1Ti": 1024}


def _team(draw: st.DrawFn, name: str, wanted: tuple[str, ...]) -> dict[str, Any]:
    """A team with a drawn quota and those of ``wanted`` profiles the quota can ever fit (the
    configuration refuses a team a profile none of its members could start)."""
    gpus = draw(st.sampled_from([1, 2, 2, 3, 4, 6, 0]))
    per_user = draw(st.sampled_from([gpus, gpus, min(gpus, 1), max(gpus - 1, 0)]))
    cpu = draw(st.sampled_from(sorted(CPU_CHOICES, key=str)))
    memory = draw(st.sampled_from(sorted(MEMORY_CHOICES, key=str)))
    quota: dict[str, Any] = {"gpus": gpus, "gpus_per_user": per_user}
    if cpu is not None:
        quota["cpu"] = cpu
    if memory is not None:
        quota["memory"] = memory
    cores, gib = CPU_CHOICES[cpu], MEMORY_CHOICES[memory]
    profiles = [
        profile
        for profile in wanted
        if PROFILE_NEEDS[profile][0] <= per_user
        and (cores is None or PROFILE_NEEDS[profile][1] <= cores)
        and (gib is None or PROFILE_NEEDS[profile][2] <= gib)
    ]
    return {"groups": [name], "quota": quota, "profiles": profiles}


@st.composite
def configs(draw: st.DrawFn) -> MLTeamsConfig:
    """A configuration of two teams with drawn quotas and profiles of every kind: CPU only,
    fixed GPU counts with and without queueing, and a GPU range."""
    raw = {
        "teams": {
            "alpha": _team(draw, "alpha", ("cpu", "one", "two", "flex", "big")),
            "beta": _team(draw, "beta", ("cpu", "one", "flex", "solo")),
        },
        "profiles": copy.deepcopy(PROFILE_SETTINGS),
    }
    return load_config(raw)


@st.composite
def overrides(draw: st.DrawFn) -> QuotaOverride | None:
    """A whole-team override (any subset of GPUs, GPUs per user, CPU and memory) or none."""
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    gpus = draw(st.none() | st.integers(0, 8))
    per_user = draw(st.none() | st.integers(0, 8 if gpus is None else gpus))
    cpu = draw(st.none() | st.sampled_from([0, 3000, 8000, 64000]))
    memory = draw(st.none() | st.sampled_from([0, 20 * GIB, 100 * GIB]))
    return QuotaOverride(gpus=gpus, gpus_per_user=per_user, cpu=cpu, memory=memory)


@dataclass(frozen=True)
class Running:
    """A server the machine admitted: its reservation, and whether its pod has started."""

    reservation: Reservation
    pod: PodSummary | None = None


def _pod_for(reservation: Reservation, phase: str) -> PodSummary:
    user, _, name = reservation.server.partition("/")
    return PodSummary(
        namespace=f"team-{reservation.team}",
        name=f"jupyter-{user}-{name or 'default'}",
        team=reservation.team,
        user=reservation.user,
        profile=reservation.profile,
        server=reservation.server,
        gpus=reservation.gpus,
        cpu=reservation.cpu,
        memory=reservation.memory,
        phase=phase,
    )


class AdmissionMachine(RuleBasedStateMachine):
    """Spawns, stops, queue scans, overrides and grants in any order, against one ledger."""

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.config: MLTeamsConfig = load_config({"teams": {}, "profiles": {}})
        self.ledger = Ledger()
        self.queue = SpawnQueue()
        self.running: dict[str, Running] = {}
        self.lines: dict[str, list[str]] = {team: [] for team in TEAMS}
        self.grants: dict[tuple[str, str], int] = {}
        self.now = 0.0

    @initialize(config=configs())
    def load(self, config: MLTeamsConfig) -> None:
        self.config = config

    # -- actions -----------------------------------------------------------------------------

    @rule(
        target=requests,
        user=st.sampled_from(USERS),
        team=st.sampled_from((*TEAMS, *TEAMS, *TEAMS, "gamma")),
        profile=st.sampled_from((*PROFILES, "one", "flex", "big", "missing")),
        server_name=st.sampled_from(SERVER_NAMES),
        gpus=st.sampled_from([None, None, None, 0, 1, 2, 3, 5]),
    )
    def spawn(
        self, user: str, team: str, profile: str, server_name: str, gpus: int | None
    ) -> SpawnRequest:
        """A user asks for any server, in any team (known or not) with any profile."""
        return self._spawn(SpawnRequest(user, team, profile, server_name, gpus))

    @rule(
        target=requests,
        user=st.sampled_from(USERS),
        server_name=st.sampled_from(SERVER_NAMES),
        data=st.data(),
    )
    def spawn_in_team(self, user: str, server_name: str, data: st.DataObject) -> SpawnRequest:
        """A user asks for a server with one of their team's profiles, at its default GPUs."""
        team = data.draw(st.sampled_from(TEAMS))
        profile = data.draw(st.sampled_from(self.config.teams[team].profiles))
        return self._spawn(SpawnRequest(user, team, profile, server_name))

    def _spawn(self, request: SpawnRequest) -> SpawnRequest:
        """An admitted spawn is reserved, a queued one enqueued, a rejected one takes nothing."""
        team, user, profile = request.team, request.user, request.profile
        if request.server in self.running or request.server in self.queue:
            # the hub never spawns a server that is running or already waiting
            return request
        before_team = self.ledger.team_usage(team)
        before_user = self.ledger.user_usage(team, user)
        waiting_ahead = self.queue.ahead_of(team, request.server)
        decision = decide_and_reserve(
            self.config, self.ledger, request, now=self.now, queue=self.queue
        )
        event(f"spawn: {decision.outcome.value} {decision.reason.value if decision.reason else ''}")
        if decision.admitted:
            if decision.gpus:
                assert waiting_ahead == 0, "a GPU spawn overtook the team's queue"
            self._admitted(decision)
            assert self.ledger.team_usage(team) == before_team + decision.reservation(0).usage
            assert self.ledger.user_usage(team, user) == before_user + Usage(
                decision.gpus, decision.cpu, decision.memory, 1
            )
        else:
            assert self.ledger.team_usage(team) == before_team, "a refusal took resources"
            if decision.queued:
                assert decision.reason in WAITING_REASONS
                assert self.config.profiles[profile].queue.enabled
                entry = self.queue.enqueue(self.config, decision, now=self.now)
                assert entry.gpus == decision.gpus > 0
                self.lines[team].append(request.server)
        return request

    @rule(request=requests)
    def decide_again(self, request: SpawnRequest) -> None:
        """Deciding for a server that already holds resources gives the same answer as deciding
        for it on a ledger without it: its own reservation and pod are not counted against it."""
        if request.server not in self.running:
            return
        without = Ledger.from_pods(
            [
                held.pod
                for server, held in self.running.items()
                if held.pod and server != request.server
            ],
            [
                reservation
                for server, held in self.running.items()
                if server != request.server
                and (reservation := self.ledger.reservation(server)) is not None
            ],
            overrides={team: o for team in TEAMS if (o := self.ledger.quota_override(team))},
        )
        without.set_user_grants(self.grants)
        assert decide(self.config, self.ledger, request) == decide(self.config, without, request)

    @rule(data=st.data())
    def start_pod(self, data: st.DataObject) -> None:
        """A reserved server's pod appears; it is counted once with its reservation."""
        pending = sorted(server for server, held in self.running.items() if held.pod is None)
        if not pending:
            return
        server = data.draw(st.sampled_from(pending))
        held = self.running[server]
        pod = _pod_for(held.reservation, data.draw(st.sampled_from(["Pending", "Running"])))
        self.ledger.upsert_pod(pod)
        self.running[server] = Running(held.reservation, pod)
        if data.draw(st.booleans()):
            # once the pod runs, the hub may drop the reservation: the pod alone counts
            self.ledger.release(server)

    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        """A server stops: its reservation is released and its pod deleted; the totals go down
        by exactly what it held."""
        if not self.running:
            return
        server = data.draw(st.sampled_from(sorted(self.running)))
        held = self.running.pop(server)
        team, user = held.reservation.team, held.reservation.user
        before_team = self.ledger.team_usage(team)
        before_user = self.ledger.user_usage(team, user)
        released = self.ledger.release(server)
        assert released is None or released == held.reservation
        if held.pod is not None:
            if data.draw(st.booleans()):
                # the pod finishes before it is deleted: a terminal pod holds nothing
                self.ledger.upsert_pod(_pod_for(held.reservation, "Succeeded"))
            self.ledger.remove_pod(held.pod.namespace, held.pod.name)
        given_back = held.reservation.usage
        assert before_team - self.ledger.team_usage(team) == given_back
        assert before_user - self.ledger.user_usage(team, user) == given_back
        assert self.ledger.server_share(server, team).empty
        if data.draw(st.booleans()):
            # as the service does when GPUs free up: the queue is scanned at once
            self.scan_queue()

    @rule()
    def scan_queue(self) -> None:
        """The queue admits from the front of each line while spawns fit, drops the ones that
        can never start, and leaves the rest waiting in order."""
        before = {team: self.queue.entries(team) for team in TEAMS}
        waiting = len(self.queue)
        result = self.queue.take_admissible(self.config, self.ledger, now=self.now)
        admitted, dropped = min(len(result.admit), 2), min(len(result.drop), 2)
        event(f"scan: {admitted} admitted, {dropped} dropped of {min(waiting, 3)} waiting")
        for _entry, decision in result.admit:
            assert decision.admitted
            self._admitted(decision)
        for _entry, decision in result.drop:
            assert decision.rejected
            assert decision.reason not in WAITING_REASONS
        taken = {entry.server for entry, _ in result.admit + result.drop}
        for team in TEAMS:
            line = [entry.server for entry in before[team]]
            left = [server for server in line if server not in taken]
            assert [entry.server for entry in self.queue.entries(team)] == left
            if left:
                # everything taken from this line stood before the first entry left waiting
                first_left = line.index(left[0])
                assert all(line.index(server) < first_left for server in taken if server in line)
                head = self.queue.entries(team)[0]
                assert decide(self.config, self.ledger, head.request).reason in WAITING_REASONS
            self.lines[team] = left

    @rule(data=st.data(), seconds=st.sampled_from([0.0, 5.0, 30.0, 200.0]))
    def wait_or_cancel(self, data: st.DataObject, seconds: float) -> None:
        """Time passes and queued spawns give up at their deadline, and only then; or a user
        cancels a queued spawn. Either way the others keep their order."""
        waiting = sorted(server for line in self.lines.values() for server in line)
        if waiting and not seconds:
            server = data.draw(st.sampled_from(waiting))
            entry = self.queue.cancel(server)
            assert entry is not None and entry.server == server
            self.lines[entry.team].remove(server)
            assert self.queue.cancel(server) is None
            return
        self.now += seconds
        expired = self.queue.expire(self.now)
        for entry in expired:
            assert entry.deadline <= self.now
            self.lines[entry.team].remove(entry.server)
        assert all(entry.deadline > self.now for entry in self.queue)

    @rule(
        team=st.sampled_from(TEAMS),
        override=overrides(),
        grants=st.none()
        | st.dictionaries(
            st.tuples(st.sampled_from(TEAMS), st.sampled_from(USERS)),
            st.integers(-1, 3),
            max_size=3,
        ),
    )
    def change_quota(
        self,
        team: str,
        override: QuotaOverride | None,
        grants: dict[tuple[str, str], int] | None,
    ) -> None:
        """An admin changes a team's quota (``None`` returns it to its configured value), or
        the per-user GPU grants are replaced (entries of zero or less mean none)."""
        if grants is None:
            self.ledger.set_quota_override(team, override)
            assert self.ledger.quota_override(team) == override
            return
        self.ledger.set_user_grants(grants)
        self.grants = dict(grants)
        for (grant_team, user), extra in grants.items():
            assert self.ledger.user_grant(grant_team, user) == max(extra, 0)

    # -- bookkeeping -------------------------------------------------------------------------

    def _admitted(self, decision: Decision) -> None:
        request = decision.request
        reservation = self.ledger.reservation(request.server)
        assert reservation is not None
        assert reservation == decision.reservation(self.now)
        self.running[request.server] = Running(reservation)
        team = self.config.teams[request.team]
        quota = self.ledger.effective_quota(team, request.user)
        base = self.ledger.base_quota(team)
        used = self.ledger.team_usage(team.name)
        user_used = self.ledger.user_usage(team.name, request.user)
        own_grant = self.ledger.user_grant(team.name, request.user)
        if decision.gpus:
            assert (
                used.gpus
                <= quota.gpus
                <= base.gpus + sum(self.ledger.team_grants(team.name).values())
            )
            assert user_used.gpus <= quota.gpus_per_user <= base.gpus_per_user + own_grant
        assert _within(used, quota), f"team {team.name} over its quota: {used} > {quota}"

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def totals_are_the_sum_of_the_running_servers(self) -> None:
        teams: dict[str, Usage] = {}
        users: dict[tuple[str, str], Usage] = {}
        for held in self.running.values():
            reservation = held.reservation
            account = (reservation.team, reservation.user)
            teams[reservation.team] = teams.get(reservation.team, Usage()) + reservation.usage
            users[account] = users.get(account, Usage()) + reservation.usage
        for team in (*TEAMS, "gamma"):
            assert self.ledger.team_usage(team) == teams.get(team, Usage())
            for user in USERS:
                assert self.ledger.user_usage(team, user) == users.get((team, user), Usage())
            holders = {holding.server for holding in self.ledger.holdings(team)}
            assert holders == {
                server for server, held in self.running.items() if held.reservation.team == team
            }

    @invariant()
    def queue_is_first_in_first_out(self) -> None:
        assert len(self.queue) == sum(len(line) for line in self.lines.values())
        for team in TEAMS:
            line = self.lines[team]
            assert [entry.server for entry in self.queue.entries(team)] == line
            for index, server in enumerate(line):
                position = self.queue.position(server)
                assert position is not None
                assert (position.position, position.length) == (index + 1, len(line))
                assert self.queue.ahead_of(team, server) == index
            assert self.queue.ahead_of(team, "nobody/") == len(line)
        for server in self.running:
            assert self.queue.position(server) is None


def _within(used: Usage, quota: Quota) -> bool:
    return (quota.cpu is None or used.cpu <= quota.cpu) and (
        quota.memory is None or used.memory <= quota.memory
    )


AdmissionMachine.TestCase.settings = property_settings(250, stateful_step_count=50)
TestAdmissionInterleavings = AdmissionMachine.TestCase
