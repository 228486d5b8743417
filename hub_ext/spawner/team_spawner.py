"""TeamKubeSpawner: KubeSpawner with per-team GPU quotas and image profiles.

The policy (who may use which profile, whether a spawn fits the team's and the user's quota,
who is next in the queue) is ``hub_ext.policy``: pure functions of the configuration, the GPU
ledger and the request. This class only connects them to KubeSpawner:

* the spawn form lists the profiles of the user's teams with live availability;
* ``user_options`` from the form or the REST API get the same validation;
* admission is decided and the resources reserved in one step before the pod is created, so
  concurrent spawns cannot over-admit; the reservation is released on failure or stop;
* a spawn over quota whose profile opts in waits in the team's FIFO queue, with its position on
  the progress page, until GPUs free up, the user cancels, or the wait times out;
* the pod goes to the team's namespace with the profile's image, GPUs, resources, node selector,
  tolerations and labels; the namespace's ResourceQuota is the backstop, and its refusal is
  turned into the same clear message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.spawner import EventReflector
from traitlets import default

from hub_ext.policy import (
    ConfigError,
    Decision,
    SpawnOptions,
    TeamSelectionError,
    UserOptionsError,
    choose_team,
    decide,
    decide_and_reserve,
    options_from_form,
    profile_choices,
    server_key,
    user_teams,
    validate_user_options,
)
from hub_ext.policy.notebook_pod import merge_volumes, notebook_pod_parts
from hub_ext.policy.pod_settings import literal, pod_settings
from hub_ext.provisioning.startup import cluster_prepared
from hub_ext.settings import MLTeams, MLTeamsTracking
from hub_ext.spawner.form import TeamSection, choice_to_options, render_form, render_no_team
from hub_ext.spawner.hub_state import TeamState
from hub_ext.spawner.refusals import forgive_failure, refusal

MERGED_SETTINGS = ("environment", "extra_labels", "extra_annotations")
QUEUE_ENDED = "queue-ended"


class TeamKubeSpawner(KubeSpawner):
    """KubeSpawner that places each server in its team's namespace under the team's quota."""

    _team_states: ClassVar[dict[int, tuple[Any, TeamState]]] = {}
    _base_start_timeout: int | None = None
    _state: TeamState | None = None
    _validated: tuple[Any, SpawnOptions] | None = None
    _applied: SpawnOptions | None = None

    # -- shared state ------------------------------------------------------------------------

    @property
    def team_state(self) -> TeamState:
        """The hub-wide state, created (and the configuration validated) on first use.

        Every spawner of a hub shares the hub's ``Config`` object, so the state is looked up by
        that object: the ``MLTeams`` and ``MLTeamsTracking`` sections are read once per hub.
        """
        if self._state is None:
            shared = self._team_states.get(id(self.config))
            if shared is None or shared[0] is not self.config:
                shared = (self.config, self._create_team_state())
                self._team_states.clear()
                self._team_states[id(self.config)] = shared
            self._state = shared[1]
        return self._state

    def _create_team_state(self) -> TeamState:
        settings = MLTeams(parent=self)
        try:
            config = settings.load()
        except ConfigError as exc:
            self.log.critical("invalid MLTeams configuration:\n%s", exc)
            raise
        return TeamState.create(
            config,
            tracking=MLTeamsTracking(parent=self).settings(),
            poll_seconds=settings.queue_poll_seconds,
            log=self.log,
        )

    @property
    def server_id(self) -> str:
        return server_key(self.user.name, self.name or "")

    def _group_names(self) -> list[str]:
        return sorted(group.name for group in self.user.groups)

    # -- one reflector for every team namespace -------------------------------------------------

    def _get_reflector_key(self, kind: str) -> tuple[str, None]:
        return (kind, None)

    async def _start_watching_pods(self, replace: bool = False) -> Any:
        return await self._start_reflector(
            kind="pods",
            reflector_class=self.team_state.reflector_class,
            labels={"component": self.component_label},
            omit_namespace=True,
            replace=replace,
        )

    async def _start_watching_events(self, replace: bool = False) -> Any:
        return await self._start_reflector(
            kind="events",
            reflector_class=EventReflector,
            fields={"involvedObject.kind": "Pod"},
            omit_namespace=True,
            replace=replace,
        )

    # -- the form and user_options -------------------------------------------------------------

    @default("options_form")
    def _team_options_form(self) -> Any:
        return self.render_team_form

    async def render_team_form(self, spawner: KubeSpawner) -> str:
        state = self.team_state
        await self._start_watching_pods()
        groups = self._group_names()
        memberships = user_teams(state.config, groups)
        if not memberships:
            try:
                choose_team(state.config, groups)
            except TeamSelectionError as exc:
                return render_no_team(exc.message)
        sections = [
            TeamSection(
                state.config.teams[m.name],
                profile_choices(
                    state.config,
                    state.ledger,
                    m.name,
                    self.user.name,
                    server_name=self.name or "",
                    queue=state.queue,
                ),
            )
            for m in memberships
        ]
        return render_form(sections)

    def options_from_form(self, formdata: dict[str, Any]) -> dict[str, Any]:
        options = options_from_form(choice_to_options(formdata))
        validated = self._validate(options)
        return validated.to_user_options()

    def _validate(self, options: dict[str, Any]) -> SpawnOptions:
        """Validated options; the last answer is reused while options and groups are unchanged."""
        groups = self._group_names()
        key = (repr(sorted(options.items())), tuple(groups))
        if self._validated is not None and self._validated[0] == key:
            return self._validated[1]
        validated = validate_user_options(self.team_state.config, options, groups=groups)
        self._validated = (key, validated)
        return validated

    async def load_user_options(self) -> None:
        """Validate ``user_options`` (form or REST alike) and apply the team and profile."""
        try:
            options = self._validate(dict(self.user_options or {}))
        except (UserOptionsError, TeamSelectionError) as exc:
            raise self._refuse(exc.message, exc.http_status, "invalid_options") from None
        if self._applied is options:
            return
        self._team_options = options
        state = self.team_state
        for name, value in pod_settings(
            state.config, options, user=self.user.name, server_name=self.name or ""
        ).items():
            if name in MERGED_SETTINGS:
                value = {**getattr(self, name), **value}
            setattr(self, name, value)
        parts = notebook_pod_parts(state.config, options, state.tracking)
        self.environment = {**self.environment, **literal(parts.environment)}
        self.volumes = merge_volumes(self.volumes, parts.volumes)
        self.volume_mounts = merge_volumes(self.volume_mounts, parts.volume_mounts)
        self._applied = options

    # -- admission -------------------------------------------------------------------------------

    def _refuse(self, message: str, status: int, reason: str) -> Exception:
        # the failure count lives in the settings of the tornado application, which copies the
        # settings dict it is given: the handler that started the spawn has the one that counts
        handler = getattr(self, "handler", None)
        forgive_failure(handler.settings if handler is not None else self.user.settings)
        return refusal(message, status=status, reason=reason)

    async def _admit(self) -> None:
        state = self.team_state
        await cluster_prepared()
        await self.load_user_options()
        await self._start_watching_pods()
        request = self._team_options.request(self.user.name, self.name or "")
        decision = decide_and_reserve(
            state.config, state.ledger, request, now=time.time(), queue=state.queue
        )
        if decision.admitted:
            return
        if decision.rejected:
            raise self._refuse(decision.message, decision.http_status, _reason(decision))
        await self._wait_in_queue(decision)

    async def _wait_in_queue(self, decision: Decision) -> None:
        state = self.team_state
        waiter = state.wait_in_queue(decision)
        self.log.info("spawn %s queued: %s", self.server_id, decision.message)
        try:
            outcome = await waiter.future
        except asyncio.CancelledError:
            state.leave_queue(self.server_id)
            state.release(self.server_id)
            raise
        if outcome is not None:
            raise self._refuse(outcome, 429, QUEUE_ENDED)

    def start(self) -> Any:
        self._allow_time_to_queue()
        return super().start()

    def _allow_time_to_queue(self) -> None:
        """JupyterHub times ``start`` out after ``start_timeout``, read just after ``start`` is
        called: a spawn that may wait in the queue gets the profile's maximum wait on top."""
        if self._base_start_timeout is None:
            self._base_start_timeout = self.start_timeout
        self.start_timeout = self._base_start_timeout
        try:
            options = self._validate(dict(self.user_options or {}))
        except (UserOptionsError, TeamSelectionError, ConfigError):
            return
        if options.profile.queue.enabled:
            self.start_timeout += options.profile.queue.max_wait_seconds

    async def _start(self) -> Any:
        await self._admit()
        try:
            return await super()._start()
        except ApiException as exc:
            self.team_state.release(self.server_id)
            if exc.status == 403 and "exceeded quota" in (exc.body or ""):
                raise self._refuse(_quota_message(self, exc), 403, "quota") from None
            raise
        except BaseException:
            self.team_state.release(self.server_id)
            raise

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            self.team_state.leave_queue(self.server_id)
            self.team_state.release(self.server_id)

    # -- progress --------------------------------------------------------------------------------

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        state = self.team_state
        last = None
        while True:
            position = state.queue.position(self.server_id)
            if position is None:
                break
            if position.message != last:
                last = position.message
                yield {"progress": 5, "message": position.message}
            await asyncio.sleep(1)
        async for event in super().progress():
            yield event


def _reason(decision: Decision) -> str:
    return decision.reason.value if decision.reason else "quota"


def _quota_message(spawner: TeamKubeSpawner, exc: ApiException) -> str:
    """The ResourceQuota backstop fired: say what the hub would have said, not the raw 403."""
    state = spawner.team_state
    request = spawner._team_options.request(spawner.user.name, spawner.name or "")
    decision = decide(state.config, state.ledger, request)
    if decision.rejected:
        return decision.message
    team = state.config.teams[request.team]
    return (
        f"Team {team.display_name} has no room for this server right now: the cluster's quota "
        f"for namespace {team.namespace} is used up. Try again when a server of your team stops."
    )
