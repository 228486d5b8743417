"""What the admin pages' forms and JSON API accept: a reason for every action, an optional expiry,
a team's quota override, a user's grant of extra GPUs, a quota request, a decision.

Plain data in (a form's fields or a JSON object, values as text or numbers), validated values
out; a bad field raises ``FormError`` naming the field in words a person understands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub_ext.policy.config import QuotaOverride, parse_quota_override
from hub_ext.policy.validation import ConfigError

MAX_REASON = 2000
MAX_HOURS = 24 * 366
MAX_MINUTES = 60 * MAX_HOURS
MAX_EXTRA_GPUS = 64
QUOTA_FIELDS = ("gpus", "gpus_per_user", "cpu", "memory")


class FormError(ValueError):
    """A field of an admin form or request is missing or wrong (HTTP 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TeamOverrideInput:
    change: QuotaOverride
    expires_at: float | None
    reason: str


@dataclass(frozen=True)
class GrantInput:
    user: str
    extra_gpus: int
    expires_at: float | None
    reason: str


@dataclass(frozen=True)
class QuotaRequestInput:
    team: str
    gpus: int
    minutes: int
    reason: str


@dataclass(frozen=True)
class DecisionInput:
    approve: bool
    comment: str


def _object(raw: Any) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise FormError("Send the fields as a JSON object or a form.")
    return raw


def _unknown(raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(raw) - set(allowed) - {"_xsrf"})
    if extra:
        raise FormError(f"Unknown field {extra[0]!r}; the fields are: {', '.join(allowed)}.")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def reason_of(raw: Mapping[str, Any], field: str = "reason") -> str:
    """The reason (required, at most ``MAX_REASON`` characters, trimmed)."""
    value = raw.get(field)
    if _blank(value):
        raise FormError(f"Give a {field}: it is written to the audit trail.")
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise FormError(f"The {field} must be text of at most {MAX_REASON} characters.")
    return value.strip()


def whole_number(raw: Mapping[str, Any], field: str, *, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``, given as a number or as text."""
    value = raw.get(field)
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,6}\s*", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FormError(f"{field} must be a whole number from {low} to {high}.")
    return value


def duration_minutes(raw: Mapping[str, Any], *, required: bool = False) -> int | None:
    """A duration in whole minutes, from ``minutes`` or from ``hours`` (a number such as 2 or
    0.5); ``None`` when neither is given and it is not ``required``."""
    hours, minutes = raw.get("hours"), raw.get("minutes")
    if not _blank(hours) and not _blank(minutes):
        raise FormError("Give hours or minutes, not both.")
    if not _blank(minutes):
        return whole_number(raw, "minutes", low=1, high=MAX_MINUTES)
    if _blank(hours):
        if required:
            raise FormError(f"Say for how long: hours from 0.1 to {MAX_HOURS}, or minutes.")
        return None
    value: Any = hours
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,5}(\.\d{1,3})?\s*", value):
        value = float(value)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not 0 < value <= MAX_HOURS
        or value != value  # NaN
    ):
        raise FormError(f"hours must be a number above 0 and at most {MAX_HOURS}.")
    return max(1, round(float(value) * 60))


def describe_minutes(minutes: int) -> str:
    """A duration in words: ``45 min``, ``2 h``, ``2 h 30 min``, ``3 d``."""
    days, rest = divmod(max(int(minutes), 0), 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    return " ".join(part for part in parts if part) or "0 min"


def expiry_of(raw: Mapping[str, Any], *, now: float, required: bool = False) -> float | None:
    """The expiry, ``hours`` or ``minutes`` from now; ``None`` when left empty and not
    ``required``."""
    minutes = duration_minutes(raw, required=required)
    return None if minutes is None else now + minutes * 60.0


def team_override_input(raw: Any, *, now: float) -> TeamOverrideInput:
    """A team's quota override: at least one of ``QUOTA_FIELDS``, a reason, optional hours or
    minutes."""
    body = _object(raw)
    _unknown(body, (*QUOTA_FIELDS, "hours", "minutes", "reason"))
    values: dict[str, Any] = {}
    for field in QUOTA_FIELDS:
        value = body.get(field)
        if _blank(value):
            continue
        if field in ("gpus", "gpus_per_user") and isinstance(value, str):
            value = whole_number(body, field, low=0, high=10_000)
        values[field] = value
    if not values:
        raise FormError(f"Set at least one of {', '.join(QUOTA_FIELDS)}.")
    try:
        change = parse_quota_override(values, path="override")
    except ConfigError as exc:
        raise FormError(str(exc)) from None
    return TeamOverrideInput(change, expiry_of(body, now=now), reason_of(body))


def grant_input(raw: Any, *, now: float) -> GrantInput:
    """A grant of extra GPUs to one user: user, extra_gpus, hours or minutes (required),
    reason."""
    body = _object(raw)
    _unknown(body, ("user", "extra_gpus", "hours", "minutes", "reason"))
    user = body.get("user")
    if _blank(user) or not isinstance(user, str) or len(user) > 253:
        raise FormError("Name the user the GPUs are for.")
    extra = whole_number(body, "extra_gpus", low=1, high=MAX_EXTRA_GPUS)
    expires_at = expiry_of(body, now=now, required=True)
    return GrantInput(user.strip(), extra, expires_at, reason_of(body))


def quota_request_input(raw: Any) -> QuotaRequestInput:
    """A user's request for more GPUs: team, gpus, for how long (hours or minutes), reason."""
    body = _object(raw)
    _unknown(body, ("team", "gpus", "hours", "minutes", "reason"))
    team = body.get("team")
    if _blank(team) or not isinstance(team, str):
        raise FormError("Name the team the GPUs are for.")
    gpus = whole_number(body, "gpus", low=1, high=MAX_EXTRA_GPUS)
    minutes = duration_minutes(body, required=True)
    assert minutes is not None
    return QuotaRequestInput(team.strip(), gpus, minutes, reason_of(body))


def decision_input(raw: Any) -> DecisionInput:
    """Approve or reject, with a comment (required when rejecting)."""
    body = _object(raw)
    _unknown(body, ("decision", "comment"))
    decision = body.get("decision")
    if decision not in ("approve", "reject"):
        raise FormError("decision must be approve or reject.")
    comment = body.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > MAX_REASON:
        raise FormError(f"The comment must be text of at most {MAX_REASON} characters.")
    if decision == "reject" and not comment.strip():
        raise FormError("Say why you reject it in the comment: the requester sees it.")
    return DecisionInput(decision == "approve", comment.strip())


def stop_input(raw: Any) -> str:
    """Stopping a server needs only a reason."""
    body = _object(raw)
    _unknown(body, ("reason",))
    return reason_of(body)


def revoke_input(raw: Any) -> str:
    body = _object(raw)
    _unknown(body, ("reason",))
    return reason_of(body)
