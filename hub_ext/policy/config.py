"""The ``MLTeams`` configuration section (z2jh ``hub.config.MLTeams``), declared once.

Each key is one field of a frozen pydantic model below, with its rule (``fields``) and its
description; the same declaration validates the section, is the validated configuration the hub
uses, and is the JSON Schema of the section (``json_schema``, committed as
``helm-values/mlteams.schema.json``).

``load_config`` validates the mapping an admin writes and raises one ``ConfigError`` listing every
problem with its full key path; ``parse_quota_override`` does the same for a run-time quota
override. Models built in Python take CPU in millicores and memory in bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema, InitErrorDetails, core_schema
from typing_extensions import Self

from hub_ext.policy.fields import (
    RESERVED_ENV_PREFIXES,
    ROOT,
    ClaimName,
    CountOrModel,
    DefaultNamespace,
    EntryName,
    EnvName,
    Flag,
    FromKey,
    Frozen,
    HubNamespace,
    Image,
    Keyed,
    KnownName,
    LabelKey,
    LabelValue,
    Listed,
    Location,
    MountPath,
    Name,
    Namespace,
    Number,
    ObjectName,
    OneOf,
    PositiveNumber,
    Quantity,
    QuotedString,
    Text,
    WholeNumber,
    root_of,
    written_by_admin,
)
from hub_ext.policy.quantities import describe_cpu, describe_memory, parse_cpu, parse_memory
from hub_ext.policy.scoring import METRICS, TASKS
from hub_ext.policy.validation import (
    ConfigError,
    child,
    did_you_mean,
    in_own_words,
    invalid,
    is_dns_label,
    plural,
    problem_at,
    problems_from,
    show,
)

MAX_GPUS = 4096
MAX_QUEUE_WAIT_SECONDS = 7 * 24 * 3600
MAX_CLAIMS = 100_000
DEFAULT_TEAM_FOLDER_CLAIM = "team-folder"
DEFAULT_TEAM_FOLDER_PATH = "/home/jovyan/team"
DEFAULT_TEAM_FOLDER_CAPACITY = 10 * 2**30
TEAM_FOLDER_ACCESS_MODES = ("ReadWriteMany", "ReadWriteOnce")
DEFAULT_QUEUE_WAIT_SECONDS = 1800
TOLERATION_OPERATORS = ("Equal", "Exists")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_EVALUATION_SECONDS = 600
MAX_EVALUATION_SECONDS = 6 * 3600
MAX_APPROVAL_HOURS = 90 * 24
ALIAS_PATTERN = r"^[A-Za-z_][\w-]{0,254}$"


class EvaluationUri(Text):
    """An s3:// URI of one object (the evaluation set)."""

    max_length: int = 2048

    def problem(self, value: str) -> str | None:
        if re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+[^/]", value):
            return None
        return f"must be an s3://bucket/key URI of one CSV file, got {show(value)}"


class AliasName(Text):
    """A registry alias: letters, digits, '_' and '-', not `latest` nor like a version `v1`."""

    def problem(self, value: str) -> str | None:
        if (
            re.fullmatch(ALIAS_PATTERN, value)
            and value.lower() != "latest"
            and not re.fullmatch(r"[vV]\d+", value)
        ):
            return None
        return (
            "must be an MLflow alias (letters, digits, _ and -; not latest or v1), "
            f"got {show(value)}"
        )


__all__ = [
    "DEFAULT_QUEUE_WAIT_SECONDS",
    "MAX_GPUS",
    "MAX_QUEUE_WAIT_SECONDS",
    "RESERVED_ENV_PREFIXES",
    "ROOT",
    "TOLERATION_EFFECTS",
    "TOLERATION_OPERATORS",
    "Aliases",
    "Dataset",
    "Evaluation",
    "Evidence",
    "Gate",
    "GpuRange",
    "HomeStorage",
    "MLTeamsConfig",
    "MLTeamsSection",
    "ModelPromotion",
    "Profile",
    "Promotion",
    "QueuePolicy",
    "Quota",
    "QuotaOverride",
    "Serving",
    "SharedFolder",
    "Team",
    "Toleration",
    "json_schema",
    "load_config",
    "parse_quota_override",
    "render_json_schema",
]

GPU_COUNT = WholeNumber(0, MAX_GPUS)
CLAIM_COUNT = WholeNumber(0, MAX_CLAIMS)
CPU = Quantity(parse_cpu)
MEMORY = Quantity(parse_memory)

EntryNameFromKey = SkipJsonSchema[Annotated[str, FromKey()]]
NodeSelector = Annotated[
    Mapping[
        Annotated[str, LabelKey("Kubernetes label key")],
        Annotated[str, LabelValue("Kubernetes label value")],
    ],
    Frozen(),
]


class Schema(BaseModel):
    """A mapping of the configuration: frozen, no unknown keys, problems in the project's words.

    Every problem found below the mapping is reported, not only the first; ``problems_across``
    adds the checks that compare several keys.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_alias=True, validate_by_name=True
    )

    @classmethod
    def allowed_keys(cls) -> tuple[str, ...]:
        """The keys an admin may write in this mapping, in the order they are declared."""
        return tuple(
            field.alias or name
            for name, field in cls.model_fields.items()
            if not any(isinstance(rule, FromKey) for rule in field.metadata)
        )

    @classmethod
    def problems_across(cls, raw: Any, context: Any) -> list[InitErrorDetails]:
        """Problems that involve several keys, found in the mapping as written."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _in_own_words(
        cls, raw: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo
    ) -> Self:
        problems: list[InitErrorDetails] = []
        validated: Self | None = None
        try:
            validated = handler(raw)
        except ValidationError as exc:
            allowed = cls.allowed_keys()
            worded = (in_own_words(error, allowed) for error in exc.errors())
            problems = [problem for problem in worded if problem is not None]
        problems += cls.problems_across(raw, info.context)
        if problems or validated is None:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return validated


