"""The spawn form: the profiles each of the user's teams may use, with live availability.

Pure rendering from policy results to HTML (everything user- or admin-provided is escaped).
A profile that would exceed a quota is shown disabled with the reason; one that would wait in
the team's queue says so. A user in several teams picks the team with the profile: each radio
button's value is ``<team>/<profile>``, which ``choice_to_options`` turns back into the
``team`` and ``profile`` options the REST API takes directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from hub_ext.policy import ProfileChoice, Team

CHOICE_FIELD = "choice"


@dataclass(frozen=True)
class TeamSection:
    team: Team
    choices: Sequence[ProfileChoice]


def choice_to_options(formdata: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the form's ``choice`` field (``team/profile``) by ``team`` and ``profile``."""
    data = dict(formdata)
    raw = data.pop(CHOICE_FIELD, None)
    if isinstance(raw, list | tuple) and len(raw) == 1:
        raw = raw[0]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str) and "/" in raw:
        team, profile = raw.split("/", 1)
        data["team"], data["profile"] = team, profile
    elif raw is not None:
        data["profile"] = raw
    return data


def _choice_html(team: Team, choice: ProfileChoice, checked: bool) -> str:
    profile = choice.profile
    value = escape(f"{team.name}/{profile.name}", quote=True)
    ident = escape(f"mlteams-{team.name}-{profile.name}", quote=True)
    state = []
    if not choice.enabled:
        state.append("disabled")
    elif checked:
        state.append("checked")
    notes = [f'<span class="mlteams-availability">{escape(choice.availability)}</span>']
    if choice.disabled_reason:
        notes.append(
            f'<span class="mlteams-reason text-danger">{escape(choice.disabled_reason)}</span>'
        )
    elif choice.note:
        notes.append(f'<span class="mlteams-queue text-warning">{escape(choice.note)}</span>')
    description = f"<div>{escape(profile.description)}</div>" if profile.description else ""
    css = "mlteams-profile" + ("" if choice.enabled else " mlteams-disabled text-muted")
    return (
        f'<div class="radio {css}" data-profile="{escape(profile.name, quote=True)}">'
        f'<label for="{ident}">'
        f'<input type="radio" name="{CHOICE_FIELD}" id="{ident}" value="{value}" {" ".join(state)}>'
        f" <strong>{escape(profile.display_name)}</strong>"
        f"{description}<div>{' '.join(notes)}</div></label></div>"
    )


def render_form(sections: Sequence[TeamSection], *, message: str | None = None) -> str:
    """The form body JupyterHub wraps in its spawn page."""
    parts = ['<div class="mlteams-spawn-form">']
    if message:
        parts.append(f'<div class="alert alert-info mlteams-message">{escape(message)}</div>')
    first_enabled = next(
        (
            (s.team.name, c.profile.name)
            for s in sections
            for c in s.choices
            if c.enabled and c.is_default
        ),
        next(
            ((s.team.name, c.profile.name) for s in sections for c in s.choices if c.enabled), None
        ),
    )
    for section in sections:
        team = section.team
        parts.append(
            f'<fieldset class="mlteams-team" data-team="{escape(team.name, quote=True)}">'
            f"<legend>Team {escape(team.display_name)}</legend>"
        )
        for choice in section.choices:
            checked = first_enabled == (team.name, choice.profile.name)
            parts.append(_choice_html(team, choice, checked))
        parts.append("</fieldset>")
    parts.append("</div>")
    return "\n".join(parts)


def render_no_team(message: str) -> str:
    """Shown instead of profiles to a user who belongs to no team: whom to ask, and nothing else."""
    return (
        '<div class="mlteams-spawn-form mlteams-no-team">'
        f'<div class="alert alert-warning">{escape(message)}</div>'
        '<script>document.querySelectorAll("#spawn_form input[type=submit]")'
        ".forEach(function (b) { b.disabled = true; });</script></div>"
    )
