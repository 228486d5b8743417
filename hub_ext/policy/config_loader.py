"""Parsing and validation of the team configuration and of run-time quota overrides.

``load_config`` turns the plain mapping an admin writes under ``hub.config.MLTeams`` into the
frozen dataclasses of ``config``, or raises one ``ConfigError`` listing every problem with its
full key path and why.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from hub_ext.policy.config import (
    DEFAULT_QUEUE_WAIT_SECONDS,
    MAX_GPUS,
    MAX_QUEUE_WAIT_SECONDS,
    RESERVED_ENV_PREFIXES,
    ROOT,
    TOLERATION_EFFECTS,
    TOLERATION_OPERATORS,
    Dataset,
    MLTeamsConfig,
    Profile,
    Promotion,
    QueuePolicy,
    Quota,
    QuotaOverride,
    Team,
    Toleration,
    frozen,
)
from hub_ext.policy.quantities import (
    QuantityError,
    describe_cpu,
    describe_memory,
    parse_cpu,
    parse_memory,
)
from hub_ext.policy.validation import (
    Problems,
    child,
    did_you_mean,
    has_control_characters,
    is_dns_label,
    is_dns_subdomain,
    is_env_name,
    is_label_key,
    is_label_value,
    plural,
    show,
)

_T = TypeVar("_T")
_EMPTY: Mapping[str, Any] = frozen({})

TOP_KEYS = ("teams", "profiles", "datasets")
TEAM_KEYS = (
    "display_name",
    "groups",
    "lead_groups",
    "namespace",
    "quota",
    "profiles",
    "datasets",
    "promotion",
    "contact",
)
QUOTA_KEYS = ("gpus", "gpus_per_user", "cpu", "memory")
PROFILE_KEYS = (
    "display_name",
    "description",
    "image",
    "gpus",
    "cpu",
    "memory",
    "node_selector",
    "tolerations",
    "env",
    "queue",
)
GPU_RANGE_KEYS = ("default", "min", "max")
QUEUE_KEYS = ("enabled", "max_wait_seconds")
TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
DATASET_KEYS = ("uri", "format", "description", "volume", "credentials_secret")
PROMOTION_KEYS = ("gates", "high_stakes")


def parse_quota_override(raw: Any, *, path: str = "quota_override") -> QuotaOverride:
    """Validate a run-time quota override such as ``{"gpus": 4, "gpus_per_user": 1}``.

    Raises ``ConfigError`` naming each bad key below ``path``.
    """
    problems = Problems()
    parser = _Parser(problems)
    override = parser.mapping(raw, path)
    if override is None:
        problems.raise_if_any("invalid quota override")
        return QuotaOverride()
    parser.keys(override, path, QUOTA_KEYS)

    def count(key: str) -> int | None:
        value = override.get(key)
        return None if value is None else parser.integer(value, child(path, key), 0, MAX_GPUS)

    result = QuotaOverride(
        gpus=count("gpus"),
        gpus_per_user=count("gpus_per_user"),
        cpu=parser.quantity(override.get("cpu"), child(path, "cpu"), parse_cpu),
        memory=parser.quantity(override.get("memory"), child(path, "memory"), parse_memory),
    )
    if (
        not problems
        and result.gpus is not None
        and result.gpus_per_user is not None
        and result.gpus_per_user > result.gpus
    ):
        problems.add(
            child(path, "gpus_per_user"),
            f"must not exceed gpus ({result.gpus}), got {result.gpus_per_user}",
        )
    problems.raise_if_any("invalid quota override")
    return result


def load_config(raw: Any, *, root: str = ROOT) -> MLTeamsConfig:
    """Validate ``raw`` (the mapping under ``hub.config.MLTeams``) and build the configuration.

    Raises ``ConfigError`` naming every bad key path and why.
    """
    problems = Problems()
    config = _Parser(problems).config(raw, root)
    problems.raise_if_any()
    assert config is not None
    return config


class _Parser:
    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.bad_quotas: set[str] = set()

    def fail(self, path: str, message: str) -> None:
        self.problems.add(path, message)

    # -- generic shapes -------------------------------------------------------------------

    def mapping(self, value: Any, path: str) -> Mapping[str, Any] | None:
        if isinstance(value, Mapping):
            bad = [key for key in value if not isinstance(key, str)]
            for key in bad:
                self.fail(path, f"keys must be strings, got {show(key)}")
            return None if bad else value
        self.fail(path, f"must be a mapping, got {show(value)}")
        return None

    def keys(
        self,
        value: Mapping[str, Any],
        path: str,
        allowed: Collection[str],
        required: Collection[str] = (),
    ) -> None:
        for key in value:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.fail(
                    child(path, key),
                    f"unknown key{hint}; allowed keys: {', '.join(allowed)}",
                )
        for key in required:
            if key not in value:
                self.fail(child(path, key), "is required")

    def integer(self, value: Any, path: str, minimum: int = 0, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"must be an integer >= {minimum}, got {show(value)}")
            return minimum
        if maximum is not None and value > maximum:
            self.fail(path, f"must be at most {maximum}, got {show(value)}")
            return minimum
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {show(value)}")
            return False
        return value

    def string(self, value: Any, path: str, max_length: int = 256, empty: bool = False) -> str:
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {show(value)}")
            return ""
        if not value and not empty:
            self.fail(path, "must not be empty")
        elif len(value) > max_length:
            self.fail(path, f"must be at most {max_length} characters, got {len(value)}")
        elif has_control_characters(value):
            self.fail(path, f"must not contain control characters, got {show(value)}")
        return value

    def optional_string(self, value: Any, path: str, max_length: int = 256) -> str | None:
        return None if value is None else self.string(value, path, max_length)

    def string_list(
        self, value: Any, path: str, item: Callable[[Any, str], str]
    ) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            self.fail(path, f"must be a list, got {show(value)}")
            return ()
        out: list[str] = []
        for index, entry in enumerate(value):
            entry_path = child(path, index)
            text = item(entry, entry_path)
            if text in out:
                self.fail(entry_path, f"{show(text)} is listed twice")
            else:
                out.append(text)
        return tuple(out)

    def name(self, value: Any, path: str, what: str) -> str:
        text = self.string(value, path, max_length=63)
        if text and not is_dns_label(text):
            self.fail(
                path,
                f"{what} must be a DNS-1123 label (lower-case letters, digits and '-', starting "
                f"and ending with a letter or digit, at most 63 characters), got {show(text)}",
            )
        return text

    def quantity(self, value: Any, path: str, parse: Callable[[Any], int]) -> int | None:
        if value is None:
            return None
        try:
            return parse(value)
        except QuantityError as exc:
            self.fail(path, f"must be a Kubernetes quantity: {exc}")
            return None

    def checked_names(self, raw: Mapping[str, Any], path: str, what: str) -> dict[str, str]:
        names: dict[str, str] = {}
        for key in raw:
            key_path = child(path, key)
            if not is_dns_label(key):
                self.fail(
                    key_path,
                    f"{what} name must be a DNS-1123 label (lower-case letters, digits and '-', "
                    "at most 63 characters)",
                )
            else:
                names[key] = key_path
        return names

    # -- the schema -------------------------------------------------------------------------

    def config(self, raw: Any, root: str) -> MLTeamsConfig | None:
        top = self.mapping(raw, root)
        if top is None:
            return None
        self.keys(top, root, TOP_KEYS, required=("teams", "profiles"))
        profiles = self.section(
            top.get("profiles", {}), child(root, "profiles"), "profile", self.profile
        )
        datasets = self.section(
            top.get("datasets", {}), child(root, "datasets"), "dataset", self.dataset
        )
        teams = self.section(top.get("teams", {}), child(root, "teams"), "team", self.team)
        self.cross_check(teams, profiles, datasets, child(root, "teams"), root)
        return MLTeamsConfig(
            teams=frozen(teams), profiles=frozen(profiles), datasets=frozen(datasets)
        )

    def section(
        self,
        raw: Any,
        path: str,
        what: str,
        build: Callable[[str, Mapping[str, Any], str], _T | None],
    ) -> dict[str, _T]:
        if raw is None:
            return {}
        section = self.mapping(raw, path)
        if section is None:
            return {}
        out: dict[str, _T] = {}
        for name, item_path in self.checked_names(section, path, what).items():
            item = self.mapping(section[name], item_path)
            if item is None:
                continue
            built = build(name, item, item_path)
            if built is not None:
                out[name] = built
        return out

    def quota(self, raw: Any, path: str) -> Quota:
        quota = self.mapping(raw, path)
        if quota is None:
            return Quota(gpus=0, gpus_per_user=0)
        self.keys(quota, path, QUOTA_KEYS, required=("gpus",))
        before = len(self.problems)
        gpus = self.integer(quota.get("gpus", 0), child(path, "gpus"), 0, MAX_GPUS)
        gpus_valid = "gpus" in quota and len(self.problems) == before
        per_user_path = child(path, "gpus_per_user")
        per_user = gpus
        if "gpus_per_user" in quota:
            per_user = self.integer(quota["gpus_per_user"], per_user_path, 0, MAX_GPUS)
            if per_user > gpus and gpus_valid:
                self.fail(
                    per_user_path,
                    f"must not exceed the team's gpus ({gpus}), got {per_user}",
                )
        return Quota(
            gpus=gpus,
            gpus_per_user=min(per_user, gpus),
            cpu=self.quantity(quota.get("cpu"), child(path, "cpu"), parse_cpu),
            memory=self.quantity(quota.get("memory"), child(path, "memory"), parse_memory),
        )

    def team(self, name: str, raw: Mapping[str, Any], path: str) -> Team | None:
        self.keys(raw, path, TEAM_KEYS, required=("quota", "profiles"))
        group = self.group_name
        namespace = f"team-{name}"
        if "namespace" in raw:
            namespace = self.name(raw["namespace"], child(path, "namespace"), "namespace")
        elif not is_dns_label(namespace):
            self.fail(
                child(path, "namespace"),
                f"the default namespace {show(namespace)} is longer than 63 characters; "
                "set a shorter namespace",
            )
        if namespace == "default" or namespace.startswith("kube-"):
            self.fail(
                child(path, "namespace"),
                f"{show(namespace)} is reserved by Kubernetes; choose a team namespace",
            )
        profiles = self.string_list(
            raw.get("profiles", []),
            child(path, "profiles"),
            lambda v, p: self.name(v, p, "profile"),
        )
        if "profiles" in raw and not profiles and isinstance(raw["profiles"], list | tuple):
            self.fail(child(path, "profiles"), "must list at least one profile")
        return Team(
            name=name,
            display_name=self.string(
                raw.get("display_name", name), child(path, "display_name"), max_length=100
            ),
            namespace=namespace,
            quota=self.team_quota(name, raw, path),
            profiles=profiles,
            groups=self.string_list(raw.get("groups", []), child(path, "groups"), group),
            lead_groups=self.string_list(
                raw.get("lead_groups", []), child(path, "lead_groups"), group
            ),
            datasets=self.string_list(
                raw.get("datasets", []),
                child(path, "datasets"),
                lambda v, p: self.name(v, p, "dataset"),
            ),
            promotion=self.promotion(raw.get("promotion", {}), child(path, "promotion")),
            contact=self.optional_string(raw.get("contact"), child(path, "contact")),
        )

    def team_quota(self, name: str, raw: Mapping[str, Any], path: str) -> Quota:
        before = len(self.problems)
        quota = Quota(gpus=0, gpus_per_user=0)
        if "quota" in raw:
            quota = self.quota(raw["quota"], child(path, "quota"))
        if len(self.problems) != before or "quota" not in raw:
            self.bad_quotas.add(name)
        return quota

    def group_name(self, value: Any, path: str) -> str:
        return self.string(value, path, max_length=256)

    def promotion(self, raw: Any, path: str) -> Promotion:
        promotion = self.mapping(raw, path)
        if promotion is None:
            return Promotion()
        self.keys(promotion, path, PROMOTION_KEYS)
        gates = self.mapping(promotion.get("gates", {}), child(path, "gates"))
        if gates is not None:
            for gate, spec in gates.items():
                if not isinstance(spec, Mapping):
                    self.fail(
                        child(child(path, "gates"), gate), f"must be a mapping, got {show(spec)}"
                    )
        return Promotion(
            gates=frozen(gates or {}),
            high_stakes=self.boolean(
                promotion.get("high_stakes", False), child(path, "high_stakes")
            ),
        )

    def profile(self, name: str, raw: Mapping[str, Any], path: str) -> Profile | None:
        self.keys(raw, path, PROFILE_KEYS, required=("image",))
        image = self.string(raw.get("image", ""), child(path, "image"), max_length=512)
        if image and any(ch.isspace() for ch in image):
            self.fail(child(path, "image"), f"must not contain spaces, got {show(image)}")
        gpus, gpus_min, gpus_max = self.gpus(raw.get("gpus", 0), child(path, "gpus"))
        return Profile(
            name=name,
            image=image,
            display_name=self.string(
                raw.get("display_name", name), child(path, "display_name"), max_length=100
            ),
            description=self.string(
                raw.get("description", ""), child(path, "description"), max_length=1000, empty=True
            ),
            gpus=gpus,
            gpus_min=gpus_min,
            gpus_max=gpus_max,
            cpu=self.quantity(raw.get("cpu"), child(path, "cpu"), parse_cpu),
            memory=self.quantity(raw.get("memory"), child(path, "memory"), parse_memory),
            node_selector=self.node_selector(
                raw.get("node_selector", {}), child(path, "node_selector")
            ),
            tolerations=self.tolerations(raw.get("tolerations", []), child(path, "tolerations")),
            env=self.env(raw.get("env", {}), child(path, "env")),
            queue=self.queue(raw.get("queue", {}), child(path, "queue")),
        )

    def gpus(self, raw: Any, path: str) -> tuple[int, int, int]:
        if not isinstance(raw, Mapping):
            count = self.integer(raw, path, 0, MAX_GPUS)
            return count, count, count
        self.keys(raw, path, GPU_RANGE_KEYS, required=("min", "max"))
        low = self.integer(raw.get("min", 0), child(path, "min"), 0, MAX_GPUS)
        high = self.integer(raw.get("max", low), child(path, "max"), 0, MAX_GPUS)
        if high < low:
            self.fail(child(path, "max"), f"must be >= min ({low}), got {high}")
            high = low
        default = self.integer(raw.get("default", low), child(path, "default"), 0, MAX_GPUS)
        if not low <= default <= high:
            self.fail(
                child(path, "default"),
                f"must be between min ({low}) and max ({high}), got {default}",
            )
            default = low
        return default, low, high

    def node_selector(self, raw: Any, path: str) -> Mapping[str, str]:
        selector = self.mapping(raw, path)
        if selector is None:
            return _EMPTY
        out: dict[str, str] = {}
        for key, value in selector.items():
            key_path = child(path, key)
            if not is_label_key(key):
                self.fail(key_path, "is not a valid Kubernetes label key")
            if not isinstance(value, str):
                self.fail(key_path, f"must be a string (quote it in YAML), got {show(value)}")
            elif not is_label_value(value):
                self.fail(key_path, f"is not a valid Kubernetes label value: {show(value)}")
            else:
                out[key] = value
        return frozen(out)

    def tolerations(self, raw: Any, path: str) -> tuple[Toleration, ...]:
        if not isinstance(raw, list | tuple):
            self.fail(path, f"must be a list, got {show(raw)}")
            return ()
        out: list[Toleration] = []
        for index, entry in enumerate(raw):
            toleration = self.toleration(entry, child(path, index))
            if toleration is not None:
                out.append(toleration)
        return tuple(out)

    def toleration(self, raw: Any, path: str) -> Toleration | None:
        spec = self.mapping(raw, path)
        if spec is None:
            return None
        self.keys(spec, path, TOLERATION_KEYS)
        operator = spec.get("operator", "Equal")
        if operator not in TOLERATION_OPERATORS:
            self.fail(
                child(path, "operator"),
                f"must be one of {', '.join(TOLERATION_OPERATORS)}, got {show(operator)}",
            )
        key = spec.get("key")
        if key is not None and (not isinstance(key, str) or not is_label_key(key)):
            self.fail(child(path, "key"), f"is not a valid taint key: {show(key)}")
        value = spec.get("value")
        if value is not None:
            if not isinstance(value, str) or not is_label_value(value):
                self.fail(child(path, "value"), f"is not a valid taint value: {show(value)}")
            elif operator == "Exists":
                self.fail(child(path, "value"), "must not be set when operator is Exists")
        if key is None and operator != "Exists":
            self.fail(child(path, "key"), "is required unless operator is Exists")
        effect = spec.get("effect")
        if effect is not None and effect not in TOLERATION_EFFECTS:
            hint = did_you_mean(str(effect), TOLERATION_EFFECTS)
            self.fail(
                child(path, "effect"),
                f"must be one of {', '.join(TOLERATION_EFFECTS)}, got {show(effect)}{hint}",
            )
        seconds = spec.get("tolerationSeconds")
        if seconds is not None:
            seconds = self.integer(seconds, child(path, "tolerationSeconds"), 0)
            if effect != "NoExecute":
                self.fail(child(path, "tolerationSeconds"), "only applies when effect is NoExecute")
        return Toleration(
            key=key if isinstance(key, str) else None,
            operator=operator if isinstance(operator, str) else "Equal",
            value=value if isinstance(value, str) else None,
            effect=effect if isinstance(effect, str) else None,
            toleration_seconds=seconds,
        )

    def env(self, raw: Any, path: str) -> Mapping[str, str]:
        env = self.mapping(raw, path)
        if env is None:
            return _EMPTY
        out: dict[str, str] = {}
        for key, value in env.items():
            key_path = child(path, key)
            if not is_env_name(key):
                self.fail(
                    key_path,
                    "is not a valid environment variable name "
                    "(letters, digits and '_', not starting with a digit)",
                )
                continue
            if key.upper().startswith(RESERVED_ENV_PREFIXES):
                self.fail(
                    key_path,
                    f"names starting with {' or '.join(RESERVED_ENV_PREFIXES)} are set by the hub",
                )
                continue
            if not isinstance(value, str):
                self.fail(key_path, f"must be a string (quote it in YAML), got {show(value)}")
                continue
            out[key] = value
        return frozen(out)

    def queue(self, raw: Any, path: str) -> QueuePolicy:
        queue = self.mapping(raw, path)
        if queue is None:
            return QueuePolicy()
        self.keys(queue, path, QUEUE_KEYS)
        return QueuePolicy(
            enabled=self.boolean(queue.get("enabled", False), child(path, "enabled")),
            max_wait_seconds=self.integer(
                queue.get("max_wait_seconds", DEFAULT_QUEUE_WAIT_SECONDS),
                child(path, "max_wait_seconds"),
                1,
                MAX_QUEUE_WAIT_SECONDS,
            ),
        )

    def dataset(self, name: str, raw: Mapping[str, Any], path: str) -> Dataset | None:
        self.keys(raw, path, DATASET_KEYS, required=("uri",))
        uri = self.string(raw.get("uri", ""), child(path, "uri"), max_length=2048)
        if uri and "://" not in uri and not uri.startswith("/"):
            self.fail(
                child(path, "uri"),
                f"must be a URI such as s3://bucket/path/ or an absolute path, got {show(uri)}",
            )
        volume = raw.get("volume")
        if volume is not None:
            volume = self.mapping(volume, child(path, "volume"))
        secret = raw.get("credentials_secret")
        if secret is not None:
            secret = self.string(secret, child(path, "credentials_secret"), max_length=253)
            if secret and not is_dns_subdomain(secret):
                self.fail(
                    child(path, "credentials_secret"),
                    f"must be a Kubernetes Secret name, got {show(secret)}",
                )
        return Dataset(
            name=name,
            uri=uri,
            format=self.optional_string(raw.get("format"), child(path, "format"), 64),
            description=self.string(
                raw.get("description", ""), child(path, "description"), max_length=1000, empty=True
            ),
            volume=frozen(volume) if volume is not None else None,
            credentials_secret=secret,
        )

    # -- checks across sections ---------------------------------------------------------------

    def cross_check(
        self,
        teams: Mapping[str, Team],
        profiles: Mapping[str, Profile],
        datasets: Mapping[str, Dataset],
        teams_path: str,
        root: str,
    ) -> None:
        namespaces: dict[str, str] = {}
        for team in teams.values():
            path = child(teams_path, team.name)
            owner = namespaces.setdefault(team.namespace, team.name)
            if owner != team.name:
                self.fail(
                    child(path, "namespace"),
                    f"namespace {show(team.namespace)} is already used by team {owner}",
                )
            for index, name in enumerate(team.profiles):
                entry = child(child(path, "profiles"), index)
                profile = profiles.get(name)
                if profile is None:
                    self.fail(
                        entry, self.undeclared("profile", name, profiles, child(root, "profiles"))
                    )
                    continue
                if team.name not in self.bad_quotas:
                    self.check_fits(team, profile, entry)
            for index, name in enumerate(team.datasets):
                if name not in datasets:
                    self.fail(
                        child(child(path, "datasets"), index),
                        self.undeclared("dataset", name, datasets, child(root, "datasets")),
                    )

    def undeclared(self, what: str, name: str, declared: Mapping[str, Any], where: str) -> str:
        hint = did_you_mean(name, declared)
        known = ", ".join(sorted(declared)) or "none"
        return f"{what} {show(name)} is not declared under {where}{hint}; declared: {known}"

    def check_fits(self, team: Team, profile: Profile, path: str) -> None:
        quota = team.quota
        if profile.gpus_min > quota.gpus_per_user:
            self.fail(
                path,
                f"profile {show(profile.name)} needs {plural(profile.gpus_min, 'GPU')} but "
                f"team {team.name} allows at most {quota.gpus_per_user} per user",
            )
        if quota.cpu is not None and profile.cpu is not None and profile.cpu > quota.cpu:
            self.fail(
                path,
                f"profile {show(profile.name)} needs {describe_cpu(profile.cpu)} but "
                f"team {team.name}'s quota is {describe_cpu(quota.cpu)}",
            )
        if (
            quota.memory is not None
            and profile.memory is not None
            and profile.memory > quota.memory
        ):
            self.fail(
                path,
                f"profile {show(profile.name)} needs {describe_memory(profile.memory)} "
                f"of memory but team {team.name}'s quota is "
                f"{describe_memory(quota.memory)}",
            )
