"""user_options from the spawn form and the REST API: the same checks, and only 4xx refusals."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from hub_ext.policy import (
    SpawnOptions,
    UserOptionsError,
    options_from_form,
    validate_user_options,
)
from hub_ext.policy.user_options import MAX_OPTIONS_BYTES
from tests.unit.policy.sample import sample_config

pytestmark = pytest.mark.unit

CONFIG = sample_config()
VISION = ["/ml/vision"]
BOTH = ["/ml/vision", "/ml/nlp"]


@pytest.mark.parametrize(
    ("options", "groups", "team", "profile", "gpus"),
    [
        ({}, VISION, "vision", "cpu", None),
        (None, VISION, "vision", "cpu", None),
        ({"profile": "pytorch-1gpu"}, VISION, "vision", "pytorch-1gpu", None),
        ({"team": "vision", "profile": "pytorch-2gpu"}, VISION, "vision", "pytorch-2gpu", None),
        ({"profile": "pytorch-1gpu", "gpus": 1}, VISION, "vision", "pytorch-1gpu", None),
        ({"profile": "flex", "gpus": 2}, VISION, "vision", "flex", 2),
        ({"profile": "flex", "gpus": "4"}, VISION, "vision", "flex", 4),
        ({"profile": "flex", "gpus": ""}, VISION, "vision", "flex", None),
        ({"profile": "flex", "gpus": None}, VISION, "vision", "flex", None),
        ({"team": "nlp"}, BOTH, "nlp", "cpu", None),
        ({"team": "nlp", "profile": "queued-4gpu"}, BOTH, "nlp", "queued-4gpu", None),
        ({"team": ["vision"], "profile": ["flex"], "gpus": ["3"]}, BOTH, "vision", "flex", 3),
        ({"team": "", "profile": ""}, VISION, "vision", "cpu", None),
    ],
)
def test_valid_options(
    options: Any, groups: list[str], team: str, profile: str, gpus: int | None
) -> None:
    result = validate_user_options(CONFIG, options, groups=groups)
    assert isinstance(result, SpawnOptions)
    assert (result.team, result.profile.name, result.gpus) == (team, profile, gpus)


def test_form_fields_become_the_same_options_as_json() -> None:
    form = {"_xsrf": ["token"], "team": ["vision"], "profile": ["flex"], "gpus": ["2"]}
    from_form = validate_user_options(CONFIG, options_from_form(form), groups=BOTH)
    from_api = validate_user_options(
        CONFIG, {"team": "vision", "profile": "flex", "gpus": 2}, groups=BOTH
    )
    assert from_form == from_api
    assert from_form.to_user_options() == {"team": "vision", "profile": "flex", "gpus": 2}
    assert validate_user_options(CONFIG, from_form.to_user_options(), groups=BOTH) == from_form
    request = from_form.request("ada", "gpu")
    assert (request.user, request.team, request.profile, request.server_name, request.gpus) == (
        "ada",
        "vision",
        "flex",
        "gpu",
        2,
    )


def test_options_from_form() -> None:
    assert options_from_form({"_xsrf": ["t"], "a": ["1"], "b": ["1", "2"], "c": [b"x"]}) == {
        "a": "1",
        "b": ["1", "2"],
        "c": "x",
    }


BAD_OPTIONS: list[tuple[str, Any, list[str], int, str]] = [
    (
        "unknown profile",
        {"profile": "tensorflow"},
        VISION,
        400,
        "Unknown profile 'tensorflow'. Team vision may use: cpu, pytorch-1gpu, pytorch-2gpu, flex.",
    ),
    (
        "another team's profile",
        {"profile": "queued-4gpu"},
        VISION,
        403,
        "Profile queued-4gpu is not available to team vision.",
    ),
    (
        "another team's profile named with that team",
        {"team": "vision", "profile": "queued-1gpu"},
        BOTH,
        403,
        "Profile queued-1gpu is not available to team vision.",
    ),
    (
        "another team",
        {"team": "nlp"},
        VISION,
        403,
        "You are not a member of team 'nlp'. Your teams: vision.",
    ),
    ("unknown team", {"team": "ghost"}, VISION, 403, "You are not a member of team 'ghost'."),
    ("no team at all", {}, ["/ml/marketing"], 403, "You are not a member of any ML team"),
    ("several teams, none chosen", {"profile": "cpu"}, BOTH, 400, "You are in several teams"),
    (
        "negative gpus",
        {"profile": "flex", "gpus": -1},
        VISION,
        400,
        "Option gpus must not be negative, got '-1'.",
    ),
    (
        "negative gpus text",
        {"profile": "flex", "gpus": "-2"},
        VISION,
        400,
        "Option gpus must not be negative, got '-2'.",
    ),
    (
        "zero gpus below the range",
        {"profile": "flex", "gpus": 0},
        VISION,
        400,
        "Profile flex offers 1 to 4 GPUs; 0 cannot be chosen.",
    ),
    (
        "zero gpus on a fixed profile",
        {"profile": "pytorch-1gpu", "gpus": 0},
        VISION,
        400,
        "Profile pytorch-1gpu has a fixed GPU count of 1",
    ),
    (
        "gpus on a cpu profile",
        {"profile": "cpu", "gpus": 1},
        VISION,
        400,
        "Profile cpu has a fixed GPU count of 0",
    ),
    (
        "above the range",
        {"profile": "flex", "gpus": 5},
        VISION,
        400,
        "Profile flex offers 1 to 4 GPUs; 5 cannot be chosen.",
    ),
    (
        "huge gpus",
        {"profile": "flex", "gpus": 10**30},
        VISION,
        400,
        "Option gpus is far too large: '100000000000...'.",
    ),
    (
        "huge gpus text",
        {"profile": "flex", "gpus": "9" * 400},
        VISION,
        400,
        "Option gpus is far too large: '999999999999...'",
    ),
    (
        "float gpus",
        {"profile": "flex", "gpus": 1.5},
        VISION,
        400,
        "Option gpus must be a whole number, got '1.5'.",
    ),
    (
        "integral float gpus",
        {"profile": "flex", "gpus": 2.0},
        VISION,
        400,
        "Option gpus must be a whole number, got '2.0'.",
    ),
    (
        "float text gpus",
        {"profile": "flex", "gpus": "1.5"},
        VISION,
        400,
        "Option gpus must be a whole number of GPUs, got '1.5'.",
    ),
    (
        "bool gpus",
        {"profile": "flex", "gpus": True},
        VISION,
        400,
        "Option gpus must be a whole number, got 'true'.",
    ),
    (
        "word gpus",
        {"profile": "flex", "gpus": "two"},
        VISION,
        400,
        "Option gpus must be a whole number of GPUs, got 'two'.",
    ),
    (
        "padded gpus",
        {"profile": "flex", "gpus": " 2"},
        VISION,
        400,
        "Option gpus must be a whole number of GPUs",
    ),
    (
        "unicode digits",
        {"profile": "flex", "gpus": "\uff12"},
        VISION,
        400,
        "Option gpus must be a whole number of GPUs, got '?'.",
    ),
    (
        "gpus as object",
        {"profile": "flex", "gpus": {"n": 1}},
        VISION,
        400,
        "Option gpus must be a whole number, got a dict.",
    ),
    (
        "gpus sent twice",
        {"profile": "flex", "gpus": ["1", "2"]},
        VISION,
        400,
        "Option gpus must be a single value.",
    ),
    (
        "profile with quotes",
        {"profile": "py\"torch'"},
        VISION,
        400,
        "Option profile contains characters that are not allowed in a name: 'py?torch?'.",
    ),
    (
        "profile with a newline",
        {"profile": "cpu\nX-Injected: 1"},
        VISION,
        400,
        "Option profile contains characters that are not allowed in a name: 'cpu?X-Injected: 1'.",
    ),
    (
        "profile with template braces",
        {"profile": "{{7*7}}"},
        VISION,
        400,
        "Option profile contains characters that are not allowed in a name: '??7?7??'.",
    ),
    (
        "profile with shell expansion",
        {"profile": "${HOME}"},
        VISION,
        400,
        "Option profile contains characters that are not allowed in a name: '??HOME?'.",
    ),
    (
        "profile with markup",
        {"profile": "<script>alert(1)</script>"},
        VISION,
        400,
        "contains characters that are not allowed",
    ),
    (
        "profile with a NUL",
        {"profile": "cpu\x00"},
        VISION,
        400,
        "contains characters that are not allowed in a name: 'cpu?'.",
    ),
    (
        "profile too long",
        {"profile": "a" * 64},
        VISION,
        400,
        "Option profile is too long (64 characters; at most 63).",
    ),
    (
        "profile with capitals",
        {"profile": "CPU"},
        VISION,
        400,
        "Option profile is not a valid profile name: 'CPU'.",
    ),
    (
        "profile with a path",
        {"profile": "../cpu"},
        VISION,
        400,
        "Option profile is not a valid profile name: '../cpu'.",
    ),
    (
        "profile as a number",
        {"profile": 7},
        VISION,
        400,
        "Option profile must be a name, not a number or object.",
    ),
    (
        "profile sent twice",
        {"profile": ["cpu", "flex"]},
        VISION,
        400,
        "Option profile must be a single value.",
    ),
    (
        "team with a newline",
        {"team": "vision\n"},
        VISION,
        400,
        "Option team contains characters that are not allowed in a name: 'vision?'.",
    ),
    ("team with braces", {"team": "{vision}"}, VISION, 400, "Option team contains characters"),
    ("team as a list of nothing", {"team": []}, VISION, 400, "Option team must be a single value."),
    (
        "unknown key",
        {"profile": "cpu", "image": "evil/image"},
        VISION,
        400,
        "Unknown spawn option 'image'. Allowed options: team, profile, gpus.",
    ),
    (
        "unknown key with markup",
        {"<img src=x>": 1},
        VISION,
        400,
        "Unknown spawn option '?img src=x?'.",
    ),
    (
        "kubespawner override key",
        {"profile": "cpu", "kubespawner_override": {"image": "x"}},
        VISION,
        400,
        "Unknown spawn option 'kubespawner_override'.",
    ),
    ("not an object", ["profile", "cpu"], VISION, 400, "Spawn options must be a JSON object."),
    ("a string", "profile=cpu", VISION, 400, "Spawn options must be a JSON object."),
    ("a number", 42, VISION, 400, "Spawn options must be a JSON object."),
    (
        "oversized body",
        {"profile": "cpu", "team": "v" * 5000},
        VISION,
        400,
        f"Spawn options are too large (5030 bytes; at most {MAX_OPTIONS_BYTES}).",
    ),
    ("oversized key", {"x" * 5000: 1}, VISION, 400, "Spawn options are too large"),
    ("many keys", {f"k{i}": i for i in range(1000)}, VISION, 400, "Spawn options are too large"),
    ("not JSON", {"profile": object()}, VISION, 400, "Spawn options must be plain JSON values."),
    ("non-string key", {1: "cpu"}, VISION, 400, "Unknown spawn option '1'."),
]


@pytest.mark.parametrize(
    ("options", "groups", "status", "message"),
    [pytest.param(o, g, s, m, id=name) for name, o, g, s, m in BAD_OPTIONS],
)
def test_bad_options_get_a_4xx_and_a_message(
    options: Any, groups: list[str], status: int, message: str
) -> None:
    with pytest.raises(UserOptionsError) as info:
        validate_user_options(CONFIG, options, groups=groups)
    error = info.value
    assert error.http_status == status
    assert message in error.message, error.message
    assert str(error) == error.message
    for dangerous in ("\n", "\x00", "{{", "${", "<", ">", '"'):
        assert dangerous not in error.message
    assert len(error.message) < 400


def test_deeply_nested_options_are_refused_cleanly() -> None:
    nested: Any = "cpu"
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(UserOptionsError) as info:
        validate_user_options(CONFIG, {"profile": nested}, groups=VISION)
    assert info.value.http_status == 400


def _junk(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.randint(-(10**20), 10**20)
    if kind == 1:
        return rng.random() * rng.choice([1, -1, 1e300])
    if kind == 2:
        return rng.choice([True, False, None, "", "cpu", "flex", "vision", "nlp", "0", "-1"])
    if kind == 3:
        alphabet = "ab-_{}\"'\n\x00<>$%\\é漢 0123456789"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
    if kind == 4:
        return rng.choice(["cpu", "pytorch-1gpu", "flex", "queued-4gpu", "x" * 70])
    if kind == 5:
        return str(rng.randint(-5, 10))
    if kind == 6:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(0, 3))]
    keys = ["team", "profile", "gpus", "x", "", "__proto__"]
    return {rng.choice(keys): _junk(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


@pytest.mark.parametrize("seed", range(20))
def test_random_junk_never_raises_anything_but_a_4xx(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        options = _junk(rng)
        groups = rng.choice([VISION, BOTH, [], ["/ml/nlp"]])
        try:
            result = validate_user_options(CONFIG, options, groups=groups)
        except UserOptionsError as error:
            assert error.http_status in (400, 403)
            assert error.message
            json.dumps(error.message)
        else:
            assert result.profile.name in result.membership.team.profiles


EXACT_REFUSALS: list[tuple[str, Any, int, str]] = [
    ("not JSON", {"profile": object()}, 400, "Spawn options must be plain JSON values."),
    ("not an object", ["profile", "cpu"], 400, "Spawn options must be a JSON object."),
    (
        "another team's profile",
        {"profile": "queued-4gpu"},
        403,
        "Profile queued-4gpu is not available to team vision. Team vision may use: cpu, "
        "pytorch-1gpu, pytorch-2gpu, flex.",
    ),
    (
        "profile with capitals",
        {"profile": "CPU"},
        400,
        "Option profile is not a valid profile name: 'CPU'. Names use lower-case letters, "
        "digits and '-'.",
    ),
    (
        "longest name that is not a profile",
        {"profile": "a" * 63},
        400,
        f"Unknown profile '{'a' * 32}...'. Team vision may use: cpu, pytorch-1gpu, "
        "pytorch-2gpu, flex.",
    ),
    (
        "options of exactly the size limit",
        {"team": "v" * 4084},
        400,
        "Option team is too long (4084 characters; at most 63).",
    ),
    (
        "options one byte over the size limit",
        {"team": "v" * 4085},
        400,
        "Spawn options are too large (4097 bytes; at most 4096).",
    ),
    (
        "minus sign before a non-ASCII digit",
        {"profile": "flex", "gpus": "-\uff12"},
        400,
        "Option gpus must be a whole number of GPUs, got '-?'.",
    ),
    (
        "long negative text",
        {"profile": "flex", "gpus": "-" + "0" * 20},
        400,
        "Option gpus must not be negative, got '-00000000000...'.",
    ),
    (
        "long negative number",
        {"profile": "flex", "gpus": -(10**20)},
        400,
        "Option gpus must not be negative, got '-10000000000...'.",
    ),
    (
        "the largest GPU count as text",
        {"profile": "flex", "gpus": "4096"},
        400,
        "Profile flex offers 1 to 4 GPUs; 4096 cannot be chosen.",
    ),
    (
        "the largest GPU count as a number",
        {"profile": "flex", "gpus": 4096},
        400,
        "Profile flex offers 1 to 4 GPUs; 4096 cannot be chosen.",
    ),
    (
        "one more than the largest GPU count",
        {"profile": "flex", "gpus": "4097"},
        400,
        "Option gpus is far too large: '4097'.",
    ),
]


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [pytest.param(o, s, m, id=name) for name, o, s, m in EXACT_REFUSALS],
)
def test_a_refusal_says_exactly_what_is_wrong(options: Any, status: int, message: str) -> None:
    """The user reads the whole message: the limit, the excerpt of their input and the choices
    they have, each refusal at the boundary where it starts to apply."""
    with pytest.raises(UserOptionsError) as info:
        validate_user_options(CONFIG, options, groups=VISION)
    assert (info.value.http_status, info.value.message) == (status, message)


@pytest.mark.parametrize("gpus", [1, "1", 4, "4"])
def test_a_gpu_choice_at_either_end_of_the_range_is_accepted(gpus: int | str) -> None:
    """The flex profile offers 1 to 4 GPUs, both ends included."""
    result = validate_user_options(CONFIG, {"profile": "flex", "gpus": gpus}, groups=VISION)
    assert result.gpus == int(gpus)
    assert result.to_user_options() == {"team": "vision", "profile": "flex", "gpus": int(gpus)}


def test_form_bytes_that_are_not_utf8_are_refused_with_a_message() -> None:
    """A form field whose bytes are not UTF-8 becomes text with replacement characters and is
    refused as a bad name (a 400), not a decoding traceback."""
    options = options_from_form({"_xsrf": [b"t"], "profile": [b"cpu\xff"]})
    assert options == {"profile": "cpu\ufffd"}
    with pytest.raises(UserOptionsError) as info:
        validate_user_options(CONFIG, options, groups=VISION)
    assert (info.value.http_status, info.value.message) == (
        400,
        "Option profile is not a valid profile name: 'cpu?'. Names use lower-case letters, "
        "digits and '-'.",
    )


def test_a_request_without_a_server_name_is_for_the_default_server() -> None:
    """The user's default server has the empty server name in the admission request."""
    options = validate_user_options(CONFIG, {"profile": "pytorch-1gpu"}, groups=VISION)
    request = options.request("ada")
    assert (request.user, request.team, request.profile, request.server_name) == (
        "ada",
        "vision",
        "pytorch-1gpu",
        "",
    )
