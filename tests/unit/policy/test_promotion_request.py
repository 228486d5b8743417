"""A promotion request's artifact path and human text, as the notebook sends them."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy.promotion import PromotionRefused, parse_request

pytestmark = pytest.mark.unit

RUN = "0123456789abcdef" * 2


@pytest.mark.parametrize("path", ["model", "models/classifier", "model-v2/py_model"])
def test_relative_artifact_paths(path: str) -> None:
    assert parse_request({"model": "iris", "run_id": RUN, "artifact_path": path}).artifact_path == (
        path
    )


@pytest.mark.parametrize(
    "path",
    ["", "/model", "../model", "model/..", "./model", "a//b", "model/", "a\\b", "a\nb", 7, None],
)
def test_other_artifact_paths_are_refused(path: Any) -> None:
    with pytest.raises(PromotionRefused) as info:
        parse_request({"model": "iris", "run_id": RUN, "artifact_path": path})
    assert info.value.http_status == 400
    assert info.value.message.startswith("artifact_path must be the relative path")


def test_human_text_keeps_its_lines_and_tabs() -> None:
    text = "Sorting iris flowers.\n\n\tNot for other species.\r\n"
    request = parse_request({"model": "iris", "run_id": RUN, "limitations": text})
    assert request.limitations == text.strip()


@pytest.mark.parametrize("text", ["bell\x07", "escape \x1b[31mred", "nul\x00", "del\x7f"])
def test_human_text_with_control_characters_is_refused(text: str) -> None:
    with pytest.raises(PromotionRefused) as info:
        parse_request({"model": "iris", "run_id": RUN, "intended_use": text})
    assert info.value.http_status == 400
    assert info.value.message.startswith("intended_use must be plain text")