class Quota(Schema):
    """A team's limits; `cpu` and `memory` are unlimited when left out.

    In Python ``cpu`` is in millicores and ``memory`` in bytes; ``None`` is unlimited.
    """

    gpus: Annotated[int, GPU_COUNT] = Field(
        description=f"GPUs the whole team may hold at once, from 0 to {MAX_GPUS}."
    )
    gpus_per_user: Annotated[int, GPU_COUNT] = Field(
        default_factory=lambda data: data["gpus"],
        description="GPUs one user may hold in this team at once; at most `gpus`, "
        "which is also the default.",
    )
    cpu: Annotated[int, CPU] | None = Field(
        default=None,
        description='CPU the team\'s servers may hold in total, a Kubernetes quantity ("96", '
        '"500m"); unlimited when left out.',
    )
    memory: Annotated[int, MEMORY] | None = Field(
        default=None,
        description='Memory the team\'s servers may hold in total, a Kubernetes quantity ("768Gi", '
        '"1T"); unlimited when left out.',
    )
    storage: Annotated[int, MEMORY] | None = Field(
        default=None,
        description="Storage the team's volume claims may request in total (its members' homes "
        'and the team folder), a Kubernetes quantity ("500Gi"); unlimited when left out.',
    )
    claims: Annotated[int, CLAIM_COUNT] | None = Field(
        default=None,
        description="How many volume claims the team's namespace may hold: one home per member "
        "who has started a server there, plus the team folder; unlimited when left out.",
    )

    @field_validator("gpus_per_user")
    @classmethod
    def _within_the_team(cls, per_user: int, info: ValidationInfo) -> int:
        gpus = info.data.get("gpus")
        if gpus is not None and per_user > gpus:
            raise invalid(f"must not exceed the team's gpus ({gpus}), got {per_user}")
        return per_user


class QuotaOverride(Schema):
    """A run-time change to a team's quota (from the admin page): the keys of ``quota``, each
    optional; ``None`` keeps the configured value."""

    gpus: Annotated[int, GPU_COUNT] | None = Field(
        default=None, description="Replaces the team's `gpus`."
    )
    gpus_per_user: Annotated[int, GPU_COUNT] | None = Field(
        default=None,
        description="Replaces the team's `gpus_per_user`; at most `gpus` when both are set.",
    )
    cpu: Annotated[int, CPU] | None = Field(default=None, description="Replaces the team's `cpu`.")
    memory: Annotated[int, MEMORY] | None = Field(
        default=None, description="Replaces the team's `memory`."
    )
    storage: Annotated[int, MEMORY] | None = Field(
        default=None, description="Replaces the team's `storage`."
    )
    claims: Annotated[int, CLAIM_COUNT] | None = Field(
        default=None, description="Replaces the team's `claims`."
    )

    @field_validator("gpus_per_user")
    @classmethod
    def _within_gpus(cls, per_user: int | None, info: ValidationInfo) -> int | None:
        gpus = info.data.get("gpus")
        if gpus is not None and per_user is not None and per_user > gpus:
            raise invalid(f"must not exceed gpus ({gpus}), got {per_user}")
        return per_user

    def apply(self, quota: Quota) -> Quota:
        """The effective quota: ``quota`` with this override's fields replacing its own."""
        gpus = quota.gpus if self.gpus is None else self.gpus
        per_user = quota.gpus_per_user if self.gpus_per_user is None else self.gpus_per_user
        return Quota(
            gpus=gpus,
            gpus_per_user=min(per_user, gpus),
            cpu=quota.cpu if self.cpu is None else self.cpu,
            memory=quota.memory if self.memory is None else self.memory,
            storage=quota.storage if self.storage is None else self.storage,
            claims=quota.claims if self.claims is None else self.claims,
        )


class QueuePolicy(Schema):
    """Opt-in queueing: a spawn over the team's GPU quota waits up to `max_wait_seconds` instead
    of failing."""

    enabled: Annotated[bool, Flag()] = Field(
        default=False,
        description="When true, a spawn that is over the team's GPU quota waits in the team's "
        "queue instead of failing.",
    )
    max_wait_seconds: Annotated[int, WholeNumber(1, MAX_QUEUE_WAIT_SECONDS)] = Field(
        default=DEFAULT_QUEUE_WAIT_SECONDS,
        description="How long a queued spawn may wait, in seconds (at most 7 days).",
    )


