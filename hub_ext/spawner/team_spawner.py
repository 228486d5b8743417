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
  turned into the same clear message;
* the user's home (KubeSpawner's claim, z2jh ``singleuser.storage``) is created in the team's
  namespace too, one per team, and the team's shared folder is mounted; a claim refused by the
  team's storage quota gets its own message, and deleting the user deletes their homes in every
  team namespace.

One spawn, in the order JupyterHub and KubeSpawner call it:

1. ``start()`` (JupyterHub, once per spawn): the options are validated, once; a queueing
   profile's maximum wait is added to ``start_timeout``, which JupyterHub reads right after
   ``start()`` returns. KubeSpawner's ``start()`` runs ``_start()`` as a task.
2. ``load_user_options()`` (KubeSpawner's ``_start()``, once, first): the team and profile are
   applied to the spawner's settings, then the spawn is admitted against the ledger (and the
   resources reserved), queued, or refused.
3. The rest of KubeSpawner's ``_start()``: reflectors, manifest, pod creation. A failure releases
   the reservation; a ResourceQuota refusal becomes the hub's own message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any, ClassVar

import aiohttp
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.spawner import EventReflector
from sqlalchemy.orm import object_session
from traitlets import default

from hub_ext.policy import (
    ConfigError,
    Decision,
    SpawnOptions,
    Team,
    TeamSelectionError,
    UserOptionsError,
    choose_team,
    decide,
    decide_and_reserve,
    interrupted_message,
    options_from_form,
    profile_choices,
    server_key,
    user_teams,
    validate_user_options,
)
from hub_ext.policy.notebook_pod import hub_token_tracking, merge_volumes, notebook_pod_parts
from hub_ext.policy.pod_settings import literal, pod_settings
from hub_ext.policy.storage import (
    home_environment,
    home_settings,
    missing_team_folder_message,
    quota_refusal,
    storage_note,
    storage_refusal_message,
    team_folder_volumes,
)
from hub_ext.provisioning.startup import cluster_prepared
from hub_ext.service.app import SERVICE_NAME
from hub_ext.settings import MLTeams, MLTeamsTracking
from hub_ext.spawner.form import (
    FormTemplate,
    TeamSection,
    choice_to_options,
    render_form,
    render_no_team,
)
from hub_ext.spawner.hub_state import TeamState
from hub_ext.spawner.overrides import OverridesReader
from hub_ext.spawner.pod_deletion import delete_later
from hub_ext.spawner.refusals import forgive_failure, refusal

MERGED_SETTINGS = ("environment", "extra_labels", "extra_annotations")
USERNAME_LABEL = "hub.jupyter.org/username"
# the spawner whose _start() the current task runs in (tasks it creates inherit it)
_STARTING: ContextVar[TeamKubeSpawner | None] = ContextVar("mlteams_starting", default=None)
QUEUE_ENDED = "queue-ended"
INTERRUPTED = "hub-restarted"
SPAWN_STAGE_KEY = "mlteams_spawn"
CLUSTER_UNAVAILABLE = (
    "The cluster is not answering right now, so your server was not started. Try again in a "
    "minute; if this goes on, tell your platform admins."
)
INVALID_OPTIONS = "invalid_options"


