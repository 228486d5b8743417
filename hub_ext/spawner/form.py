"""The spawn form: the profiles each of the user's teams may use, with live availability.

The HTML comes from the Jinja template ``templates/mlteams_form.html``, rendered with autoescape
on, so team names, display names, descriptions and messages are escaped by Jinja. A profile that
would exceed a quota is shown disabled with the reason; one that would wait in the team's queue
says so. A user in several teams picks the team with the profile: each radio button's value is
``<team>/<profile>``, which ``choice_to_options`` turns back into the ``team`` and ``profile``
options the REST API takes directly.

Admins override the template the way KubeSpawner's own profile form is overridden: a file named
``mlteams_form.html`` in one of ``KubeSpawner.additional_profile_form_template_paths`` (searched
before the packaged template), or the template's text in ``KubeSpawner.profile_form_template``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, Template

from hub_ext.policy import ProfileChoice, Team

CHOICE_FIELD = "choice"
FORM_TEMPLATE = "mlteams_form.html"


@dataclass(frozen=True)
class TeamSection:
    team: Team
    choices: Sequence[ProfileChoice]
    # where the user's files live in this team (home, team folder); none when not persistent
    storage: str | None = None


@dataclass(frozen=True)
class FormTemplate:
    """Where the form's template comes from: KubeSpawner's two template settings."""

    paths: tuple[str, ...] = ()
    source: str = ""

    def get(self) -> Template:
        if self.source:
            return _from_source(self.paths, self.source)
        return _environment(self.paths).get_template(FORM_TEMPLATE)


@lru_cache(maxsize=8)
def _environment(paths: tuple[str, ...]) -> Environment:
    loader = ChoiceLoader(
        [FileSystemLoader(list(paths)), PackageLoader("hub_ext.spawner", "templates")]
    )
    return Environment(loader=loader, autoescape=True)


@lru_cache(maxsize=8)
def _from_source(paths: tuple[str, ...], source: str) -> Template:
    return _environment(paths).from_string(source)


PACKAGED = FormTemplate()


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


def default_choice(sections: Sequence[TeamSection]) -> str | None:
    """``team/profile`` checked when the form opens: the first selectable team default, else
    the first selectable profile."""
    enabled = [(s.team.name, c) for s in sections for c in s.choices if c.enabled]
    for team, choice in enabled:
        if choice.is_default:
            return f"{team}/{choice.profile.name}"
    if enabled:
        team, choice = enabled[0]
        return f"{team}/{choice.profile.name}"
    return None


def render_form(
    sections: Sequence[TeamSection],
    *,
    message: str | None = None,
    template: FormTemplate = PACKAGED,
    request_url: str | None = None,
) -> str:
    """The form body JupyterHub wraps in its spawn page; ``request_url`` is the page where a
    member asks their lead for more GPUs (none when the hub has no mlteams service)."""
    return template.get().render(
        sections=sections,
        selected=default_choice(sections),
        message=message,
        no_team_message=None,
        choice_field=CHOICE_FIELD,
        request_url=request_url,
    )


def render_no_team(message: str, *, template: FormTemplate = PACKAGED) -> str:
    """Shown instead of profiles to a user who belongs to no team: whom to ask, and nothing else."""
    return template.get().render(
        sections=[],
        selected=None,
        message=None,
        no_team_message=message,
        choice_field=CHOICE_FIELD,
    )