class Toleration(Schema):
    """A Kubernetes pod toleration, written as in a pod spec."""

    operator: Annotated[str, OneOf(TOLERATION_OPERATORS)] = Field(
        default="Equal", description="`Equal` (the default) or `Exists`."
    )
    key: Annotated[str, LabelKey("taint key")] | None = Field(
        default=None,
        validate_default=True,
        description="The taint key; may be left out only with operator `Exists`.",
    )
    value: Annotated[str, LabelValue("taint value")] | None = Field(
        default=None, description="The taint value; not with operator `Exists`."
    )
    effect: Annotated[str, OneOf(TOLERATION_EFFECTS)] | None = Field(
        default=None,
        description="`NoSchedule`, `PreferNoSchedule` or `NoExecute`; every effect when left out.",
    )
    toleration_seconds: Annotated[int, WholeNumber(0)] | None = Field(
        default=None,
        alias="tolerationSeconds",
        description="How long the pod stays bound after the taint appears; only with effect "
        "`NoExecute`.",
    )

    @field_validator("key")
    @classmethod
    def _key_unless_exists(cls, key: str | None, info: ValidationInfo) -> str | None:
        if key is None and info.data.get("operator", "Exists") != "Exists":
            raise invalid("is required unless operator is Exists")
        return key

    @field_validator("value")
    @classmethod
    def _no_value_with_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("operator") == "Exists":
            raise invalid("must not be set when operator is Exists")
        return value

    @field_validator("toleration_seconds")
    @classmethod
    def _seconds_only_when_evicting(cls, seconds: int | None, info: ValidationInfo) -> int | None:
        if seconds is not None and info.data.get("effect", "NoExecute") != "NoExecute":
            raise invalid("only applies when effect is NoExecute")
        return seconds

    def to_k8s(self) -> dict[str, Any]:
        """The toleration as it appears in a pod spec (camelCase keys, unset keys left out)."""
        out: dict[str, Any] = {"operator": self.operator}
        if self.key is not None:
            out["key"] = self.key
        if self.value is not None:
            out["value"] = self.value
        if self.effect is not None:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out


class GpuRange(Schema):
    """A GPU count the user chooses when starting a server."""

    min: Annotated[int, GPU_COUNT] = Field(description="The fewest GPUs a user may choose.")
    max: Annotated[int, GPU_COUNT] = Field(description="The most GPUs a user may choose.")
    default: Annotated[int, GPU_COUNT] = Field(
        default_factory=lambda data: data["min"],
        description="The count used when the user does not choose; defaults to `min`.",
    )

    @field_validator("max")
    @classmethod
    def _not_below_min(cls, high: int, info: ValidationInfo) -> int:
        low = info.data.get("min")
        if low is not None and high < low:
            raise invalid(f"must be >= min ({low}), got {high}")
        return high

    @field_validator("default")
    @classmethod
    def _within_the_range(cls, default: int, info: ValidationInfo) -> int:
        low, high = info.data.get("min"), info.data.get("max")
        if low is not None and high is not None and not low <= default <= high:
            raise invalid(f"must be between min ({low}) and max ({high}), got {default}")
        return default


GpuRequest = Annotated[Annotated[int, GPU_COUNT] | GpuRange, CountOrModel(GPU_COUNT, GpuRange)]


def gpu_bounds(request: int | GpuRange) -> tuple[int, int, int]:
    """The default, fewest and most GPUs of a profile's ``gpus``."""
    if isinstance(request, GpuRange):
        return request.default, request.min, request.max
    return request, request, request


class Profile(Schema):
    """A server profile: the image and resources of a server.

    In Python ``cpu`` is in millicores and ``memory`` in bytes. ``gpus`` is the count used when
    the user does not choose one; a profile with ``gpus_min < gpus_max`` lets the user pick a
    count in that range.
    """

    name: EntryNameFromKey
    display_name: Annotated[str, Text(100)] = Field(
        default_factory=lambda data: data["name"],
        description="Shown in the spawn form; defaults to the profile's name.",
    )
    description: Annotated[str, Text(1000, allow_empty=True)] = Field(
        default="", description="Shown under the name in the spawn form."
    )
    image: Annotated[str, Image()] = Field(description="The container image, without spaces.")
    gpu_request: GpuRequest = Field(
        default=0,
        alias="gpus",
        description="GPUs of each server: a count, or a range `{min, max, default}` within "
        "which the user chooses.",
    )
    cpu: Annotated[int, CPU] | None = Field(
        default=None, description='CPU limit of the server, a Kubernetes quantity ("8", "500m").'
    )
    memory: Annotated[int, MEMORY] | None = Field(
        default=None, description='Memory limit of the server, a Kubernetes quantity ("64Gi").'
    )
    node_selector: NodeSelector = Field(
        default={},
        validate_default=True,
        description='Node label key to label value (strings: quote "true" in YAML).',
    )
    tolerations: Annotated[tuple[Toleration, ...], Listed(repeats=True)] = Field(
        default=(), description="Kubernetes tolerations of the server's pod."
    )
    env: Annotated[Mapping[Annotated[str, EnvName()], Annotated[str, QuotedString()]], Frozen()] = (
        Field(
            default={},
            validate_default=True,
            description="Extra environment variables, name to string value. Names starting "
            f"with {' or '.join(RESERVED_ENV_PREFIXES)} are reserved for the hub.",
        )
    )
    queue: QueuePolicy = Field(
        default_factory=lambda: QueuePolicy(),
        description="Whether a spawn over the team's GPU quota waits in line instead of failing.",
    )

    @property
    def gpus(self) -> int:
        """The GPU count used when the user does not choose one."""
        return gpu_bounds(self.gpu_request)[0]

    @property
    def gpus_min(self) -> int:
        return gpu_bounds(self.gpu_request)[1]

    @property
    def gpus_max(self) -> int:
        return gpu_bounds(self.gpu_request)[2]

    @property
    def gpu_choice(self) -> bool:
        """Whether the user may choose the GPU count."""
        return self.gpus_min != self.gpus_max