class TeamKubeSpawner(KubeSpawner):
    """KubeSpawner that places each server in its team's namespace under the team's quota."""

    # KubeSpawner traits this class sets, typed for mypy (which cannot infer them upstream)
    start_timeout: int
    volumes: list[dict[str, Any]]
    volume_mounts: list[dict[str, Any]]

    _team_states: ClassVar[dict[int, tuple[Any, TeamState]]] = {}
    _state: TeamState | None = None
    # the options of the spawn that start() began: validated, or why they were refused
    _checked: SpawnOptions | UserOptionsError | None = None
    # the options applied by the latest spawn (read by the ResourceQuota message)
    _team_options: SpawnOptions | None = None
    # per merged dict setting: the keys this spawner set, and the values they replaced
    _merged: dict[str, tuple[frozenset[str], dict[str, Any]]] | None = None
    # (configured start_timeout, the extended value this spawner set)
    _timeouts: tuple[int, int] | None = None
    # from start() until the spawn is admitted, refused or has left the queue
    _deciding: bool = False
    # the configured home settings a team's ``home`` may replace, taken before the first spawn
    _configured_home: dict[str, Any] | None = None
    # the spawn in progress ("queued", then "starting"), kept in the hub's database until start()
    # returns; loaded back after a hub restart: that spawn was cut short
    _spawn_stage: dict[str, Any] | None = None
    _interrupted: dict[str, Any] | None = None

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
        state = TeamState.create(
            config,
            tracking=MLTeamsTracking(parent=self).settings(),
            poll_seconds=settings.queue_poll_seconds,
            log=self.log,
        )
        if settings.overrides_db_url:
            state.overrides = OverridesReader(settings.overrides_db_url)
        return state

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

    async def _ledger_loaded(self) -> None:
        """Wait until the pod reflector, which fills the ledger, has listed the pods once.

        KubeSpawner starts the reflector in ``_start()`` only after ``load_user_options()``,
        where admission reads the ledger: the hub's first spawn (or form) starts it here, and
        later ones find it loaded.
        """
        reflector = self.pod_reflector
        if reflector is None or not reflector.first_load_future.done():
            await self._start_watching_pods()
        await self.team_state.refresh_overrides()

    # -- the form --------------------------------------------------------------------------------

    @default("options_form")
    def _team_options_form(self) -> Any:
        return self.render_team_form

    @default("options_from_form")
    def _team_options_from_form(self) -> Any:
        return self.team_options_from_form

    def form_template(self) -> FormTemplate:
        """The form's template, found as KubeSpawner finds its profile form's."""
        return FormTemplate(
            paths=tuple(self.additional_profile_form_template_paths),
            source=self.profile_form_template,
        )

    async def render_team_form(self, spawner: KubeSpawner) -> str:
        state = self.team_state
        await self._ledger_loaded()
        groups = self._group_names()
        memberships = user_teams(state.config, groups)
        if not memberships:
            try:
                choose_team(state.config, groups)
            except TeamSelectionError as exc:
                return render_no_team(exc.message, template=self.form_template())
        teams = [state.config.teams[m.name] for m in memberships]
        sections = [
            TeamSection(
                team,
                profile_choices(
                    state.config,
                    state.ledger,
                    team.name,
                    self.user.name,
                    server_name=self.name or "",
                    queue=state.queue,
                ),
                storage=self._storage_note(team, teams),
            )
            for team in teams
        ]
        return render_form(
            sections, template=self.form_template(), request_url=self._quota_request_url()
        )

    def _quota_request_url(self) -> str | None:
        """The mlteams service's page for asking more GPUs, when the hub has the service."""
        if not self.team_state.tracking.service_url:
            return None
        base = str(self.user.settings.get("base_url", "/"))
        return base.rstrip("/") + f"/services/{SERVICE_NAME}/quota-request"

    def _storage_note(self, team: Team, teams: list[Team]) -> str | None:
        """The form's line about the home in ``team``, when homes are volumes KubeSpawner
        creates (z2jh ``singleuser.storage.type: dynamic``)."""
        if not self.storage_pvc_ensure:
            return None
        capacity = (self._configured_home or {}).get("storage_capacity", self.storage_capacity)
        others = [other for other in teams if other.name != team.name]
        return storage_note(team, capacity=capacity, other_teams=others)

    def team_options_from_form(self, formdata: dict[str, Any]) -> dict[str, Any]:
        """The form's fields as ``user_options``; ``start()`` checks them like REST options."""
        return options_from_form(choice_to_options(formdata))

    # -- one spawn -------------------------------------------------------------------------------

    def start(self) -> Any:
        """Validate this spawn's options and set ``start_timeout`` before JupyterHub reads it."""
        checked = self._check_user_options()
        self._checked = checked
        self._deciding = True
        self._allow_time_to_queue(checked)
        return super().start()

    def _check_user_options(self) -> SpawnOptions | UserOptionsError:
        try:
            return validate_user_options(
                self.team_state.config, self.user_options, groups=self._group_names()
            )
        except UserOptionsError as exc:
            return exc

    def _allow_time_to_queue(self, checked: SpawnOptions | UserOptionsError) -> None:
        """A spawn that may wait in the queue gets the profile's maximum wait on top of the
        configured ``start_timeout`` (a value set by anyone else since is taken as configured)."""
        configured = self.start_timeout
        if self._timeouts is not None and configured == self._timeouts[1]:
            configured = self._timeouts[0]
        timeout = configured
        if isinstance(checked, SpawnOptions) and checked.profile.queue.enabled:
            timeout += checked.profile.queue.max_wait_seconds
        self._timeouts = (configured, timeout)
        self.start_timeout = timeout

    async def load_user_options(self) -> None:
        """Apply the team and profile, then admit, queue or refuse the spawn."""
        checked, self._checked = self._checked, None
        if checked is None:
            checked = self._check_user_options()
        try:
            if isinstance(checked, UserOptionsError):
                raise self._refuse(checked.message, checked.http_status, INVALID_OPTIONS)
            self._apply(checked)
            await self._admit(checked)
            self._record_stage("starting", checked)
            await self._check_team_folder(checked)
        finally:
            self._deciding = False

    def _apply(self, options: SpawnOptions) -> None:
        state = self.team_state
        user, server_name = self.user.name, self.name or ""
        settings = pod_settings(state.config, options, user=user, server_name=server_name)
        parts = notebook_pod_parts(state.config, options, state.tracking)
        settings["environment"] = {**settings["environment"], **literal(parts.environment)}
        if settings["namespace"] != self.namespace:
            # KubeSpawner remembers that the home claim exists, but for the namespace of the
            # previous spawn: in another team's namespace the claim is created (or found) anew
            self._pvc_exists = False
        if self._configured_home is None:
            self._configured_home = {
                "storage_capacity": self.storage_capacity,
                "storage_class": self.storage_class,
            }
        team = state.config.teams[options.team]
        settings.update({**self._configured_home, **home_settings(team)})
        # only the chosen team's folder: a previous spawn's team folder and datasets go
        folder_volumes, folder_mounts = team_folder_volumes(team)
        volumes = merge_volumes(self.volumes, parts.volumes + folder_volumes)
        volume_mounts = merge_volumes(self.volume_mounts, parts.volume_mounts + folder_mounts)
        settings["environment"].update(
            home_environment(volumes, volume_mounts, home=state.tracking.notebook_root)
        )
        for name, value in settings.items():
            if name in MERGED_SETTINGS:
                value = self._merge_ours(name, value)
            setattr(self, name, value)
        self.volumes = volumes
        self.volume_mounts = volume_mounts
        self._team_options = options

    def get_env(self) -> dict[str, Any]:
        """KubeSpawner's environment, with the server's own hub token as its MLflow token when
        no MLflow credentials secret is configured (``hub_token_tracking``); a value configured
        for ``MLFLOW_TRACKING_TOKEN`` is kept."""
        environment: dict[str, Any] = super().get_env()
        for name, value in hub_token_tracking(self.team_state.tracking, self.api_token).items():
            environment.setdefault(name, value)
        return environment

    def _merge_ours(self, name: str, ours: dict[str, Any]) -> dict[str, Any]:
        """The dict setting ``name`` with ``ours`` on top, after undoing this spawner's previous
        spawn: the keys it set go, and the values they had replaced come back."""
        merged = self._merged = dict(self._merged or {})
        current = dict(getattr(self, name))
        if name in merged:
            previous, displaced = merged[name]
            for key in previous:
                current.pop(key, None)
            current.update(displaced)
        merged[name] = (frozenset(ours), {k: current[k] for k in ours if k in current})
        return {**current, **ours}

    def _refuse(self, message: str, status: int, reason: str) -> Exception:
        # the failure count lives in the settings of the tornado application, which copies the
        # settings dict it is given: the handler that started the spawn has the one that counts
        handler = getattr(self, "handler", None)
        forgive_failure(handler.settings if handler is not None else self.user.settings)
        return refusal(message, status=status, reason=reason)

    async def _admit(self, options: SpawnOptions) -> None:
        state = self.team_state
        await cluster_prepared()
        await self._ledger_loaded()
        request = options.request(self.user.name, self.name or "")
        decision = decide_and_reserve(
            state.config, state.ledger, request, now=time.time(), queue=state.queue
        )
        if decision.admitted:
            return
        if decision.rejected:
            raise self._refuse(decision.message, decision.http_status, _reason(decision))
        await self._wait_in_queue(decision)

    async def _check_team_folder(self, options: SpawnOptions) -> None:
        """Refuse the spawn while the team folder's claim is missing: the pod could not start."""
        team = self.team_state.config.teams[options.team]
        folder = team.shared_folder
        if folder is None:
            return
        try:
            await self.api.read_namespaced_persistent_volume_claim(
                name=folder.claim_name, namespace=team.namespace
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            raise self._refuse(missing_team_folder_message(team), 424, "team-folder") from None

    async def _wait_in_queue(self, decision: Decision) -> None:
        state = self.team_state
        waiter = state.wait_in_queue(decision)
        self.log.info("spawn %s queued: %s", self.server_id, decision.message)
        if self._team_options is not None:
            self._record_stage("queued", self._team_options)
        try:
            outcome = await waiter.future
        except asyncio.CancelledError:
            state.leave_queue(self.server_id)
            state.release(self.server_id)
            raise
        if outcome is not None:
            raise self._refuse(outcome, 429, QUEUE_ENDED)

    async def _start(self) -> Any:
        token = _STARTING.set(self)
        try:
            return await super()._start()
        except ApiException as exc:
            self.team_state.release(self.server_id)
            options = self._team_options
            refused = quota_refusal(exc.body) if exc.status == 403 else None
            if refused is not None and options:
                team = self.team_state.config.teams[options.team]
                if refused.storage:
                    message = storage_refusal_message(team, refused)
                    raise self._refuse(message, 403, "storage-quota") from None
                message = _quota_message(self.team_state, options, self.user.name, self.name or "")
                raise self._refuse(message, 403, "quota") from None
            if exc.status >= 500:
                self.log.warning("spawn %s: the Kubernetes API failed: %s", self.server_id, exc)
                raise self._refuse(CLUSTER_UNAVAILABLE, 503, "cluster-unavailable") from None
            raise
        except aiohttp.ClientError as exc:
            self.team_state.release(self.server_id)
            self.log.warning("spawn %s: the Kubernetes API is unreachable: %s", self.server_id, exc)
            raise self._refuse(CLUSTER_UNAVAILABLE, 503, "cluster-unavailable") from None
        except BaseException:
            self.team_state.release(self.server_id)
            raise
        finally:
            self._spawn_stage = None
            _STARTING.reset(token)

    # -- a spawn cut short by a hub restart --------------------------------------------------------

    def _record_stage(self, stage: str, options: SpawnOptions) -> None:
        """Keep the spawn's stage (and the namespace and pod name it uses) in the hub's database:
        JupyterHub stores the spawner's state only once ``start()`` returns."""
        self._spawn_stage = {"stage": stage, "team": options.team, "since": time.time()}
        orm_spawner = self.orm_spawner
        session = object_session(orm_spawner) if orm_spawner is not None else None
        if session is None:
            return
        orm_spawner.state = self.get_state()
        session.commit()

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self._spawn_stage is not None:
            state[SPAWN_STAGE_KEY] = dict(self._spawn_stage)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        stage = state.get(SPAWN_STAGE_KEY)
        self._interrupted = dict(stage) if isinstance(stage, dict) else None

    def clear_state(self) -> None:
        super().clear_state()
        self._spawn_stage = None
        self._interrupted = None

    async def poll(self) -> int | None:
        """KubeSpawner's poll, except for a spawn the hub was in the middle of when it stopped
        (queued, or admitted and not yet started): its pod, if one was made, is deleted, and
        the spawn ends as failed with a message saying so (progress API, spawn-pending page)."""
        interrupted, self._interrupted = self._interrupted, None
        if interrupted is None:
            result: int | None = await super().poll()
            return result
        team = str(interrupted.get("team", ""))
        queued = interrupted.get("stage") == "queued"
        message = interrupted_message(team, queued=queued)
        self.log.warning(
            "spawn %s was %s when the hub stopped; ending it (pod %s/%s deleted if present)",
            self.server_id,
            "queued" if queued else "starting",
            self.namespace,
            self.pod_name,
        )
        await self.stop(now=True)
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ended.set_exception(refusal(message, status=503, reason=INTERRUPTED))
        ended.exception()  # retrieved here: JupyterHub reads it for the progress and pages
        self._spawn_future = ended
        return 0

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        except aiohttp.ClientError as exc:
            self._delete_when_reachable(now, exc)
        finally:
            # KubeSpawner's _start() calls stop() itself to delete a conflicting pod before it
            # creates its own: that spawn goes on with its reservation
            if _STARTING.get() is not self:
                self.team_state.leave_queue(self.server_id)
                self.team_state.release(self.server_id)

    def _delete_when_reachable(self, now: bool, exc: Exception) -> None:
        """The server stops while the Kubernetes API is unreachable: its pod (this very pod,
        by uid, never a newer one of the same name) is deleted once the API answers again; until
        then the reflector still holds it, so its GPUs stay counted."""
        namespace, name = self.namespace, self.pod_name
        reflector = self.pod_reflector
        pod = reflector.pods.get(f"{namespace}/{name}") if reflector is not None else None
        uid = (pod or {}).get("metadata", {}).get("uid")
        if not uid:
            self.log.warning("stop %s: the Kubernetes API is unreachable: %s", self.server_id, exc)
            return
        self.log.warning(
            "stop %s: the Kubernetes API is unreachable (%s); pod %s/%s is deleted once it answers",
            self.server_id,
            exc,
            namespace,
            name,
        )
        grace = 0 if now else self.delete_grace_period
        delete_later(self.api, namespace, name, uid, grace, self.log)

    async def delete_forever(self) -> None:
        """The user (or this named server) is deleted: with ``delete_pvc``, remove its home in
        every team namespace, not only in the namespace of the last spawn.

        Only a claim with this spawner's claim name and labelled with this user is deleted.
        """
        await super().delete_forever()
        if not self.delete_pvc or (self.name and "{user_server}" not in self.pvc_name_template):
            return
        owner = self._build_common_labels({}).get(USERNAME_LABEL)
        namespaces = sorted(self.team_state.config.namespace_teams.keys() - {self.namespace})
        for namespace in namespaces:
            try:
                claim = await self.api.read_namespaced_persistent_volume_claim(
                    name=self.pvc_name, namespace=namespace
                )
            except ApiException as exc:
                if exc.status == 404:
                    continue
                raise
            labels = (claim.metadata.labels if claim.metadata else None) or {}
            if labels.get(USERNAME_LABEL) != owner:
                continue
            self.log.info("Deleting pvc %s/%s", namespace, self.pvc_name)
            try:
                await self.api.delete_namespaced_persistent_volume_claim(
                    name=self.pvc_name, namespace=namespace
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise

    # -- progress --------------------------------------------------------------------------------

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        async for event in self._queue_progress():
            yield event
        async for event in super().progress():
            yield event

    async def _queue_progress(self) -> AsyncIterator[dict[str, Any]]:
        """The queue position while the spawn waits; nothing once it is admitted or refused."""
        queue = self.team_state.queue
        last = None
        while True:
            position = queue.position(self.server_id)
            if position is None:
                start = self._start_future
                if not self._deciding or start is None or start.done():
                    return
                await asyncio.sleep(0.1)
                continue
            if position.message != last:
                last = position.message
                yield {"progress": 5, "message": position.message}
            await asyncio.sleep(1)


def _reason(decision: Decision) -> str:
    return decision.reason.value if decision.reason else "quota"


def _quota_message(state: TeamState, options: SpawnOptions, user: str, server_name: str) -> str:
    """The ResourceQuota backstop fired: say what the hub would have said, not the raw 403."""
    request = options.request(user, server_name)
    decision = decide(state.config, state.ledger, request)
    if decision.rejected:
        return decision.message
    team = state.config.teams[request.team]
    return (
        f"Team {team.display_name} has no room for this server right now: the cluster's quota "
        f"for namespace {team.namespace} is used up. Try again when a server of your team stops."
    )
