"""The pure parts of TeamKubeSpawner: pod settings, the spawn form, form options, refusals,
and the pod reflector's selector."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from tornado import web

from hub_ext.policy import TEAM_LABEL, Ledger, MirroredPods, profile_choices, validate_user_options
from hub_ext.policy.pod_settings import pod_settings
from hub_ext.spawner import refusals as spawn_errors
from hub_ext.spawner.form import TeamSection, choice_to_options, render_form, render_no_team
from hub_ext.spawner.reflector import reflector_for
from tests.unit.policy.sample import ledger_with, sample_config

pytestmark = pytest.mark.unit


def test_gpu_profile_becomes_limits_tolerations_selector_labels_and_env() -> None:
    config = sample_config()
    options = validate_user_options(
        config, {"team": "vision", "profile": "pytorch-1gpu"}, groups=["vision-engineers"]
    )
    settings = pod_settings(config, options, user="ana@example.org", server_name="gpu")
    assert settings["namespace"] == "team-vision"
    assert settings["image"] == "mlteams/pytorch:1"
    assert settings["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    assert settings["extra_resource_guarantees"] == {"nvidia.com/gpu": "1"}
    assert settings["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert settings["node_selector"] == {"nvidia.com/gpu.product": "A100"}
    assert settings["cpu_guarantee"] == settings["cpu_limit"] == 8
    assert settings["mem_guarantee"] == 64 * 2**30
    assert settings["extra_labels"] == {
        "mlteams.io/team": "vision",
        "mlteams.io/profile": "pytorch-1gpu",
        "mlteams.io/user": "ana-example.org",
    }
    assert settings["extra_annotations"]["mlteams.io/server"] == "ana@example.org/gpu"
    assert settings["environment"]["NCCL_DEBUG"] == "WARN"
    assert settings["environment"]["MLTEAMS_TEAM"] == "vision"


def test_cpu_profile_asks_for_no_gpu_and_range_profile_uses_the_chosen_count() -> None:
    config = sample_config()
    cpu = validate_user_options(config, {"profile": "cpu"}, groups=["/ml/research"])
    assert pod_settings(config, cpu, user="u")["extra_resource_limits"] == {}
    flex = validate_user_options(
        config, {"team": "vision", "profile": "flex", "gpus": 3}, groups=["vision-engineers"]
    )
    assert pod_settings(config, flex, user="u")["extra_resource_limits"] == {"nvidia.com/gpu": "3"}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            {"choice": ["vision/cpu"], "_xsrf": ["x"]},
            {"team": "vision", "profile": "cpu", "_xsrf": ["x"]},
        ),
        ({"choice": [b"nlp/queued-1gpu"]}, {"team": "nlp", "profile": "queued-1gpu"}),
        ({"choice": ["cpu"]}, {"profile": "cpu"}),
        ({"choice": ["a", "b"]}, {"profile": ["a", "b"]}),
        ({}, {}),
    ],
)
def test_choice_field_becomes_team_and_profile(form: dict, expected: dict) -> None:
    assert choice_to_options(form) == expected


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.inputs.append(dict(attrs))


def test_form_disables_what_does_not_fit_and_checks_the_default() -> None:
    config = sample_config()
    ledger = ledger_with(
        ("vision", "bea", 2), ("vision", "carl", 2), ("vision", "dan", 2), ("vision", "eve", 2)
    )
    choices = profile_choices(config, ledger, "vision", "ana")
    html = render_form([TeamSection(config.teams["vision"], choices)])
    parser = _Inputs()
    parser.feed(html)
    by_value = {i["value"]: i for i in parser.inputs}
    assert "disabled" in by_value["vision/pytorch-1gpu"]
    assert "checked" in by_value["vision/cpu"]
    assert "disabled" not in by_value["vision/cpu"]
    assert "0 of 8 GPUs free" in html


def test_form_links_each_team_to_the_page_that_asks_for_more_gpus() -> None:
    config = sample_config()
    choices = profile_choices(config, ledger_with(), "vision", "ana")
    section = TeamSection(config.teams["vision"], choices)
    assert "mlteams-ask-gpus" not in render_form([section])  # a hub without the service
    html = render_form([section], request_url="/services/mlteams/quota-request")
    assert (
        'href="/services/mlteams/quota-request?team=vision"' in html
        and 'data-testid="mlteams-ask-gpus-vision"' in html
    )


def test_form_escapes_admin_text() -> None:
    raw = sample_config()
    config = raw.__class__(
        teams=raw.teams,
        profiles={
            **raw.profiles,
            "cpu": raw.profiles["cpu"].__class__(
                **{**raw.profiles["cpu"].__dict__, "display_name": "<script>alert(1)</script>"}
            ),
        },
        datasets=raw.datasets,
    )
    choices = profile_choices(config, ledger_with(), "vision", "ana")
    html = render_form([TeamSection(config.teams["vision"], choices)])
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_no_team_page_says_whom_to_ask_and_offers_nothing_to_submit() -> None:
    html = render_no_team("You are not a member of any ML team <b>.")
    assert "&lt;b&gt;" in html
    assert 'type="radio"' not in html
    assert "disabled = true" in html


def test_refusal_is_a_4xx_with_the_message() -> None:
    error = spawn_errors.refusal("Team vision is full.", status=429, reason="team-gpus-in-use")
    assert isinstance(error, web.HTTPError)
    assert error.status_code == 429
    assert "Team vision is full." in str(error) or error.log_message == "Team vision is full."
    # what JupyterHub shows the user (format_exception): the message alone
    assert error.jupyterhub_message == "Team vision is full."


def test_failure_count_is_given_back_only_without_spawn_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings: dict = {"failure_count": 2}
    spawn_errors.forgive_failure(settings)
    expected = 2 if spawn_errors.SpawnException is not None else 1
    assert settings["failure_count"] == expected
    monkeypatch.setattr(spawn_errors, "SpawnException", None)
    spawn_errors.forgive_failure(settings)
    assert settings["failure_count"] == expected - 1
    plain = spawn_errors.refusal("no", status=403, reason="quota")
    assert type(plain) is web.HTTPError
    assert plain.status_code == 403
    assert plain.jupyterhub_message == "no"


def test_literal_values_survive_kubespawners_template_expansion() -> None:
    from hub_ext.policy.pod_settings import literal

    value = {"A": '{"team": "vision"}', "B": {"valueFrom": {"secretKeyRef": {"name": "s{x}"}}}}
    escaped = literal(value)
    assert escaped["A"].format() == '{"team": "vision"}'
    assert escaped["B"]["valueFrom"]["secretKeyRef"]["name"].format() == "s{x}"


async def test_pod_reflector_watches_only_team_pods_and_mirrors_them_into_the_ledger() -> None:
    ledger = Ledger(namespace_teams=sample_config().namespace_teams)
    reflector_class = reflector_for(ledger)
    reflector = reflector_class(labels={"component": "singleuser-server"}, omit_namespace=True)
    assert reflector.label_selector == f"component=singleuser-server,{TEAM_LABEL}"
    reflector.resources = {}
    assert isinstance(reflector.resources, MirroredPods)