class Dataset(Schema):
    """A dataset of the catalog, which teams list by name.

    ``volume`` is kept as written (a CSI or PVC volume source).
    """

    name: EntryNameFromKey
    uri: Annotated[str, Location()] = Field(
        description="Where the data lives: a URI with a scheme (`s3://…`, `pvc://…`) or an "
        "absolute path."
    )
    format: Annotated[str, Text(64)] | None = Field(
        default=None, description="A short word for tools and people (`parquet`, `imagefolder`)."
    )
    description: Annotated[str, Text(1000, allow_empty=True)] = Field(
        default="", description="Free text."
    )
    volume: Annotated[Mapping[str, Any], Frozen()] | None = Field(
        default=None,
        description="A Kubernetes volume source (CSI, PVC) that mounts the dataset read-only; "
        "kept as written.",
    )
    credentials_secret: Annotated[str, ObjectName(what="Secret")] | None = Field(
        default=None,
        description="The name of a Secret in the team namespace that holds read credentials.",
    )


class Gate(Schema):
    """Thresholds on one metric that the promotion service measures; at least one is set."""

    min: Annotated[float, Number()] | None = Field(
        default=None, description="The lowest measured value that may be promoted."
    )
    max: Annotated[float, Number()] | None = Field(
        default=None, description="The highest measured value that may be promoted."
    )
    max_regression: Annotated[float, Number(minimum=0)] | None = Field(
        default=None,
        description="How much worse than the current champion's measured value the candidate "
        "may be (in the metric's own units; worse is lower, or higher for rmse and mae).",
    )

    @classmethod
    def problems_across(cls, raw: Any, context: Any) -> list[InitErrorDetails]:
        if not isinstance(raw, Mapping):
            return []
        problems: list[InitErrorDetails] = []
        if not any(raw.get(key) is not None for key in ("min", "max", "max_regression")):
            problems.append(problem_at((), "set at least one of min, max, max_regression"))
        low, high = raw.get("min"), raw.get("max")
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            problems.append(problem_at(("max",), f"must be >= min ({low:g}), got {high:g}"))
        return problems


class Evidence(Schema):
    """What a candidate must carry, besides good metrics."""

    signature: Annotated[bool, Flag()] = Field(
        default=True, description="The model has a signature (its inputs and outputs)."
    )
    dataset_inputs: Annotated[bool, Flag()] = Field(
        default=False, description="The run recorded the datasets it was trained on."
    )


class Evaluation(Schema):
    """The held-out set the promotion service scores candidates on, read only by the service."""

    uri: Annotated[str, EvaluationUri()] = Field(
        description="An s3:// URI of a CSV file with a header row; keep it where only the "
        "service's object-store keys can read it."
    )
    label_column: Annotated[str, Text(256)] = Field(
        description="The column holding the labels, which the model never sees."
    )
    task: Annotated[str, OneOf(TASKS)] = Field(
        description="`classification` or `regression`: which metrics can be measured."
    )
    timeout_seconds: Annotated[int, WholeNumber(30, MAX_EVALUATION_SECONDS)] = Field(
        default=DEFAULT_EVALUATION_SECONDS,
        description="How long the evaluation Job may run, in seconds.",
    )


class Aliases(Schema):
    """The names of the registry aliases a promotion moves."""

    champion: Annotated[str, AliasName()] = Field(
        default="champion", description="The alias of the version in production."
    )
    previous: Annotated[str, AliasName()] = Field(
        default="previous", description="The alias of the version before it, for rollback."
    )

    @field_validator("previous")
    @classmethod
    def _distinct(cls, previous: str, info: ValidationInfo) -> str:
        if previous == info.data.get("champion"):
            raise invalid(f"must differ from champion, got {show(previous)}")
        return previous


GateMap = Annotated[Mapping[Annotated[str, KnownName("metric", tuple(METRICS))], Gate], Frozen()]


class ModelPromotion(Schema):
    """One model's own promotion rules; each key left out keeps the team's."""

    gates: GateMap | None = Field(default=None, description="Replaces the team's gates.")
    evidence: Evidence | None = Field(default=None, description="Replaces the team's evidence.")
    evaluation: Evaluation | None = Field(
        default=None, description="Replaces the team's evaluation set."
    )
    high_stakes: Annotated[bool, Flag()] | None = Field(
        default=None, description="Replaces the team's high_stakes."
    )


class Promotion(Schema):
    """How a team's models are promoted to its governed registry (docs/admin/promotion.md)."""

    high_stakes: Annotated[bool, Flag()] = Field(
        default=False,
        description="When true, every promotion waits for a lead of the team (or a member of "
        "`approver_groups`) to approve it; never the requester.",
    )
    approver_groups: Annotated[tuple[Annotated[str, Text(256)], ...], Listed()] = Field(
        default=(), description="Hub groups whose members may approve, beside the team's leads."
    )
    approval_ttl_hours: Annotated[float, PositiveNumber(MAX_APPROVAL_HOURS)] = Field(
        default=72.0, description="How long a promotion waits for approval before it expires."
    )
    aliases: Aliases = Field(
        default_factory=lambda: Aliases(), description="The aliases a promotion moves."
    )
    evaluation: Evaluation | None = Field(
        default=None, description="The held-out set candidates are scored on."
    )
    gates: GateMap = Field(
        default={},
        validate_default=True,
        description="Metric name to its thresholds; the metrics are measured by the service.",
    )
    evidence: Evidence = Field(
        default_factory=lambda: Evidence(), description="What a candidate must carry."
    )
    models: Annotated[Mapping[Annotated[str, EntryName("model")], ModelPromotion], Frozen()] = (
        Field(
            default={},
            validate_default=True,
            description="Model name to its own rules, replacing the team's key by key.",
        )
    )

    @classmethod
    def problems_across(cls, raw: Any, context: Any) -> list[InitErrorDetails]:
        """Gates need an evaluation set whose task measures their metrics."""
        if not isinstance(raw, Mapping):
            return []
        problems: list[InitErrorDetails] = []
        team_evaluation = raw.get("evaluation")
        problems += _gate_problems((), raw.get("gates"), team_evaluation)
        models = raw.get("models")
        if isinstance(models, Mapping):
            for name, rules in models.items():
                if not isinstance(rules, Mapping):
                    continue
                evaluation = rules.get("evaluation", team_evaluation)
                gates = rules.get("gates", raw.get("gates"))
                if "gates" in rules or "evaluation" in rules:
                    problems += _gate_problems(("models", name), gates, evaluation)
        return problems


