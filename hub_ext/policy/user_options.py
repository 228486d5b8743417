"""Validation of ``user_options``, the same for the spawn form and the REST API.

The form delivers lists of strings (``options_from_form`` turns them into plain values), the
REST API delivers JSON; both then go through ``validate_user_options``. Every rejection is a
``UserOptionsError`` with an HTTP status (400, or 403 for another team or another team's
profile) and a message that quotes bad input only as a short, sanitised excerpt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub_ext.policy.admission import SpawnRequest
from hub_ext.policy.config import MAX_GPUS, MLTeamsConfig, Profile
from hub_ext.policy.membership import Membership, TeamSelectionError, choose_team
from hub_ext.policy.validation import excerpt, has_control_characters, is_dns_label, plural

ALLOWED_KEYS = ("team", "profile", "gpus")
FORM_IGNORED_KEYS = frozenset({"_xsrf"})
MAX_OPTIONS_BYTES = 4096
MAX_NAME_LENGTH = 63
_MAX_GPU_DIGITS = len(str(MAX_GPUS))
_FORBIDDEN_CHARACTERS = frozenset("\"'`{}<>\\$%")


class UserOptionsError(Exception):
    """Spawn options that cannot be used; ``http_status`` is 400 or 403."""

    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class SpawnOptions:
    """Validated options: the team (with the user's role in it), profile and GPU choice."""

    membership: Membership
    profile: Profile
    gpus: int | None = None

    @property
    def team(self) -> str:
        return self.membership.name

    def request(self, user: str, server_name: str = "") -> SpawnRequest:
        return SpawnRequest(
            user=user,
            team=self.team,
            profile=self.profile.name,
            server_name=server_name,
            gpus=self.gpus,
        )

    def to_user_options(self) -> dict[str, Any]:
        """The canonical options to store on the spawner (and to send again on restart)."""
        out: dict[str, Any] = {"team": self.team, "profile": self.profile.name}
        if self.gpus is not None:
            out["gpus"] = self.gpus
        return out


def options_from_form(formdata: Mapping[str, Any]) -> dict[str, Any]:
    """Form fields (lists of strings) to plain values; the XSRF field is dropped.

    A field sent once becomes its single value; a field sent several times stays a list, which
    ``validate_user_options`` rejects.
    """
    out: dict[str, Any] = {}
    for key, value in formdata.items():
        if key in FORM_IGNORED_KEYS:
            continue
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        out[key] = value
    return out


def validate_user_options(
    config: MLTeamsConfig, options: Any, *, groups: Iterable[str]
) -> SpawnOptions:
    """Check ``options`` for a user whose hub groups are ``groups``.

    Missing ``team`` means the user's only team; missing ``profile`` means the team's default
    profile; missing ``gpus`` means the profile's default count.
    """
    _check_size(options)
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise UserOptionsError("Spawn options must be a JSON object.")
    for key in options:
        if not isinstance(key, str) or key not in ALLOWED_KEYS:
            raise UserOptionsError(
                f"Unknown spawn option {excerpt(key)}. Allowed options: {', '.join(ALLOWED_KEYS)}."
            )
    team_name = _name(options.get("team"), "team")
    try:
        membership = choose_team(config, groups, team_name)
    except TeamSelectionError as exc:
        raise UserOptionsError(exc.message, exc.http_status) from None
    team = membership.team
    profile_name = _name(options.get("profile"), "profile") or team.default_profile
    profile = config.profiles.get(profile_name)
    if profile is None:
        raise UserOptionsError(
            f"Unknown profile {excerpt(profile_name)}. Team {team.name} may use: "
            f"{', '.join(team.profiles)}."
        )
    if profile.name not in team.profiles:
        raise UserOptionsError(
            f"Profile {profile.name} is not available to team {team.name}. Team {team.name} "
            f"may use: {', '.join(team.profiles)}.",
            http_status=403,
        )
    gpus = _gpus(options.get("gpus"), profile)
    return SpawnOptions(membership, profile, gpus)


def _check_size(options: Any) -> None:
    try:
        size = len(json.dumps(options, ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise UserOptionsError("Spawn options must be plain JSON values.") from None
    if size > MAX_OPTIONS_BYTES:
        raise UserOptionsError(
            f"Spawn options are too large ({size} bytes; at most {MAX_OPTIONS_BYTES})."
        )


def _single(value: Any, field: str) -> Any:
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise UserOptionsError(f"Option {field} must be a single value.")
        return value[0]
    return value


def _name(value: Any, field: str) -> str | None:
    value = _single(value, field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UserOptionsError(f"Option {field} must be a name, not a number or object.")
    if len(value) > MAX_NAME_LENGTH:
        raise UserOptionsError(
            f"Option {field} is too long ({len(value)} characters; at most {MAX_NAME_LENGTH})."
        )
    if has_control_characters(value) or _FORBIDDEN_CHARACTERS.intersection(value):
        raise UserOptionsError(
            f"Option {field} contains characters that are not allowed in a name: {excerpt(value)}."
        )
    if not is_dns_label(value):
        raise UserOptionsError(
            f"Option {field} is not a valid {field} name: {excerpt(value)}. Names use "
            "lower-case letters, digits and '-'."
        )
    return value


def _gpus(raw: Any, profile: Profile) -> int | None:
    given = _single(raw, "gpus")
    if given is None or given == "":
        return None
    if isinstance(given, bool) or not isinstance(given, int | str):
        raise UserOptionsError(f"Option gpus must be a whole number, got {excerpt(given)}.")
    value: int
    if isinstance(given, int):
        value = given
    else:
        text = given
        if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
            raise UserOptionsError(f"Option gpus must not be negative, got {excerpt(given, 12)}.")
        if not text.isascii() or not text.isdigit():
            raise UserOptionsError(
                f"Option gpus must be a whole number of GPUs, got {excerpt(given)}."
            )
        if len(text) > _MAX_GPU_DIGITS:
            raise UserOptionsError(f"Option gpus is far too large: {excerpt(given, 12)}.")
        value = int(text)
    if value < 0:
        raise UserOptionsError(f"Option gpus must not be negative, got {excerpt(value, 12)}.")
    if value > MAX_GPUS:
        raise UserOptionsError(f"Option gpus is far too large: {excerpt(value, 12)}.")
    if not profile.gpu_choice:
        if value == profile.gpus:
            return None
        raise UserOptionsError(
            f"Profile {profile.name} has a fixed GPU count of {profile.gpus}; leave out the "
            f"gpus option or choose another profile (asked for {value})."
        )
    if not profile.gpus_min <= value <= profile.gpus_max:
        raise UserOptionsError(
            f"Profile {profile.name} offers {profile.gpus_min} to "
            f"{plural(profile.gpus_max, 'GPU')}; {value} cannot be chosen."
        )
    return value