def _gate_problems(at: tuple[Any, ...], gates: Any, evaluation: Any) -> list[InitErrorDetails]:
    if not isinstance(gates, Mapping) or not gates:
        return []
    if not isinstance(evaluation, Mapping):
        where = "promotion.evaluation"
        if at:
            where += " or " + ".".join(["promotion", *map(str, at), "evaluation"])
        return [
            problem_at(
                (*at, "gates"),
                f"gates need an evaluation set: set {where} (uri, label_column, task)",
            )
        ]
    task = evaluation.get("task")
    problems = []
    for metric in gates:
        known = METRICS.get(metric) if isinstance(metric, str) else None
        if known is not None and task in TASKS and known.task != task:
            problems.append(
                problem_at(
                    (*at, "gates", metric),
                    f"{metric} is a {known.task} metric but the evaluation's task is {task}",
                )
            )
    return problems


SERVING_MODES = ("apply", "gitops")
DEPLOYMENT_MODES = ("RawDeployment", "Serverless")
MAX_REPLICAS = 100
DEFAULT_SERVING_CPU = 1000
DEFAULT_SERVING_MEMORY = 2 * 2**30
DEFAULT_SERVING_ACCOUNT = "mlteams-serving"


class Serving(Schema):
    """How a team's champion models are served through KServe (docs/admin/serving.md)."""

    enabled: Annotated[bool, Flag()] = Field(
        default=False,
        description="When true, each promotion and rollback (re)points an InferenceService "
        "named after the model in the team's namespace at the champion version.",
    )
    mode: Annotated[str, OneOf(SERVING_MODES)] = Field(
        default="apply",
        description="`apply`: the mlteams service applies the InferenceService itself; "
        "`gitops`: it only renders it (`mlteams-serving-manifests`), for a GitOps repository.",
    )
    deployment_mode: Annotated[str, OneOf(DEPLOYMENT_MODES)] = Field(
        default="RawDeployment",
        description="KServe's `serving.kserve.io/deploymentMode`: `RawDeployment` (a "
        "Deployment and Service) or `Serverless` (Knative).",
    )
    min_replicas: Annotated[int, WholeNumber(0, MAX_REPLICAS)] = Field(
        default=1, description="The fewest predictor replicas; 0 lets Serverless scale to zero."
    )
    max_replicas: Annotated[int, WholeNumber(1, MAX_REPLICAS)] = Field(
        default=1, description="The most predictor replicas; at least `min_replicas`."
    )
    cpu: Annotated[int, CPU] = Field(
        default=DEFAULT_SERVING_CPU,
        description="CPU of each predictor (request and limit), such as 1 or 500m.",
    )
    memory: Annotated[int, MEMORY] = Field(
        default=DEFAULT_SERVING_MEMORY,
        description="Memory of each predictor (request and limit), such as 2Gi.",
    )
    gpus: Annotated[int, GPU_COUNT] = Field(
        default=0,
        description="`nvidia.com/gpu` of each predictor; counted against the team's GPU quota "
        "like its servers.",
    )
    service_account: Annotated[str, ObjectName(what="ServiceAccount")] = Field(
        default=DEFAULT_SERVING_ACCOUNT,
        description="The ServiceAccount of the predictor in the team's namespace; its Secret "
        "holds the read-only key of the governed prefix (KServe's S3 credentials).",
    )
    node_selector: NodeSelector = Field(
        default={},
        validate_default=True,
        description="Node labels the predictor must run on, such as the GPU nodes'.",
    )
    tolerations: Annotated[tuple[Toleration, ...], Listed(repeats=True)] = Field(
        default=(), description="Taints the predictor tolerates (the GPU nodes' taint)."
    )

    @classmethod
    def problems_across(cls, raw: Any, context: Any) -> list[InitErrorDetails]:
        if not isinstance(raw, Mapping):
            return []
        low, high = raw.get("min_replicas", 1), raw.get("max_replicas", 1)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            return [problem_at(("max_replicas",), f"must be at least min_replicas ({low})")]
        return []


class HomeStorage(Schema):
    """How big the team's homes are and where they live, instead of the hub's global settings
    (in the z2jh chart `singleuser.storage.capacity` and `.dynamic.storageClass`).

    In Python ``capacity`` is in bytes; ``None`` keeps the global setting.
    """

    capacity: Annotated[int, MEMORY] | None = Field(
        default=None,
        description='Size of each new home of the team, a Kubernetes quantity ("50Gi"); the '
        "global `singleuser.storage.capacity` when left out. A home keeps the size it was "
        "created with.",
    )
    storage_class: Annotated[str, ObjectName(what="StorageClass")] | None = Field(
        default=None,
        description="StorageClass of each new home of the team; the global "
        "`singleuser.storage.dynamic.storageClass` when left out.",
    )


class SharedFolder(Schema):
    """A read-write volume every member of the team gets at the same path.

    The claim lives in the team's namespace, so only the team's servers can mount it. In Python
    ``capacity`` is in bytes.
    """

    claim_name: Annotated[str, ClaimName()] = Field(
        default=DEFAULT_TEAM_FOLDER_CLAIM,
        description=f"The PersistentVolumeClaim in the team's namespace; defaults to "
        f"`{DEFAULT_TEAM_FOLDER_CLAIM}`. Names starting with `claim-` are the members' homes.",
    )
    create: Annotated[bool, Flag()] = Field(
        default=True,
        description="Whether the hub creates the claim when it provisions the team "
        "(`MLTeams.provision`); false for a claim the admin binds to existing storage such as "
        "an NFS export. A spawn is refused with a clear message while the claim is missing.",
    )
    capacity: Annotated[int, MEMORY] = Field(
        default=DEFAULT_TEAM_FOLDER_CAPACITY,
        description='Size of the claim the hub creates, a Kubernetes quantity; defaults to "10Gi".',
    )
    storage_class: Annotated[str, ObjectName(what="StorageClass")] | None = Field(
        default=None,
        description="StorageClass of the claim the hub creates (one that offers ReadWriteMany, "
        "such as NFS or CephFS); the cluster's default class when left out.",
    )
    access_modes: Annotated[
        tuple[Annotated[str, OneOf(TEAM_FOLDER_ACCESS_MODES)], ...], Listed("access mode")
    ] = Field(
        default=("ReadWriteMany",),
        description="Access modes of the claim the hub creates: `ReadWriteMany` (the default) "
        "lets servers on every node write; `ReadWriteOnce` only works while the team's servers "
        "share one node.",
    )
    mount_path: Annotated[str, MountPath()] = Field(
        default=DEFAULT_TEAM_FOLDER_PATH,
        description=f"Where the folder appears in every member's server; defaults to "
        f"`{DEFAULT_TEAM_FOLDER_PATH}`.",
    )


def _default_namespace(data: dict[str, Any]) -> str:
    return DefaultNamespace(f"team-{data['name']}")


class Team(Schema):
    """A team: who belongs (identity-provider groups), where its servers run, what it may use.

    The first entry of ``profiles`` is the team's default profile.
    """

    name: EntryNameFromKey
    display_name: Annotated[str, Text(100)] = Field(
        default_factory=lambda data: data["name"],
        description="Shown in the team chooser; defaults to the team's name.",
    )
    groups: Annotated[tuple[Annotated[str, Text(256)], ...], Listed()] = Field(
        default=(),
        description="Identity-provider groups whose members belong to the team; matched exactly "
        '("/ml/vision" is not "/ml/vision/").',
    )
    lead_groups: Annotated[tuple[Annotated[str, Text(256)], ...], Listed()] = Field(
        default=(), description="Groups whose members lead the team; leads are members too."
    )
    namespace: Annotated[str, Namespace()] = Field(
        default_factory=_default_namespace,
        validate_default=True,
        description="The Kubernetes namespace of the team's servers, unique across teams, not "
        "`default` or `kube-*`; defaults to `team-<team>`.",
    )
    quota: Quota = Field(description="The team's limits.")
    profiles: Annotated[tuple[Annotated[str, Name(what="profile")], ...], Listed("profile")] = (
        Field(description="The profiles the team may use, at least one; the first is the default.")
    )
    datasets: Annotated[tuple[Annotated[str, Name(what="dataset")], ...], Listed()] = Field(
        default=(), description="The datasets of the team's catalog."
    )
    promotion: Promotion = Field(
        default_factory=lambda: Promotion(), description="How the team's models are promoted."
    )
    contact: Annotated[str, Text(256)] | None = Field(
        default=None,
        description='Shown in quota messages: "ask your team lead (#ml-vision on Slack)".',
    )
    home: HomeStorage = Field(
        default_factory=lambda: HomeStorage(),
        description="The size and StorageClass of the members' homes in this team, when they "
        "differ from the hub's global home settings.",
    )
    shared_folder: SharedFolder | None = Field(
        default=None,
        description="A read-write folder shared by the team's members, mounted in each of "
        "their servers; none when left out.",
    )
    serving: Serving = Field(
        default_factory=lambda: Serving(),
        description="Whether and how the team's champion models are served through KServe.",
    )

    @property
    def default_profile(self) -> str:
        return self.profiles[0]


class MLTeamsConfig(Schema):
    """The team configuration: teams, profiles and datasets, each by name."""

    teams: Annotated[Mapping[Annotated[str, EntryName("team")], Team], Keyed()] = Field(
        description="Team name to team. Names are DNS-1123 labels."
    )
    profiles: Annotated[Mapping[Annotated[str, EntryName("profile")], Profile], Keyed()] = Field(
        description="Profile name to server profile. Names are DNS-1123 labels."
    )
    datasets: Annotated[Mapping[Annotated[str, EntryName("dataset")], Dataset], Keyed()] = Field(
        default={},
        validate_default=True,
        description="Dataset name to dataset. Names are DNS-1123 labels.",
    )

    @property
    def namespace_teams(self) -> Mapping[str, str]:
        """Namespace -> team name."""
        return {team.namespace: team.name for team in self.teams.values()}

    @classmethod
    def problems_across(cls, raw: Any, context: Any) -> list[InitErrorDetails]:
        """Namespaces are unique; every profile and dataset a team lists is declared, and no
        listed profile needs more than the team could ever give one user."""
        if not isinstance(raw, Mapping):
            return []
        root = root_of(context)
        teams = _entries(raw.get("teams"), Team, context)
        profiles = _entries(raw.get("profiles"), Profile, context)
        datasets = _entries(raw.get("datasets"), Dataset, context)
        problems: list[InitErrorDetails] = []
        namespaces: dict[str, str] = {}
        for name, team in teams.items():
            if team is None:
                continue
            namespace = team.get("namespace")
            if namespace is not None:
                owner = namespaces.setdefault(namespace, name)
                if owner != name:
                    problems.append(
                        problem_at(
                            ("teams", name, "namespace"),
                            f"namespace {show(namespace)} is already used by team {owner}",
                        )
                    )
            for index, listed in enumerate(team.get("profiles", ())):
                at = ("teams", name, "profiles", index)
                if listed not in profiles:
                    where = child(root, "profiles")
                    problems.append(problem_at(at, _undeclared("profile", listed, profiles, where)))
                elif "quota" in team:
                    for message in _misfits(name, team["quota"], listed, profiles[listed]):
                        problems.append(problem_at(at, message))
            if "quota" in team:
                for key, message in _storage_misfits(name, team):
                    problems.append(problem_at(("teams", name, *key), message))
            problems += _readable_evaluations(name, team, datasets)
            for index, listed in enumerate(team.get("datasets", ())):
                if listed not in datasets:
                    problems.append(
                        problem_at(
                            ("teams", name, "datasets", index),
                            _undeclared("dataset", listed, datasets, child(root, "datasets")),
                        )
                    )
        return problems


class Sharing(Schema):
    """Who a user may share a running server with (JupyterHub's shares, through the `mlteams`
    service; see docs/admin/sharing.md)."""

    outside_team: Annotated[bool, Flag()] = Field(
        default=False,
        description="When true, users may share their servers with any user or team of the hub; "
        "when false (the default), only with members of their own teams.",
    )


class MLTeamsSection(MLTeamsConfig):
    """The whole `MLTeams` section of the hub configuration (`hub.config.MLTeams` in the Zero to
    JupyterHub values): the team configuration and the hub's own settings beside it."""

    model_config = ConfigDict(title=ROOT)

    provision: Annotated[bool, Flag()] = Field(
        default=True,
        description="Create or update each team's Namespace, ResourceQuota and the hub's "
        "RoleBinding there when the hub starts; when false, the hub only checks that they exist "
        "and says what is missing (render them with `mlteams-manifests`).",
    )
    hub_namespace: Annotated[str, HubNamespace()] = Field(
        default="",
        description="The namespace the hub runs in; when empty, the `POD_NAMESPACE` environment "
        "variable (set by the chart), else `jupyterhub`.",
    )
    hub_service_account: Annotated[str, ObjectName(what="service account")] = Field(
        default="hub",
        description="The service account the hub runs as, bound to the per-team RBAC.",
    )
    queue_poll_seconds: Annotated[float, PositiveNumber(3600)] = Field(
        default=2.0,
        description="How often queued spawns are checked again, in seconds (they are also "
        "checked at once when a server stops or a spawn fails).",
    )
    sharing: Sharing = Field(
        default_factory=lambda: Sharing(),
        description="Sharing running servers: with teammates only, or with anyone.",
    )


def load_config(raw: Any, *, root: str = ROOT) -> MLTeamsSection:
    """Validate ``raw`` (the mapping under ``hub.config.MLTeams``) and build the configuration.

    Raises ``ConfigError`` naming every bad key path below ``root`` and why.
    """
    try:
        return MLTeamsSection.model_validate(
            raw, context=written_by_admin(root), by_alias=True, by_name=False
        )
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, root)) from None


def parse_quota_override(raw: Any, *, path: str = "quota_override") -> QuotaOverride:
    """Validate a run-time quota override such as ``{"gpus": 4, "gpus_per_user": 1}``.

    Raises ``ConfigError`` naming each bad key below ``path``.
    """
    try:
        return QuotaOverride.model_validate(
            raw, context=written_by_admin(path), by_alias=True, by_name=False
        )
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, path), "invalid quota override") from None


class _Documentation(GenerateJsonSchema):
    """JSON Schema for admins: no generated titles on keys, each description its first paragraph,
    and the names of a mapping's keys checked by ``propertyNames``."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        documented = super().dict_schema(schema)
        patterns = documented.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            documented["additionalProperties"] = values
            names = {"pattern": pattern, **documented.get("propertyNames", {})}
            documented["propertyNames"] = names
        return documented

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        generated: JsonSchemaValue = _first_paragraphs(super().generate(schema, mode))
        return generated


def _first_paragraphs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                " ".join(value.split("\n\n")[0].split())
                if key == "description" and isinstance(value, str)
                else _first_paragraphs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_first_paragraphs(item) for item in node]
    return node


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the `MLTeams` section, as an admin writes it."""
    schema = MLTeamsSection.model_json_schema(schema_generator=_Documentation)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def render_json_schema() -> str:
    """``json_schema`` as the text of ``helm-values/mlteams.schema.json``."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


# -- checks across sections -----------------------------------------------------------------------


def _entries(section: Any, model: type[Schema], context: Any) -> dict[str, dict[str, Any] | None]:
    """The entries of a section as written, by valid name: the keys that are valid on their own
    (``None`` for an entry that is not a mapping)."""
    if not isinstance(section, Mapping):
        return {}
    return {
        name: _valid_fields(model, entry, context, name) if isinstance(entry, Mapping) else None
        for name, entry in section.items()
        if isinstance(name, str) and is_dns_label(name)
    }


def _valid_fields(
    model: type[Schema], entry: Mapping[str, Any], context: Any, name: str
) -> dict[str, Any]:
    """The fields of ``entry`` whose values are valid on their own, defaults for those left out."""
    out: dict[str, Any] = {"name": name}
    for field_name, field in model.model_fields.items():
        if field_name in out:
            continue
        key = field.alias or field_name
        if key in entry:
            value = entry[key]
        elif field.is_required():
            continue
        else:
            value = field.get_default(call_default_factory=True, validated_data=out)
            if not field.validate_default:
                out[field_name] = value
                continue
        try:
            out[field_name] = _field_adapter(model, field_name).validate_python(
                value, context=context, by_alias=True, by_name=False
            )
        except ValidationError:
            continue
    return out


@cache
def _field_adapter(model: type[Schema], field_name: str) -> TypeAdapter[Any]:
    field = model.model_fields[field_name]
    annotation: Any = field.annotation
    if field.metadata:
        annotated: Any = Annotated
        annotation = annotated[tuple([annotation, *field.metadata])]
    return TypeAdapter(annotation)


def _undeclared(what: str, name: str, declared: Mapping[str, Any], where: str) -> str:
    hint = did_you_mean(name, declared)
    known = ", ".join(sorted(declared)) or "none"
    return f"{what} {show(name)} is not declared under {where}{hint}; declared: {known}"


def _misfits(team: str, quota: Quota, name: str, profile: dict[str, Any] | None) -> list[str]:
    """Why no member of ``team`` could ever start ``profile``, if so."""
    if profile is None:
        return []
    problems: list[str] = []
    if "gpu_request" in profile:
        fewest = gpu_bounds(profile["gpu_request"])[1]
        if fewest > quota.gpus_per_user:
            problems.append(
                f"profile {show(name)} needs {plural(fewest, 'GPU')} but team {team} allows at "
                f"most {quota.gpus_per_user} per user"
            )
    cpu, memory = profile.get("cpu"), profile.get("memory")
    if quota.cpu is not None and cpu is not None and cpu > quota.cpu:
        problems.append(
            f"profile {show(name)} needs {describe_cpu(cpu)} but team {team}'s quota is "
            f"{describe_cpu(quota.cpu)}"
        )
    if quota.memory is not None and memory is not None and memory > quota.memory:
        problems.append(
            f"profile {show(name)} needs {describe_memory(memory)} of memory but team {team}'s "
            f"quota is {describe_memory(quota.memory)}"
        )
    return problems


def _readable_evaluations(
    team: str, fields: dict[str, Any], datasets: dict[str, dict[str, Any] | None]
) -> list[InitErrorDetails]:
    """Evaluation sets that the team's users could read through one of the team's datasets."""
    promotion: Promotion | None = fields.get("promotion")
    if promotion is None:
        return []
    places: list[tuple[tuple[str, ...], Evaluation | None]] = [
        (("promotion", "evaluation", "uri"), promotion.evaluation)
    ]
    places += [
        (("promotion", "models", model, "evaluation", "uri"), rules.evaluation)
        for model, rules in promotion.models.items()
    ]
    problems = []
    for at, evaluation in places:
        if evaluation is None:
            continue
        for listed in fields.get("datasets", ()):
            dataset = datasets.get(listed) or {}
            uri = dataset.get("uri")
            if isinstance(uri, str) and evaluation.uri.startswith(uri.rstrip("/") + "/"):
                problems.append(
                    problem_at(
                        ("teams", team, *at),
                        f"the evaluation set lies inside dataset {listed} ({uri}), which team "
                        f"{team}'s users can read: its labels would not be held out",
                    )
                )
    return problems


def _storage_misfits(team: str, fields: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Where ``team``'s storage quota leaves no room for a home or the team folder, if so."""
    quota: Quota = fields["quota"]
    home: HomeStorage | None = fields.get("home")
    folder: SharedFolder | None = fields.get("shared_folder")
    problems: list[tuple[tuple[str, ...], str]] = []
    room = quota.storage
    if room is not None and home is not None and home.capacity is not None:
        if home.capacity > room:
            problems.append(
                (
                    ("home", "capacity"),
                    f"a home of {describe_memory(home.capacity)} does not fit team {team}'s "
                    f"storage quota of {describe_memory(room)}",
                )
            )
    if folder is not None and folder.create:
        if room is not None and folder.capacity > room:
            problems.append(
                (
                    ("shared_folder", "capacity"),
                    f"a team folder of {describe_memory(folder.capacity)} does not fit team "
                    f"{team}'s storage quota of {describe_memory(room)}",
                )
            )
        if quota.claims == 0:
            problems.append(
                (
                    ("quota", "claims"),
                    f"team {team}'s quota allows no volume claims, so its team folder cannot be "
                    "created",
                )
            )
    return problems
